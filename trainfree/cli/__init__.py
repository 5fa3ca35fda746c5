"""The ``trainfree`` command line: one module per sub-command, each parsing its flags and calling
:mod:`trainfree.api`. Nothing in the library imports this package."""
from __future__ import annotations

import argparse
import sys

from trainfree import __version__
from trainfree.cli import analyze, correlate, export, metrics, reproduce, report, score, search
from trainfree.errors import TrainfreeError

#: the sub-command modules, in the order `trainfree --help` lists them
COMMANDS = (score, correlate, reproduce, analyze, export, metrics, search, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainfree", description="Training-free architecture search for language models.")
    parser.add_argument("--version", action="version", version=f"trainfree {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TrainfreeError as err:
        print(f"trainfree: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trainfree: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # never a bare traceback for users; --debug shows it
        if args.debug:
            raise
        print(f"trainfree: internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
