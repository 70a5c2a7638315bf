// chainrule playground. Presents what the server computed; computes nothing the library does.
// Nothing typed is ever inserted as HTML: text goes in with textContent, formulas and the
// graph arrive as element trees and are rebuilt from a fixed list of tags (see build()).
"use strict";

const MATHML = "http://www.w3.org/1998/Math/MathML";
const SVGNS = "http://www.w3.org/2000/svg";
const TAGS = {
  [MATHML]: new Set("math mrow mi mn mo msup msub msubsup mfrac msqrt mroot mtext mspace mstyle".split(" ")),
  [SVGNS]: new Set("svg defs marker path rect g text title line".split(" ")),
};

const STRINGS = {
  en: {
    playground: "playground", tab_derive: "Derive", tab_graph: "Graph & backprop",
    tab_check: "Check my answer", tab_train: "Train", tab_practice: "Practice",
    function: "Function", variable: "Variable", derive: "Derive", steps: "Steps",
    plot: "f and f′ — drag the point", program: "Program", inputs: "Inputs", run: "Run",
    prev: "◀ Previous", play: "▶ Play", pause_play: "❚❚ Pause", next: "Next ▶",
    backward: "Backward pass", forward: "Forward pass", your_answer: "Your derivative",
    check: "Check", hint_next: "Another hint", dataset: "Data", layers: "Hidden layers",
    activation: "Activation", lr: "Learning rate", start: "Start", pause: "Pause",
    reset: "Reset", boundary: "Decision boundary", loss: "Loss", rule: "Rule",
    difficulty: "Difficulty", new_exercise: "New exercise", r_power: "power",
    r_product: "product", r_quotient: "quotient", r_chain: "chain",
    r_multi: "multivariable", d1: "easy", d2: "medium", d3: "hard",
    ex_network: "Seed 003 §6.1 network", ex_composite: "Seed 001 z = (u+v)²",
    ex_neuron: "Seed 003 §4.3 neuron",
    try: "Try",
    footer: "Everything is computed locally by chainrule; nothing you type leaves this machine.",
    at: "at x =", analytic: "this derivation", central: "central differences (h = 1e-7)",
    autodiff: "chainrule autodiff", agree: "all three agree", disagree: "they disagree",
    undefined: "undefined", no_plot: "(a plot needs a function of one variable)",
    step: "step", of: "of", grad: "grad", epoch: "epoch", train_loss: "train loss",
    test_acc: "test accuracy", running: "training…", paused: "paused", done: "done",
    stopped: "stopped", exercise: "Differentiate", wrt: "with respect to",
    correct: "Correct", wrong: "Not quite", equivalent: "Correct (same function, written differently)",
    tangent: "tangent", yours: "You wrote:",
    steps_all: "The derivation, step by step",
    steps_marked: "The derivation, with the step your answer departs from marked",
  },
  zh: {
    playground: "演练场", tab_derive: "求导", tab_graph: "计算图与反向传播",
    tab_check: "检查我的答案", tab_train: "训练", tab_practice: "练习",
    function: "函数", variable: "变量", derive: "求导", steps: "步骤",
    plot: "f 与 f′——拖动这个点", program: "程序", inputs: "输入", run: "运行",
    prev: "◀ 上一步", play: "▶ 播放", pause_play: "❚❚ 暂停", next: "下一步 ▶",
    backward: "反向传播", forward: "前向传播", your_answer: "你的导数",
    check: "检查", hint_next: "再给一个提示", dataset: "数据", layers: "隐藏层",
    activation: "激活函数", lr: "学习率", start: "开始", pause: "暂停",
    reset: "重置", boundary: "决策边界", loss: "损失", rule: "法则",
    difficulty: "难度", new_exercise: "新题目", r_power: "幂法则",
    r_product: "乘积法则", r_quotient: "商法则", r_chain: "链式法则",
    r_multi: "多元链式法则", d1: "简单", d2: "中等", d3: "较难",
    ex_network: "种子 003 §6.1 网络", ex_composite: "种子 001 z = (u+v)²",
    ex_neuron: "种子 003 §4.3 神经元",
    try: "试试",
    footer: "一切都由 chainrule 在本机计算；你输入的内容不会离开这台电脑。",
    at: "在 x =", analytic: "本推导", central: "中心差分（h = 1e-7）",
    autodiff: "chainrule 自动微分", agree: "三者一致", disagree: "三者不一致",
    undefined: "无定义", no_plot: "（只有一元函数才能作图）",
    step: "第", of: "步，共", grad: "梯度", epoch: "轮次", train_loss: "训练损失",
    test_acc: "测试准确率", running: "训练中…", paused: "已暂停", done: "完成",
    stopped: "已停止", exercise: "求导：", wrt: "对",
    correct: "正确", wrong: "还不对", equivalent: "正确（同一个函数，写法不同）",
    tangent: "切线", yours: "你写的是：",
    steps_all: "逐步推导",
    steps_marked: "逐步推导（标出了你的答案偏离的那一步）",
  },
};

