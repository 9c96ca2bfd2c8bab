"""graphtool test-rules: run the tests that live in rule files."""
from __future__ import annotations

import sys

NAME = "test-rules"
HELP = "run the tests declared in rule files (fire counts, ops, TensorFlow numerics)"


def add_arguments(parser) -> None:
    parser.add_argument("rules", nargs="+", metavar="RULES.yaml", help="rule files to test")
    parser.add_argument("--no-numeric", action="store_true",
                        help="skip the TensorFlow before/after comparison")
    parser.add_argument("-q", "--quiet", action="store_true", help="print failures only")


def run(args) -> int:
    from graphtool.rewrite.testing import collect, run_test

    from graphtool.lang.loader import load_rules

    for warning in load_rules(*args.rules).warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cases = collect(args.rules)
    if not cases:
        print("no tests found in " + ", ".join(args.rules))
        return 0
    failed = 0
    for rules, test in cases:
        result = run_test(rules, test, numeric=not args.no_numeric)
        failed += not result.passed
        if not (args.quiet and result.passed):
            print(result)
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0
