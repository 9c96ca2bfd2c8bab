"""Human-readable rendering of a ValidationReport: a verdict table, the error, the bisection."""
from __future__ import annotations

import math


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _stats(stats) -> str:
    if stats is None:
        return "-"
    return (f"{_shape(stats.shape)} min {_number(stats.min)} max {_number(stats.max)} "
            f"mean {_number(stats.mean)}")


def print_report(report, console=None) -> None:
    """Print ``report`` with rich (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if _is_terminal() else 160, highlight=False)
    console.print(f"reference  {report.reference}  (TensorFlow)")
    extra = f" + {report.pbtxt}" if report.pbtxt else ""
    console.print(f"candidate  {report.candidate}{extra}  ({report.runtime})")
    for item in report.inputs:
        console.print(f"input      {item['name']} {_shape(item['shape'])} {item['dtype']}, "
                      f"{item['source']}")
    if report.outputs:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("output", "verdict", "shape", "max abs err", "max rel err", "tolerance",
                       "layout", "read from"):
            table.add_column(column, no_wrap=True)
        for o in report.outputs:
            verdict = "[green]pass[/green]" if o.passed else "[red]FAIL[/red]"
            shape = _shape(o.reference.shape) if o.reference else "-"
            table.add_row(o.name, verdict, shape, _number(o.max_abs), _number(o.max_rel),
                          _number(o.tolerance), o.layout or "-", o.source or "-")
        console.print(table)
        for o in report.outputs:
            if o.error:
                console.print(f"[red]{o.name}[/red]: {o.error}")
    if report.error:
        console.print(f"[red]error[/red]      {report.error}")
    if report.bisect is not None:
        _print_bisect(console, report.bisect)
    console.print(_verdict(report))


def _print_bisect(console, found) -> None:
    if found.node is None:
        console.print(f"bisect     {found.note}")
        return
    c = found.comparison
    kind = f" ({found.layer_type})" if found.layer_type else ""
    rows = [
        ("first diverging node", f"[bold]{found.node}[/bold]"),
        ("candidate layer", f"{found.layer}{kind}, covering {', '.join(found.covers)}"),
        ("weights it reads", ", ".join(found.consts) or "none"),
        ("error", c.error or f"max abs err {_number(c.max_abs)} > tolerance "
                             f"{_number(c.tolerance)} (layout {c.layout})"),
        ("reference", _stats(c.reference)),
        ("candidate", _stats(c.candidate)),
        ("matched before it", f"{found.matched_before} of {found.compared} paired layers"
                              + (f", last {found.last_match}" if found.last_match else "")),
    ]
    for i, (label, text) in enumerate(rows):
        console.print(f"{'bisect' if i == 0 else '':10s} {label + ':':22s}{text}")


def _verdict(report) -> str:
    rule = f"max abs err <= {report.atol:g} + {report.rtol:g} x max(1, max|reference|)"
    if report.passed:
        return f"[green]PASS[/green]: all {len(report.outputs)} outputs within tolerance ({rule})"
    if report.error:
        return f"[red]FAIL[/red]: the candidate did not run in {report.runtime}"
    failed = len(report.failed_outputs)
    return f"[red]FAIL[/red]: {failed} of {len(report.outputs)} outputs beyond tolerance ({rule})"


def _is_terminal() -> bool:
    import sys
    return sys.stdout.isatty()