let lang = "en";
const t = (key) => STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

// Rebuild a server-made element tree [tag, {attrs}, ...children] in namespace ns; unknown tags
// and attributes that could run script are dropped, text only ever becomes a text node.
function build(tree, ns) {
  if (typeof tree === "string") return document.createTextNode(tree);
  const [tag, attrs, ...children] = tree;
  if (!TAGS[ns].has(tag)) return document.createTextNode("");
  const node = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (/^on/i.test(k) || /href/i.test(k) || k === "style") continue;
    node.setAttribute(k, v);
  }
  for (const child of children) node.appendChild(build(child, ns));
  return node;
}

function showError(message) {
  const line = $("error");
  line.textContent = message || "";
  line.hidden = !message;
}

let pending = 0;
async function api(path, body) {
  pending += 1;
  document.body.classList.add("busy");
  try {
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (!response.ok || data === null) {
      showError((data && data.error) || `the server answered ${response.status}`);
      return null;
    }
    showError("");
    return data;
  } catch (err) {
    showError("the playground server is not reachable; is `chainrule serve` still running?");
    return null;
  } finally {
    pending -= 1;
    if (!pending) document.body.classList.remove("busy");
  }
}

function segments(parent, segs) {
  for (const s of segs) {
    if (s.math) parent.appendChild(build(s.math, MATHML));
    else parent.appendChild(s.bold ? el("strong", {}, s.text) : document.createTextNode(s.text));
  }
}

function fmt(v) {
  if (v === null || v === undefined) return t("undefined");
  return Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-4 && v !== 0) ? v.toExponential(6) : v.toFixed(8).replace(/0+$/, "0");
}

// ---------------------------------------------------------------- derive
const derive = { data: null, expr: "", wrt: "x", x: 1 };

async function runDerive(keepWrt = true) {
  const form = document.querySelector('[data-form="derive"]');
  const expr = form.expr.value;
  const wrt = keepWrt ? form.wrt.value || "x" : "x";
  const data = await api("/api/derive", { expr, wrt, lang });
  if (!data) return;
  Object.assign(derive, { data, expr, wrt: data.wrt });
  const select = form.wrt;
  select.replaceChildren(...data.variables.map((v) => el("option", { value: v }, v)));
  select.value = data.wrt;
  const box = $("derivation");
  box.replaceChildren();
  const tree = el("div", { class: "tree" });
  for (const node of data.steps) tree.appendChild(stepNode(node));
  box.appendChild(tree);
  const result = $("result");
  result.replaceChildren(build(data.result, MATHML));
  drawPlot();
  if (data.plot) await runPoint(derive.x);
  else $("point-check").replaceChildren();
}

