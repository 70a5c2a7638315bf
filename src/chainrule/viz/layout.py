"""A layered (Sugiyama-style) layout for DAGs drawn top to bottom; no Graphviz needed.

Steps: ranks by longest path to the output (each edge spans two ranks so its label gets a rank
of its own; every node sits just above its first consumer), a dummy node on every rank an edge
crosses,
barycenter ordering sweeps that keep the order with the fewest crossings, then x positions by
isotonic regression (each node pulled to its neighbours' mean, boxes never overlapping).
Pure Python and NumPy; knows boxes and edges, nothing about tensors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

NODE_GAP = 24.0  # horizontal space between boxes
RANK_GAP = 14.0  # vertical space between ranks
DUMMY_WIDTH = 10.0
MARGIN = 12.0
SWEEPS = 16


@dataclass
class Box:
    """A placed rectangle: centre (x, y), width, height."""

    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


@dataclass
class Route:
    """An edge's path (polyline through its dummies) and where its label box sits."""

    points: list[tuple[float, float]] = field(default_factory=list)
    label: Box | None = None

    def beziers(self) -> list[tuple[tuple[float, float], ...]]:
        """Cubic segments (p0, c1, c2, p1) with vertical tangents at every point."""
        segs: list[tuple[tuple[float, float], ...]] = []
        for (x0, y0), (x1, y1) in zip(self.points, self.points[1:]):
            dy = (y1 - y0) / 2
            segs.append(((x0, y0), (x0, y0 + dy), (x1, y1 - dy), (x1, y1)))
        return segs


@dataclass
class Layout:
    boxes: list[Box]
    routes: list[Route]
    width: float
    height: float


def layout(
    sizes: list[tuple[float, float]],
    edges: list[tuple[int, int]],
    labels: list[tuple[float, float] | None] | None = None,
) -> Layout:
    """Place boxes of `sizes` (w, h) for `edges` (u, v), u drawn above v.

    `labels[k]` is the (w, h) of edge k's label or None. Returns centres, edge routes from the
    bottom of u to the top of v, and the drawing's size.
    """
    n = len(sizes)
    labels = labels or [None] * len(edges)
    rank = _ranks(n, edges)
    # layered graph: real nodes 0..n-1, then dummies; chains[k] = the vertices of edge k
    vsize = [(float(w), float(h)) for w, h in sizes]
    vrank = list(rank)
    chains: list[list[int]] = []
    for k, (u, v) in enumerate(edges):
        chain = [u]
        for r in range(rank[u] + 1, rank[v]):
            lab = labels[k] if r == rank[v] - 1 else None
            vsize.append((lab[0] + DUMMY_WIDTH, lab[1]) if lab else (DUMMY_WIDTH, 0.0))
            vrank.append(r)
            chain.append(len(vsize) - 1)
        chains.append([*chain, v])
    layers = _order(vrank, chains)
    xs = _xcoords(layers, vsize, chains)
    ys, height = _ycoords(layers, vsize)
    return _finish(n, layers, vsize, xs, ys, height, chains, labels)


