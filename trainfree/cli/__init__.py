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
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first, registering its spaces and metrics (repeatable; also "
                             "$TRAINFREE_PLUGINS, comma-separated, and the trainfree.spaces / trainfree.metrics "
                             "entry points of installed packages); worker processes import it too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _preload_plugins(argv: list[str] | None) -> None:
    """Plug-ins load before the parser is built, so their spaces appear in --space's choices and help."""
    from trainfree.registry import ensure_plugins, load_plugins

    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--plugin", action="append", default=[])
    known, _ = early.parse_known_args(argv)
    ensure_plugins()
    load_plugins(known.plugin)


def main(argv: list[str] | None = None) -> int:
    try:
        _preload_plugins(argv)
    except TrainfreeError as err:
        print(f"trainfree: error: {err}", file=sys.stderr)
        return 2
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