function stepNode(node, marked = null) {
  const line = el("div", { class: `step step-${node.key}`, "data-line": String(node.line) });
  if (node.line === marked) {
    line.classList.add("departs");
    line.setAttribute("data-testid", "departs-step");
  }
  segments(line, node.segments);
  if (!node.children.length) {
    const leaf = el("div", { class: "leaf" });
    leaf.appendChild(line);
    return leaf;
  }
  const details = el("details", { open: "" });
  const summary = el("summary");
  summary.appendChild(line);
  details.appendChild(summary);
  const kids = el("div", { class: "children" });
  for (const child of node.children) kids.appendChild(stepNode(child, marked));
  details.appendChild(kids);
  return details;
}

const PLOT = { w: 400, h: 300, pad: 28 };
function scaleX(x, p) { return PLOT.pad + ((x - p.x[0]) / (p.x.at(-1) - p.x[0])) * (PLOT.w - 2 * PLOT.pad); }
function scaleY(y, p) { return PLOT.h - PLOT.pad - ((y - p.y[0]) / (p.y[1] - p.y[0])) * (PLOT.h - 2 * PLOT.pad); }
function unscaleX(px, p) { return p.x[0] + ((px - PLOT.pad) / (PLOT.w - 2 * PLOT.pad)) * (p.x.at(-1) - p.x[0]); }

function polyline(xs, ys, p, cls) {
  let d = "", pen = false;
  xs.forEach((x, i) => {
    const y = ys[i];
    if (y === null || y < p.y[0] - 10 * (p.y[1] - p.y[0]) || y > p.y[1] + 10 * (p.y[1] - p.y[0])) { pen = false; return; }
    d += `${pen ? "L" : "M"}${scaleX(x, p).toFixed(1)},${scaleY(y, p).toFixed(1)} `;
    pen = true;
  });
  return svgEl("path", { d, class: cls });
}

function drawPlot(check) {
  const svg = $("plot");
  svg.replaceChildren();
  const p = derive.data && derive.data.plot;
  if (!p) {
    const msg = svgEl("text", { x: 200, y: 150, "text-anchor": "middle", class: "muted" });
    msg.textContent = derive.data ? t("no_plot") : "";
    svg.appendChild(msg);
    return;
  }
  svg.appendChild(svgEl("rect", { x: PLOT.pad, y: PLOT.pad, width: PLOT.w - 2 * PLOT.pad, height: PLOT.h - 2 * PLOT.pad, class: "frame" }));
  if (p.y[0] < 0 && p.y[1] > 0) svg.appendChild(svgEl("line", { x1: PLOT.pad, x2: PLOT.w - PLOT.pad, y1: scaleY(0, p), y2: scaleY(0, p), class: "axis" }));
  svg.appendChild(svgEl("line", { x1: scaleX(0, p), x2: scaleX(0, p), y1: PLOT.pad, y2: PLOT.h - PLOT.pad, class: "axis" }));
  for (const [v, anchor, x, y] of [[p.x[0], "start", PLOT.pad, PLOT.h - 8], [p.x.at(-1), "end", PLOT.w - PLOT.pad, PLOT.h - 8], [p.y[1], "start", 2, PLOT.pad + 4], [p.y[0], "start", 2, PLOT.h - PLOT.pad]]) {
    const label = svgEl("text", { x, y, "text-anchor": anchor, class: "tick" });
    label.textContent = Number(v.toPrecision(3)).toString();
    svg.appendChild(label);
  }
  // a nested <svg> is the plot area: it clips the curves and the tangent to the frame
  const g = svgEl("svg", { class: "curves", x: PLOT.pad, y: PLOT.pad, width: PLOT.w - 2 * PLOT.pad, height: PLOT.h - 2 * PLOT.pad, viewBox: `${PLOT.pad} ${PLOT.pad} ${PLOT.w - 2 * PLOT.pad} ${PLOT.h - 2 * PLOT.pad}` });
  g.appendChild(polyline(p.x, p.f, p, "f"));
  g.appendChild(polyline(p.x, p.df, p, "df"));
  svg.appendChild(g);
  for (const [name, cls, i] of [["f", "f", 0], ["f′", "df", 1]]) {
    const key = svgEl("text", { x: PLOT.w - PLOT.pad - 40, y: PLOT.pad + 16 + 16 * i, class: `key ${cls}` });
    key.textContent = name;
    svg.appendChild(key);
  }
  if (check && check.f !== null) {
    const x0 = check.x, y0 = check.f, slope = check.analytic ?? check.autodiff;
    if (slope !== null) {
      // the tangent y0 + slope (x - x0), cut to the plot window
      let xa = p.x[0], xb = p.x.at(-1);
      if (slope !== 0) {
        const xs = [p.y[0], p.y[1]].map((y) => x0 + (y - y0) / slope).sort((a, b) => a - b);
        xa = Math.max(xa, xs[0]);
        xb = Math.min(xb, xs[1]);
      }
      if (xa < xb) g.appendChild(svgEl("line", { x1: scaleX(xa, p), y1: scaleY(y0 + slope * (xa - x0), p), x2: scaleX(xb, p), y2: scaleY(y0 + slope * (xb - x0), p), class: "tangent", "data-testid": "tangent" }));
    }
    const dot = svgEl("circle", { cx: scaleX(x0, p), cy: scaleY(Math.min(Math.max(y0, p.y[0]), p.y[1]), p), r: 7, class: "handle", "data-testid": "plot-handle" });
    svg.appendChild(dot);
  }
}

