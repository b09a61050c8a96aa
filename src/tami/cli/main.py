"""Entry point of the ``tami`` command: parses arguments, owns logging, maps errors to exit codes.

The global options (-q, --debug) are accepted before or after the subcommand: ``tami -q enhance x.mp4`` and
``tami enhance x.mp4 -q`` are the same.

Exit codes, the same for every command: 0 success; 2 usage and config errors (bad options, unknown names, config
values that cannot work: found before any work starts); 1 runtime failures (unreadable or mismatched data and
weights, failed runs, Ctrl-C). Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__
from ..errors import TamiError
from . import convert, data, demo, enhance, evaluate, info, report, synth, timeslice, train

# Every subcommand module defines NAME, HELP, add_arguments(parser) and run(args) -> int.
COMMANDS: tuple[ModuleType, ...] = (
    demo, enhance, evaluate, timeslice, report, train, synth, data, info, convert,
)

logger = logging.getLogger("tami")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tami",
        description="Low-light video enhancement by temporal adaptation (TAMI).",
    )
    parser.add_argument("--version", action="version", version=f"tami {__version__}")
    _add_global_options(parser, False)
    # The same options after the subcommand; SUPPRESS keeps a subcommand from resetting one given before it.
    after = argparse.ArgumentParser(add_help=False)
    _add_global_options(after, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=doc or module.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[after],
        )
        module.add_arguments(p)
        _add_to_nested_commands(p)
        p.set_defaults(_run=module.run)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="only print errors; no progress bars")
    group.add_argument("--debug", action="store_true", default=default,
                       help="verbose logs and full tracebacks on errors")


def _add_to_nested_commands(parser: argparse.ArgumentParser) -> None:
    """Accept the global options after a nested command too (``tami data check ROOT -q``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                _add_global_options(nested, argparse.SUPPRESS)
                _add_to_nested_commands(nested)


def _setup_logging(quiet: bool, debug: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if debug else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if not debug else "%(levelname)s %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tami`` command with ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.quiet, args.debug)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        logger.error("Stopped.")
        return 1
    except TamiError as exc:
        # UsageError (unknown names and options, config errors) exits 2, every other TamiError 1. A KeyError or
        # TypeError that is not a TamiError is a bug inside tami: the last branch reports it as one.
        if args.debug:
            logger.exception("error")
        logger.error("error: %s", exc)
        return exc.exit_code
    except Exception as exc:  # last resort: one line, traceback only on request
        if args.debug:
            logger.exception("internal error")
        logger.error("internal error: %s: %s (run with --debug for the traceback)", type(exc).__name__, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
