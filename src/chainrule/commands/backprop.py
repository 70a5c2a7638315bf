"""`chainrule backprop EXPR --at x=1,...`: forward values, the backward trace with every
chain-rule product, the gradient of every input, and (with --graph) a drawing of the graph.

EXPR is typed math read by the safe parser (`chainrule.symbolic.parse_program`): one expression
or statements `z1 = w1*x + b1; a1 = sigmoid(z1); ...`, whose names label the trace. Numbers come
from the engine, which evaluates the formula as typed (`chainrule.symbolic.evaluate`: `a2 - t`
is one subtraction, operands keep their order), in float64.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from chainrule import limits as L

HELP = "trace backpropagation through a formula: every chain-rule product, with numbers"
FORMATS = ("text", "markdown", "latex")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "expr",
        metavar="EXPR",
        help='a formula, e.g. "L = 0.5*(sigmoid(w*x + b) - t)^2", or statements separated by ;',
    )
    parser.add_argument(
        "--at",
        required=True,
        metavar="NAME=VALUE,...",
        help="a value for every input, e.g. x=1,w=0.5",
    )
    parser.add_argument(
        "--graph", metavar="FILE", help="also draw the graph (.svg, .png, .pdf, .dot)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="trace format (default text)"
    )
    parser.add_argument("--digits", type=int, default=3, help="decimals printed (default 3)")
    L.add_arguments(parser)


class InputError(ValueError):
    """Bad command-line input: reported as one line on stderr, exit code 2."""


def parse_at(text: str) -> dict[str, float]:
    """`"x=1, w1=0.5"` -> `{"x": 1.0, "w1": 0.5}`; InputError names the bad item.

    A name is what the parser reads as one variable (a letter, then letters, digits or `_`),
    so nothing printed for it can be markup.
    """
    from chainrule.symbolic.parse import _NAME, normalize

    values: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        name = normalize(name.strip())
        if not sep or not _NAME.fullmatch(name):
            raise InputError(f"--at: expected NAME=VALUE, got {item!r}")
        try:
            values[name] = float(value)
        except ValueError:
            raise InputError(f"--at: {name} = {value.strip()!r} is not a number") from None
        if not math.isfinite(values[name]):
            raise InputError(f"--at: {name} = {value.strip()} is not a finite number")
        if name in list(values)[:-1]:
            raise InputError(f"--at: {name} is given twice")
    if not values:
        raise InputError("--at: give a value for every input, e.g. --at x=1,w=0.5")
    return values


def build(expr: str, at: dict[str, float]) -> Any:
    """The engine tensor of the program's output; inputs are float64 leaves that require grad."""
    import numpy as np

    import chainrule as cr
    from chainrule.symbolic import ParseError, parse_program
    from chainrule.symbolic.evaluate import program_to_engine, tree_to_engine
    from chainrule.symbolic.tree import symbols

    try:
        program = parse_program(expr, names=at)
    except ParseError as exc:
        raise InputError(f"cannot read EXPR: {exc.message} at column {exc.position + 1}") from None
    except L.LimitError as exc:
        raise InputError(f"cannot read EXPR: {exc}") from None
    defined = {s.name for s in program.definitions}
    trees = [t for t in (program.tree, *program.trees.values()) if t is not None]
    needed = set().union(*map(symbols, trees)) - defined  # as typed: x - x still reads x
    if missing := sorted(needed - set(at)):
        raise InputError(f"no value for {', '.join(missing)}: add it to --at")
    if clash := sorted(defined & set(at)):
        raise InputError(f"{', '.join(clash)} is defined in EXPR and also given in --at")
    if extra := sorted(set(at) - needed):
        raise InputError(f"--at gives {', '.join(extra)}, which EXPR does not use")
    env = {k: cr.tensor(v, dtype=np.float64, requires_grad=True, name=k) for k, v in at.items()}
    point = ", ".join(f"{k} = {v:g}" for k, v in at.items())
    try:  # a NaN/inf is named at the op that made it, never printed beside finite gradients
        with cr.detect_anomaly():
            if program.output is not None:
                return program_to_engine(program, env)[program.output.name]
            assert program.tree is not None  # parse_program keeps the tree of what was typed
            return tree_to_engine(program.tree, env, name="f")
    except (NotImplementedError, ValueError) as exc:  # no engine op; (-2)^x
        raise InputError(str(exc)) from None
    except FloatingPointError as exc:
        why = str(exc).split(" (output shape")[0]
        raise InputError(f"EXPR has no finite value at {point}: {why}") from None