let pointSeq = 0;
async function runPoint(x) {
  if (!derive.data || !derive.data.plot) return;
  const seq = ++pointSeq;
  const data = await api("/api/point", { expr: derive.expr, wrt: derive.wrt, x, lang });
  if (!data || seq !== pointSeq) return;
  derive.x = x;
  drawPlot(data);
  const table = $("point-check");
  table.replaceChildren();
  const rows = [[`${t("at")} ${fmt(x)}`, `f = ${fmt(data.f)}`], [t("analytic"), fmt(data.analytic)], [t("central"), fmt(data.central)], [t("autodiff"), fmt(data.autodiff)]];
  for (const [a, b] of rows) {
    const tr = el("tr");
    tr.append(el("th", {}, a), el("td", {}, b));
    table.appendChild(tr);
  }
  const tr = el("tr", { class: data.agree ? "ok" : "bad" });
  tr.append(el("td", { colspan: "2", "data-testid": "point-agree" }, data.agree ? `✓ ${t("agree")}` : `✗ ${t("disagree")}`));
  table.appendChild(tr);
}

function setupPlotDrag() {
  const svg = $("plot");
  let dragging = false;
  let queued = null;
  const move = (ev) => {
    const p = derive.data && derive.data.plot;
    if (!p) return;
    const box = svg.getBoundingClientRect();
    const px = ((ev.clientX - box.left) / box.width) * PLOT.w;
    const x = Math.min(Math.max(unscaleX(px, p), p.x[0]), p.x.at(-1));
    // one request in flight at a time; the latest position wins
    if (queued === null) {
      queued = x;
      runPoint(Math.round(x * 1000) / 1000).finally(() => { const q = queued; queued = null; if (q !== x) runPoint(Math.round(q * 1000) / 1000); });
    } else queued = x;
  };
  svg.addEventListener("pointerdown", (ev) => { dragging = true; svg.setPointerCapture(ev.pointerId); move(ev); });
  svg.addEventListener("pointermove", (ev) => { if (dragging) move(ev); });
  svg.addEventListener("pointerup", () => { dragging = false; });
}

// ---------------------------------------------------------------- graph and backprop
const graph = { data: null, step: 0, timer: null, at: {}, program: "" };

function parseAt(text) {
  const at = {};
  for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [k, v] = item.split("=").map((s) => s.trim());
    at[k] = Number(v);
    if (!k || v === undefined || !Number.isFinite(at[k])) { showError(`inputs: expected NAME=VALUE, got ${item}`); return null; }
  }
  return at;
}

