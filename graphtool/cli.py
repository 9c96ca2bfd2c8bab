"""Command-line entry point: discovers sub-commands and turns errors into exit codes.

Exit codes: 0 success, 1 a check that ran and failed (validation, lint, rule
tests), 2 bad input (a ``GraphtoolError``; one line, no traceback unless
``--debug``).
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from graphtool import commands
from graphtool.errors import GraphtoolError


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"graphtool.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphtool",
        description="Rewrite TensorFlow frozen graphs so that OpenCV's DNN module runs them.",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show Python tracebacks on errors")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except GraphtoolError as exc:
        if args.debug:
            raise
        print(f"graphtool {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("graphtool: interrupted", file=sys.stderr)
        return 130
