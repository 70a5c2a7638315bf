"""The CLI commands, one module each (`add_arguments`, `run`, `HELP`); shared options here."""

from __future__ import annotations

import argparse


def _mebibytes(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MiB") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return int(value * 2**20)


def add_max_bytes(parser: argparse.ArgumentParser) -> None:
    """`--max-mib N`: how much a checkpoint may decompress to (serialization.DEFAULT_MAX_BYTES)."""
    from chainrule.serialization import DEFAULT_MAX_BYTES

    parser.add_argument(
        "--max-mib",
        dest="max_bytes",
        type=_mebibytes,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"refuse a checkpoint whose arrays decompress to more than N MiB "
        f"(default {DEFAULT_MAX_BYTES // 2**20})",
    )