function atText(at) { return Object.entries(at).map(([k, v]) => `${k}=${v}`).join(", "); }

let graphSeq = 0;
async function runGraph(rebuildSliders = true) {
  const form = document.querySelector('[data-form="graph"]');
  const at = rebuildSliders ? parseAt(form.at.value) : graph.at;
  if (!at) return;
  const seq = ++graphSeq;
  const data = await api("/api/graph", { program: form.program.value, at });
  if (!data || seq !== graphSeq) return; // a newer request (another example) wins
  Object.assign(graph, { data, at, program: form.program.value });
  if (rebuildSliders) buildSliders(data.inputs);
  else updateSliders(data.inputs);
  const box = $("graph");
  box.replaceChildren(build(data.svg, SVGNS));
  const trace = $("trace");
  trace.replaceChildren(...data.steps.map((s, i) => {
    const item = el("li", { "data-step": String(i) }, s.line);
    item.addEventListener("click", () => showStep(i));
    return item;
  }));
  $("forward").replaceChildren(...data.forward.map((s) => el("li", {}, s)));
  showStep(Math.min(graph.step, data.steps.length - 1));
}

function buildSliders(inputs) {
  const box = $("sliders");
  box.replaceChildren();
  for (const inp of inputs) {
    const span = Math.max(3, Math.ceil(Math.abs(inp.value) * 2));
    const label = el("label", { class: "slider" });
    const name = el("span", { class: "name" }, inp.name);
    const slider = el("input", { type: "range", min: String(-span), max: String(span), step: "0.01", value: String(inp.value), "data-testid": `param-${inp.name}`, "aria-label": inp.name });
    const value = el("span", { class: "value", "data-testid": `value-${inp.name}` }, inp.value.toFixed(2));
    const grad = el("span", { class: "gradval", "data-testid": `grad-${inp.name}` }, "");
    slider.addEventListener("input", () => {
      graph.at[inp.name] = Number(slider.value);
      value.textContent = Number(slider.value).toFixed(2);
      document.querySelector('[data-form="graph"]').at.value = atText(graph.at);
      scheduleGraph();
    });
    label.append(name, slider, value, grad);
    box.appendChild(label);
  }
  updateSliders(inputs);
}

function updateSliders(inputs) {
  for (const inp of inputs) {
    const g = $(`grad-${inp.name}`);
    if (g) g.textContent = `∂${graph.data ? graph.data.output : ""}/∂${inp.name} = ${inp.grad === null ? "—" : inp.grad.toFixed(4)}`;
  }
}

let graphBusy = false, graphAgain = false;
async function scheduleGraph() {
  if (graphBusy) { graphAgain = true; return; }
  graphBusy = true;
  try { await runGraph(false); } finally { graphBusy = false; }
  if (graphAgain) { graphAgain = false; scheduleGraph(); }
}

function showStep(i) {
  const data = graph.data;
  if (!data || !data.steps.length) return;
  graph.step = Math.max(0, Math.min(i, data.steps.length - 1));
  const step = data.steps[graph.step];
  for (const node of $("graph").querySelectorAll("g.node")) node.classList.toggle("active", node.getAttribute("id") === step.node);
  for (const li of $("trace").children) li.classList.toggle("active", li.dataset.step === String(graph.step));
  $("step-current").textContent = step.line;
  $("step-count").textContent = lang === "zh" ? `${t("step")} ${graph.step + 1} ${t("of")} ${data.steps.length}` : `${t("step")} ${graph.step + 1} ${t("of")} ${data.steps.length}`;
  // keep the highlighted box in view inside the graph's own scroll area (not the page's)
  const box = $("graph"), active = box.querySelector("g.node.active");
  if (active) {
    const a = active.getBoundingClientRect(), b = box.getBoundingClientRect();
    if (a.top < b.top || a.bottom > b.bottom) box.scrollTop += a.top - b.top - (b.height - a.height) / 2;
  }
}