def _ranks(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Longest path to the sinks, two ranks per edge: every node sits just above its nearest
    consumer, so a parameter used late is drawn where it is used, not at the top."""
    succs: list[list[int]] = [[] for _ in range(n)]
    outdeg = [0] * n
    preds: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succs[u].append(v)
        preds[v].append(u)
        outdeg[u] += 1
    depth = [0] * n  # distance to the farthest sink, in ranks
    queue = [i for i in range(n) if outdeg[i] == 0]
    while queue:
        v = queue.pop()
        for u in preds[v]:
            depth[u] = max(depth[u], depth[v] + 2)
            outdeg[u] -= 1
            if outdeg[u] == 0:
                queue.append(u)
    top = max(depth, default=0)
    return [top - d for d in depth]


def _order(vrank: list[int], chains: list[list[int]]) -> list[list[int]]:
    """Vertices per rank, ordered by barycenter sweeps; the order with fewest crossings wins."""
    nr = max(vrank) + 1 if vrank else 0
    up: dict[int, list[int]] = {}
    down: dict[int, list[int]] = {}
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
    layers: list[list[int]] = [[] for _ in range(nr)]
    for v in _dfs_order(len(vrank), down, up):
        layers[vrank[v]].append(v)
    best, best_cross = [list(layer) for layer in layers], _crossings(layers, down)
    for sweep in range(SWEEPS):
        rng = range(1, nr) if sweep % 2 == 0 else range(nr - 2, -1, -1)
        nbrs = up if sweep % 2 == 0 else down
        for r in rng:
            adj = layers[r - 1] if sweep % 2 == 0 else layers[r + 1]
            pos = {v: i for i, v in enumerate(adj)}
            cur = {v: i for i, v in enumerate(layers[r])}
            layers[r].sort(key=lambda v: _barycenter(v, nbrs, pos, cur))
        cross = _crossings(layers, down)
        if cross < best_cross:
            best, best_cross = [list(layer) for layer in layers], cross
    return best


def _dfs_order(nv: int, down: dict[int, list[int]], up: dict[int, list[int]]) -> list[int]:
    """Vertices in depth-first order from the sources: related vertices start out adjacent."""
    seen: set[int] = set()
    out: list[int] = []
    for s in [v for v in range(nv) if v not in up] + list(range(nv)):
        stack = [s]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            out.append(v)
            stack.extend(reversed(down.get(v, [])))
    return out


def _barycenter(
    v: int, nbrs: dict[int, list[int]], pos: dict[int, int], cur: dict[int, int]
) -> float:
    ps = [pos[u] for u in nbrs.get(v, []) if u in pos]
    # a vertex without neighbours there keeps its place (scaled to the other layer's range)
    return sum(ps) / len(ps) if ps else cur[v] * (len(pos) / max(len(cur), 1))


def _crossings(layers: list[list[int]], down: dict[int, list[int]]) -> int:
    total = 0
    for r in range(len(layers) - 1):
        pos = {v: i for i, v in enumerate(layers[r + 1])}
        pairs = [(i, pos[w]) for i, v in enumerate(layers[r]) for w in down.get(v, []) if w in pos]
        if len(pairs) < 2:
            continue
        a, b = np.array(pairs, dtype=float).T
        total += int(np.sum((a[:, None] - a[None, :]) * (b[:, None] - b[None, :]) < 0)) // 2
    return total


def _xcoords(
    layers: list[list[int]], vsize: list[tuple[float, float]], chains: list[list[int]]
) -> list[float]:
    """Each vertex pulled toward the mean x of its neighbours, in sweeps down and up; the order
    is kept and boxes stay NODE_GAP apart (weighted isotonic regression per rank)."""
    x = [0.0] * len(vsize)
    for layer in layers:
        pos = 0.0
        for v in layer:
            x[v] = pos + vsize[v][0] / 2
            pos += vsize[v][0] + NODE_GAP
    nbr: dict[int, list[tuple[int, float]]] = {}
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            w = 2.0 if len(chain) > 3 else 1.0  # long edges pull harder: keep them straight
            nbr.setdefault(a, []).append((b, w))
            nbr.setdefault(b, []).append((a, w))
    order = list(range(len(layers)))
    for sweep in range(2 * SWEEPS):
        for r in order if sweep % 2 == 0 else order[::-1]:
            _place_rank(layers[r], vsize, x, nbr)
    return x


def _place_rank(
    layer: list[int],
    vsize: list[tuple[float, float]],
    x: list[float],
    nbr: dict[int, list[tuple[int, float]]],
) -> None:
    if not layer:
        return
    want, weight = [], []
    for v in layer:
        ns = nbr.get(v, [])
        tot = sum(w for _, w in ns)
        want.append(sum(x[u] * w for u, w in ns) / tot if tot else x[v])
        weight.append(tot if tot else 0.1)
    offs = [0.0]
    for a, b in itertools.pairwise(layer):
        offs.append(offs[-1] + (vsize[a][0] + vsize[b][0]) / 2 + NODE_GAP)
    fitted = _isotonic([d - o for d, o in zip(want, offs)], weight)
    for v, y, o in zip(layer, fitted, offs):
        x[v] = y + o


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return [m for m, _, c in blocks for _ in range(int(c))]


def _ycoords(
    layers: list[list[int]], vsize: list[tuple[float, float]]
) -> tuple[list[float], float]:
    ys = [0.0] * len(vsize)
    top = MARGIN
    for layer in layers:
        h = max((vsize[v][1] for v in layer), default=0.0)
        for v in layer:
            ys[v] = top + h / 2
        top += h + RANK_GAP
    return ys, top - RANK_GAP + MARGIN


def _finish(
    n: int,
    layers: list[list[int]],
    vsize: list[tuple[float, float]],
    xs: list[float],
    ys: list[float],
    height: float,
    chains: list[list[int]],
    labels: list[tuple[float, float] | None],
) -> Layout:
    left = min((xs[v] - vsize[v][0] / 2 for layer in layers for v in layer), default=0.0)
    shift = MARGIN - left
    xs = [x + shift for x in xs]
    width = max((xs[v] + vsize[v][0] / 2 for layer in layers for v in layer), default=0.0) + MARGIN
    boxes = [Box(xs[i], ys[i], vsize[i][0], vsize[i][1]) for i in range(n)]
    routes = []
    for k, chain in enumerate(chains):
        pts = []
        label = None
        for v in chain[1:-1]:
            if labels[k] is not None and v == chain[-2]:  # the label sits just above the target
                lw = vsize[v][0] - DUMMY_WIDTH
                lx = xs[v] - vsize[v][0] / 2 + DUMMY_WIDTH / 2
                pts.append((lx, ys[v]))
                label = Box(lx + DUMMY_WIDTH / 2 + lw / 2, ys[v], lw, vsize[v][1])
            else:
                pts.append((xs[v], ys[v]))
        routes.append(Route(pts, label))
    _attach_ports(boxes, chains, routes)
    return Layout(boxes, routes, width, height)


def _attach_ports(boxes: list[Box], chains: list[list[int]], routes: list[Route]) -> None:
    """Start each route on its source's bottom edge and end it on its target's top edge,
    spreading several edges across the side in the order of where they go."""
    outs: dict[int, list[int]] = {}
    ins: dict[int, list[int]] = {}
    for k, chain in enumerate(chains):
        outs.setdefault(chain[0], []).append(k)
        ins.setdefault(chain[-1], []).append(k)
    starts: dict[int, tuple[float, float]] = {}
    ends: dict[int, tuple[float, float]] = {}
    for table, side, result in ((outs, 1, starts), (ins, -1, ends)):
        for v, ks in table.items():
            b = boxes[v]
            aim = {k: _aim(routes[k], boxes, chains[k], side) for k in ks}
            ks = sorted(ks, key=lambda k: aim[k])
            span = min(b.w * 0.6, 18.0 * (len(ks) - 1))
            for i, k in enumerate(ks):
                dx = 0.0 if len(ks) == 1 else -span / 2 + span * i / (len(ks) - 1)
                result[k] = (b.x + dx, b.y + side * b.h / 2)
    for k, route in enumerate(routes):
        route.points = [starts[k], *route.points, ends[k]]


def _aim(route: Route, boxes: list[Box], chain: list[int], side: int) -> float:
    if route.points:
        return route.points[0][0] if side == 1 else route.points[-1][0]
    return boxes[chain[-1]].x if side == 1 else boxes[chain[0]].x
