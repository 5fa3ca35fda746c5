"""The ``trainfree`` command line: one module per sub-command, each parsing its flags and calling
:mod:`trainfree.api`. Nothing in the library imports this package."""
from __future__ import annotations

import argparse
import sys

from trainfree import __version__
from trainfree.cli import (analyze, combine, correlate, export, export_config, leaderboard, make_benchmark, metrics,
                           reproduce, report, score, search, suite, train)
from trainfree.errors import TrainfreeError

#: the sub-command modules, in the order `trainfree --help` lists them
COMMANDS = (score, correlate, reproduce, analyze, export, metrics, search, export_config, report, combine, train,
            make_benchmark, leaderboard, suite)


class Parser(argparse.ArgumentParser):
    """Exact flag names only: with argparse's prefix matching `--metric` would be taken for `--metrics`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from trainfree.benchmarks import shipped_names
    from trainfree.spaces import space_names

    parser = Parser(prog="trainfree", description="Training-free architecture search for language models: score "
                                                  "untrained networks, check the metrics against benchmarks of "
                                                  "trained ones, search spaces by the metrics that hold up.",
                    epilog=f"spaces: {', '.join(space_names())} (or a space file .toml/.json). benchmarks: "
                           f"{', '.join(shipped_names())} (or a file). `trainfree COMMAND --help` for a command's "
                           f"options; docs/README.md for the guides.")
    parser.add_argument("--version", action="version", version=f"trainfree {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first, registering its spaces and metrics (repeatable; also "
                             "$TRAINFREE_PLUGINS, comma-separated, and the trainfree.spaces / trainfree.metrics "
                             "entry points of installed packages); worker processes import it too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _preload_plugins(argv: list[str] | None) -> None:
    """Plug-ins load before the parser is built, so their spaces appear in --space's choices and help."""
    from trainfree.registry import ensure_plugins, load_plugins

    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    early.add_argument("--plugin", action="append", default=[])
    known, _ = early.parse_known_args(argv)
    ensure_plugins()
    load_plugins(known.plugin)


def _check_words(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Refuse an unknown sub-command or flag before argparse does, naming the closest ones: argparse would
    report a required flag missing instead (``--bench`` for ``--benchmark``), or print the top-level usage."""
    from trainfree.registry import did_you_mean

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    words, i = list(argv), 0
    while i < len(words) and words[i].startswith("-"):  # the global options before the command
        i += 2 if words[i] == "--plugin" else 1
    if i >= len(words) or words[i] in ("-h", "--help"):
        return
    command = words[i]
    if command not in sub.choices:
        parser.error(f"unknown command {command!r}{did_you_mean(command, sub.choices)}; commands: "
                     f"{', '.join(sub.choices)}")
    subparser = sub.choices[command]
    known = {o for action in subparser._actions for o in action.option_strings}
    for word in words[i + 1:]:
        if word == "--":
            break
        name = word.split("=", 1)[0]
        if name.startswith("--") and name not in known:
            subparser.error(f"unknown option {name}{did_you_mean(name, known)} (trainfree {command} --help lists "
                            f"its options)")


def main(argv: list[str] | None = None) -> int:
    from trainfree.cli._common import Interrupted, signals_stop_the_run

    try:
        _preload_plugins(argv)
    except TrainfreeError as err:
        print(f"trainfree: error: {err}", file=sys.stderr)
        return 2
    parser = build_parser()
    _check_words(parser, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        with signals_stop_the_run():
            return args.func(args)
    except TrainfreeError as err:
        print(f"trainfree: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `trainfree metrics | head`: the reader left, nothing is wrong
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Interrupted) else 2
        print("trainfree: interrupted" + (" (SIGTERM)" if signum == 15 else ""), file=sys.stderr)
        return 128 + signum
    except Exception as err:  # never a bare traceback for users; --debug shows it
        if args.debug:
            raise
        print(f"trainfree: internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