function togglePlay() {
  const button = $("step-play");
  if (graph.timer) {
    clearInterval(graph.timer);
    graph.timer = null;
    button.textContent = t("play");
    return;
  }
  if (graph.data && graph.step >= graph.data.steps.length - 1) showStep(0);
  button.textContent = t("pause_play");
  graph.timer = setInterval(() => {
    if (!graph.data || graph.step >= graph.data.steps.length - 1) { togglePlay(); return; }
    showStep(graph.step + 1);
  }, 900);
}

async function loadExample(name) {
  const examples = await api("/api/examples");
  if (!examples || !examples[name]) return;
  const form = document.querySelector('[data-form="graph"]');
  form.program.value = examples[name].program;
  form.at.value = atText(examples[name].at);
  graph.step = 0;
  await runGraph(true);
}

// ---------------------------------------------------------------- check my answer, practice
// The derivation under a wrong answer, folded away (it gives the answer away), with the step
// the answer departs from marked.
function showSteps(data, stepsId) {
  const box = $(stepsId);
  box.replaceChildren();
  box.hidden = data.verdict !== "wrong" || !data.steps;
  if (box.hidden) return;
  const marked = data.departs ? data.departs.line : null;
  const details = el("details");
  details.appendChild(el("summary", {}, marked === null ? t("steps_all") : t("steps_marked")));
  const tree = el("div", { class: "tree" });
  for (const node of data.steps) tree.appendChild(stepNode(node, marked));
  details.appendChild(tree);
  box.appendChild(details);
}

function showVerdict(data, verdictId, hintsId, nextId, stepsId) {
  showSteps(data, stepsId);
  const verdict = $(verdictId);
  verdict.replaceChildren();
  verdict.className = `verdict ${data.verdict}`;
  const head = el("strong", {}, data.verdict === "correct" ? `✓ ${t("correct")}` : data.verdict === "equivalent" ? `✓ ${t("equivalent")}` : `✗ ${t("wrong")}`);
  verdict.appendChild(head);
  for (const line of data.messages) verdict.appendChild(el("p", {}, line));
  if (data.expected && data.verdict !== "correct") {
    const p = el("p", { class: "muted" }, `${t("yours")} `);
    p.appendChild(build(data.yours, MATHML));
    verdict.appendChild(p);
  }
  const hints = $(hintsId);
  hints.replaceChildren();
  const next = $(nextId);
  const queue = data.verdict === "wrong" ? [...data.hints] : [];
  const reveal = () => {
    const h = queue.shift();
    if (h) {
      const li = el("li", {});
      segments(li, h);
      hints.appendChild(li);
    }
    next.hidden = queue.length === 0;
  };
  next.onclick = reveal;
  if (queue.length) reveal();
  else next.hidden = true;
}

async function runCheck() {
  const form = document.querySelector('[data-form="check"]');
  const data = await api("/api/check", { expr: form.expr.value, wrt: form.wrt.value || "x", answer: form.answer.value, lang });
  if (data) showVerdict(data, "answer-verdict", "hints", "hint-next", "check-steps");
}

const practice = { exercise: null, index: 0, key: "" };
async function newExercise() {
  const form = document.querySelector('[data-form="practice"]');
  const key = `${form.rule.value}/${form.difficulty.value}`;
  practice.index = key === practice.key ? practice.index + 1 : 0;
  practice.key = key;
  const data = await api("/api/practice", { rule: form.rule.value, difficulty: Number(form.difficulty.value), index: practice.index, lang });
  if (!data) return;
  practice.exercise = data;
  const p = $("practice-exercise");
  p.replaceChildren(el("span", {}, `${t("exercise")} `), build(data.math, MATHML), el("span", {}, ` ${t("wrt")} ${data.wrt}`));
  if (data.source) p.appendChild(el("span", { class: "muted" }, `  (${data.source})`));
  $("practice-answer").value = "";
  $("practice-verdict").replaceChildren();
  $("practice-hints").replaceChildren();
  $("practice-hint-next").hidden = true;
  $("practice-steps").hidden = true;
}

