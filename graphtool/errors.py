"""The one exception type users see.

Every problem caused by input (files, rules, options) is raised as a
``GraphtoolError`` whose message is a single line saying what is wrong and what
to do.  The CLI prints it without a traceback and exits with code 2; anything
else escaping is a bug in graphtool and is shown with its traceback.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class GraphtoolError(Exception):
    """A user-facing error: one line, names the file or node, says what to do."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """Suffix like " (did you mean 'conv1/Conv2D'?)", or "" when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + ", ".join(repr(c) for c in close) + "?)"
