"""The `chainrule` command line: one sub-command per module in `chainrule.commands`.

Each command module defines `HELP`, `add_arguments(parser)` and `run(args) -> int`; it must import
its heavy dependencies (sympy, matplotlib, tqdm) inside `run`, so `chainrule --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module under chainrule.commands
COMMANDS = {
    "train": "train",
    "evaluate": "evaluate",
    "explain": "explain",
    "backprop": "backprop",
    "serve": "serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainrule", description="The chain rule, executable: autodiff, training, derivations."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"chainrule.commands.{module_name}")
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name == f"chainrule.commands.{module_name}":
                continue
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


# The optional dependencies (the `all` extra) and the features that need them.
EXTRAS = {"sympy": "derivations", "mpmath": "derivations", "matplotlib": "plots", "tqdm": "bars"}


# Commands that take typed math: "-x^2" there is a formula, not an unknown option.
_MATH_COMMANDS = ("explain", "backprop")


def _math_not_options(argv: list[str]) -> list[str]:
    """A leading space makes argparse read "-x^2" as a positional (the parser skips spaces);
    "--" options and "-h" stay options."""
    if not argv or argv[0] not in _MATH_COMMANDS:
        return argv
    dash = [a.startswith("-") and not a.startswith("--") and a != "-h" for a in argv]
    return [" " + a if d else a for a, d in zip(argv, dash)]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_math_not_options(sys.argv[1:] if argv is None else argv))
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ModuleNotFoundError as exc:  # `pip install chainrule` without the extras
        missing = (exc.name or "").partition(".")[0]
        if missing not in EXTRAS:
            raise
        print(
            f"chainrule {args.command}: {EXTRAS[missing]} need {missing}, which is not "
            "installed: pip install 'chainrule[all]'",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