async function checkExercise() {
  if (!practice.exercise) await newExercise();
  const ex = practice.exercise;
  if (!ex) return;
  const data = await api("/api/check", { expr: ex.expr, wrt: ex.wrt, answer: $("practice-answer").value, lang });
  if (data) showVerdict(data, "practice-verdict", "practice-hints", "practice-hint-next", "practice-steps");
}

// ---------------------------------------------------------------- train
// The server streams each run as Server-Sent Events: one "progress" event per epoch (and on
// pause and at the end). Pause and resume are requests; the stream stays open through them.
const train = { id: null, source: null, history: [], since: 0, paused: false };

async function startTraining() {
  const form = document.querySelector('[data-form="train"]');
  if (train.id && train.paused) {
    if (await api(`/api/train/${train.id}/resume`, {})) train.paused = false;
    if (!train.source) follow();
    return;
  }
  await resetTraining();
  const hidden = form.hidden.value.split(",").map((s) => Number(s.trim())).filter((n) => n > 0);
  const data = await api("/api/train/start", { dataset: form.dataset.value, hidden, activation: form.activation.value, lr: Number(form.lr.value) });
  if (!data) return;
  Object.assign(train, { id: data.id, history: [], since: 0, paused: false });
  follow();
}

function follow() {
  closeStream();
  const id = train.id;
  const source = new EventSource(`/api/train/${id}/events?since=${train.since}`);
  train.source = source;
  source.addEventListener("progress", (ev) => {
    if (id !== train.id) return;
    const data = JSON.parse(ev.data);
    train.history.push(...data.history);
    train.since = train.history.length;
    drawTraining(data);
    // the server ends the stream after these; closing keeps EventSource from reconnecting
    if (data.status === "done" || data.status === "stopped") closeStream();
  });
  source.addEventListener("error", () => {
    // CONNECTING: the browser reconnects by itself (with Last-Event-ID); CLOSED: refused
    if (source.readyState === EventSource.CLOSED && train.source === source) {
      closeStream();
      showError("the training stream was refused (too many open tabs?); press Start to retry");
    }
  });
}

function closeStream() {
  if (train.source) train.source.close();
  train.source = null;
}

async function pauseTraining() {
  if (!train.id) return;
  if (await api(`/api/train/${train.id}/pause`, {})) train.paused = true;
}

async function resetTraining() {
  closeStream();
  if (train.id) await api(`/api/train/${train.id}/stop`, {});
  Object.assign(train, { id: null, history: [], since: 0, paused: false });
  $("train-status").textContent = "";
  $("train-loss").replaceChildren();
  const c = $("train-boundary");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
}