def run(args: argparse.Namespace) -> int:
    import numpy as np

    try:
        with L.enforced(L.from_args(args)), np.errstate(all="ignore"):
            return _run(args)
    except (InputError, L.LimitError) as exc:
        print(f"chainrule backprop: error: {exc}", file=sys.stderr)
        return 2
    except (RecursionError, MemoryError):
        print("chainrule backprop: error: EXPR is too large to trace", file=sys.stderr)
        return 2
    except ModuleNotFoundError:  # a missing extra: cli.main names the one to install
        raise
    except Exception as exc:  # a bug, still one line (the fuzz suite fails on this message)
        name = type(exc).__name__
        print(f"chainrule backprop: internal error: {name}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from chainrule import viz

    try:
        at = parse_at(args.at)
        out = build(args.expr, at)
        if not out.requires_grad:
            raise InputError("EXPR does not depend on any input")
        if args.digits < 0 or args.digits > 12:
            raise InputError(f"--digits must be between 0 and 12, got {args.digits}")
        trace = viz.trace(out, digits=args.digits)
        drawing = viz.graph(out, backward=True, digits=args.digits) if args.graph else None
        too_large = None
        if drawing is not None:
            try:
                drawing.save(args.graph)
            except viz.DrawingTooLarge as exc:  # the trace is still worth printing
                too_large = exc
    except (InputError, OSError) as exc:
        print(f"chainrule backprop: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # an unknown --graph extension
        print(f"chainrule backprop: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError:  # sympy missing: cli.main names the extra to install
        raise
    except ImportError as exc:  # viz.png's own message names the extra (matplotlib for PNG)
        print(f"chainrule backprop: error: {exc}", file=sys.stderr)
        return 2
    print(_report(trace, args.format, args.digits, order=list(at)))
    if undefined := _undefined_derivative(trace, at):
        print(f"chainrule backprop: error: {undefined}", file=sys.stderr)
        return 2
    if too_large is not None:
        print(f"chainrule backprop: error: --graph {args.graph}: {too_large}", file=sys.stderr)
        return 2
    if args.graph:
        print(f"wrote {args.graph}")
    return 0


def _undefined_derivative(trace: Any, at: dict[str, float]) -> str | None:
    """Where the backward walk first meets a local derivative that is not a finite number
    (sqrt'(0), |x|^0.5 at 0, ...): one line naming the node, the formula and the point, so a
    NaN or inf gradient is never left standing beside a finite value as if it were an answer."""
    import numpy as np

    point = ", ".join(f"{k} = {v:g}" for k, v in at.items())
    for step in trace.steps:
        if np.isfinite(step.grad).all():
            continue
        for term in step.terms:
            if np.isfinite(term.upstream).all() and not np.isfinite(term.contribution).all():
                return (
                    f"{term.consumer.label} has no finite derivative with respect to "
                    f"{step.node.label} at {point} (its local derivative {term.local.text})"
                )
        return f"d{trace.output.label}/d{step.node.label} is not a finite number at {point}"
    return None


def _report(trace: Any, fmt_name: str, digits: int, order: list[str]) -> str:
    from chainrule.viz import fmt

    body = {"text": trace.to_text, "markdown": trace.to_markdown, "latex": trace.to_latex}
    out = trace.output.label
    wrap = out if out.isidentifier() else f"({out})"
    grads = {k: trace.inputs[k] for k in order if k in trace.inputs}
    width = max(len(k) for k in grads) if grads else 0
    lines = [f"d{wrap}/d{k.ljust(width)} = {fmt.number(v, digits)}" for k, v in grads.items()]
    if fmt_name == "text":
        return body["text"]() + "\nGradients\n" + "\n".join("  " + s for s in lines)
    if fmt_name == "markdown":
        return body["markdown"]() + "\n\n**Gradients**\n\n" + "\n".join(f"- `{s}`" for s in lines)
    return body["latex"]()
