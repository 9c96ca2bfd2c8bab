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

    console = console or Console(width=None if _is_terminal() else 120, highlight=False)
    console.print(f"reference  {report.reference}  (TensorFlow)")
    extra = f" + {report.pbtxt}" if report.pbtxt else ""
    console.print(f"candidate  {report.candidate}{extra}  ({report.runtime})")
    for item in report.inputs:
        console.print(f"input      {item['name']} {_shape(item['shape'])} {item['dtype']}, "
                      f"{item['source']}")
    if report.outputs:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("output", "shape", "max abs err", "max rel err", "tolerance", "layout",
                       "read from", "verdict"):
            table.add_column(column, no_wrap=column in ("output", "verdict"))
        for o in report.outputs:
            shape = _shape(o.reference.shape) if o.reference else "-"
            verdict = "[green]pass[/green]" if o.passed else "[red]FAIL[/red]"
            if o.error:
                verdict += f" ({o.error})"
            table.add_row(o.name, shape, _number(o.max_abs), _number(o.max_rel),
                          _number(o.tolerance), o.layout or "-", o.source or "-", verdict)
        console.print(table)
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
    console.print(f"bisect     first diverging node: [bold]{found.node}[/bold]  "
                  f"(candidate layer {found.layer}{kind}, {found.matched_before} of "
                  f"{found.compared} paired layers matched before it)")
    console.print(f"           covers {', '.join(found.covers)}; weights "
                  f"{', '.join(found.consts) or 'none'}")
    if c.error:
        console.print(f"           {c.error}")
    else:
        console.print(f"           max abs err {_number(c.max_abs)} > tolerance "
                      f"{_number(c.tolerance)} (layout {c.layout})")
    console.print(f"           reference  {_stats(c.reference)}")
    console.print(f"           candidate  {_stats(c.candidate)}")
    if found.last_match:
        console.print(f"           last matching node: {found.last_match}")


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