const CLASS_RGB = [[37, 99, 235], [234, 88, 12], [22, 163, 74], [147, 51, 234]];
function drawTraining(data) {
  const last = train.history.at(-1);
  const status = { running: t("running"), paused: t("paused"), done: t("done"), stopped: t("stopped") }[data.status] || data.status;
  $("train-status").textContent = last
    ? `${status} · ${t("epoch")} ${last.epoch} · ${t("train_loss")} ${last.train_loss.toFixed(4)} · ${t("test_acc")} ${(100 * last.test_accuracy).toFixed(1)}%`
    : status;
  if (data.error) showError(data.error);
  const b = data.boundary;
  const canvas = $("train-boundary");
  const ctx = canvas.getContext("2d");
  if (b) {
    // the grid goes into an n x n image that the canvas scales up smoothly
    const n = b.size, img = new ImageData(n, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      const k = b.classes[i * n + j], conf = Math.max(0, Math.min(1, b.confidence[i * n + j]));
      const [r, g, bl] = CLASS_RGB[k % CLASS_RGB.length];
      const a = 0.1 + 0.3 * conf, o = ((n - 1 - i) * n + j) * 4;
      img.data.set([255 - a * (255 - r), 255 - a * (255 - g), 255 - a * (255 - bl), 255], o);
    }
    const small = document.createElement("canvas");
    small.width = small.height = n;
    small.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    const [x0, x1, y0, y1] = b.extent;
    for (const [x, y, k] of b.points) {
      const [r, g, bl] = CLASS_RGB[k % CLASS_RGB.length];
      ctx.fillStyle = `rgb(${r},${g},${bl})`;
      ctx.strokeStyle = "rgba(17,24,39,0.7)";
      ctx.lineWidth = 0.8;
      ctx.beginPath();
      ctx.arc(((x - x0) / (x1 - x0)) * canvas.width, canvas.height - ((y - y0) / (y1 - y0)) * canvas.height, 3.2, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
  }
  const svg = $("train-loss");
  svg.replaceChildren();
  if (train.history.length) {
    const losses = train.history.map((h) => h.train_loss);
    const top = Math.max(...losses) * 1.05, n = Math.max(train.history.length, data.epochs || 1);
    const p = { x: [0, n], y: [0, top] };
    svg.appendChild(svgEl("rect", { x: PLOT.pad, y: PLOT.pad, width: PLOT.w - 2 * PLOT.pad, height: PLOT.h - 2 * PLOT.pad, class: "frame" }));
    svg.appendChild(polyline(train.history.map((h) => h.epoch), losses, p, "f"));
    const label = svgEl("text", { x: 2, y: PLOT.pad + 4, class: "tick" });
    label.textContent = top.toPrecision(3);
    svg.appendChild(label);
    const axis = svgEl("text", { x: PLOT.w - PLOT.pad, y: PLOT.h - 8, "text-anchor": "end", class: "tick" });
    axis.textContent = `${t("epoch")} ${n}`;
    svg.appendChild(axis);
  }
}

// ---------------------------------------------------------------- page
function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("lang-toggle").textContent = lang === "en" ? "中文" : "English";
  if (graph.timer) $("step-play").textContent = t("pause_play");
}

function showView(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) tab.setAttribute("aria-selected", String(tab.dataset.view === name));
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${name}`;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "graph" && !graph.data) loadExample("seed-network");
}

function init() {
  for (const tab of document.querySelectorAll("[role=tab]")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("lang-toggle").addEventListener("click", () => {
    lang = lang === "en" ? "zh" : "en";
    applyLanguage();
    // what is on screen is asked for again in the new language
    if (derive.data) runDerive();
    if ($("answer-verdict").childElementCount) runCheck();
    if ($("practice-verdict").childElementCount) checkExercise();
    if (graph.data) showStep(graph.step);
  });
  const forms = {
    derive: () => runDerive(true), graph: () => { graph.step = 0; return runGraph(true); },
    check: runCheck, train: startTraining, practice: newExercise, "practice-answer": checkExercise,
  };
  for (const [name, fn] of Object.entries(forms)) {
    document.querySelector(`[data-form="${name}"]`).addEventListener("submit", (ev) => { ev.preventDefault(); fn(); });
  }
  document.querySelector('[data-form="derive"]').wrt.addEventListener("change", () => runDerive(true));
  for (const button of document.querySelectorAll("[data-expr]")) {
    button.addEventListener("click", () => {
      document.querySelector('[data-form="derive"]').expr.value = button.dataset.expr;
      runDerive(false);
    });
  }
  for (const button of document.querySelectorAll("[data-example]")) button.addEventListener("click", () => loadExample(button.dataset.example));
  $("step-next").addEventListener("click", () => showStep(graph.step + 1));
  $("step-prev").addEventListener("click", () => showStep(graph.step - 1));
  $("step-play").addEventListener("click", togglePlay);
  $("train-pause").addEventListener("click", pauseTraining);
  $("train-reset").addEventListener("click", resetTraining);
  setupPlotDrag();
  const view = location.hash.slice(1);
  showView(["derive", "graph", "check", "train", "practice"].includes(view) ? view : "derive");
  runDerive(false);
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", init);
