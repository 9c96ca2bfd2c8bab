"""Running Graphviz's ``dot`` (through the ``graphviz`` package) to turn dot source into SVG."""
from __future__ import annotations

from graphtool.errors import GraphtoolError

MISSING_DOT = ("graphviz's `dot` program was not found; install it (Debian/Ubuntu: "
               "apt-get install graphviz; macOS: brew install graphviz)")


def dot_to_svg(source: str) -> str:
    """The SVG text ``dot`` draws for ``source``."""
    import graphviz

    try:
        return graphviz.pipe_string("dot", "svg", source, encoding="utf-8", quiet=True)
    except graphviz.ExecutableNotFound:
        raise GraphtoolError(MISSING_DOT) from None
    except graphviz.CalledProcessError as exc:
        stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else (
            exc.stderr or "")
        first = next((line for line in stderr.splitlines() if line.strip()), "no message")
        raise GraphtoolError(f"graphviz's dot failed to draw the graph: {first}") from None
