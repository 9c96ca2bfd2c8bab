"""Reading the rule engine's rewrite log and summarising it per rule and per node.

The log is JSON lines, one entry per rule application or action:
``{"rule", "stage", "root", "matched", "created", "removed", "changed"}``, or
``{"action", ...}`` with details such as ``"folded": [{"node", "op", ...}]``.
The renderer only annotates with it, so missing keys are tolerated; a file that
is not JSON lines is a user error.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field

from graphtool.errors import GraphtoolError

NAME_LISTS = ("matched", "created", "removed", "changed")


@dataclass
class LogEntry:
    rule: str
    stage: str = ""
    root: str = ""
    names: dict = field(default_factory=dict)   # list key -> node names
    raw: dict = field(default_factory=dict)

    def touched(self) -> list[str]:
        """Every node name the entry mentions, in order, without repeats."""
        seen = dict.fromkeys([self.root] if self.root else [])
        for key in NAME_LISTS + ("folded",):
            seen.update(dict.fromkeys(self.names.get(key, ())))
        return list(seen)


@dataclass
class RuleSummary:
    rule: str
    stage: str
    count: int
    nodes: list[str]


def _names(value) -> list[str]:
    """A list of names, or of dicts naming a node (``{"node": ...}``), as strings."""
    if not isinstance(value, (list, tuple)):
        return []
    names = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("node") or item.get("name")
        if item:
            names.append(str(item))
    return names


def _entry(raw: dict) -> LogEntry:
    rule = raw.get("rule") or raw.get("action") or "?"
    names = {key: _names(raw.get(key)) for key in NAME_LISTS + ("folded",)}
    return LogEntry(str(rule), str(raw.get("stage") or ""), str(raw.get("root") or ""),
                    names, raw)


def _read_lines(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except FileNotFoundError:
        raise GraphtoolError("no such rewrite log; check the --log path", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphtoolError(f"cannot read the rewrite log: {exc}", path=path) from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GraphtoolError(f"line {number} is not JSON ({exc.msg}); a rewrite log has "
                                 "one JSON object per line", path=path) from None
        if not isinstance(record, dict):
            raise GraphtoolError(f"line {number} is not a JSON object; a rewrite log has "
                                 "one JSON object per line", path=path)
        records.append(record)
    return records


def read_log(log) -> list[LogEntry]:
    """``log``: None, a list of dicts, or the path of a ``.jsonl`` file."""
    if log is None:
        return []
    if isinstance(log, (str, os.PathLike)):
        records = _read_lines(os.fspath(log))
    else:
        records = list(log)
    entries = []
    for record in records:
        if isinstance(record, LogEntry):
            entries.append(record)
        elif isinstance(record, dict):
            entries.append(_entry(record))
        else:
            raise GraphtoolError(f"a rewrite log entry must be a dict, not "
                                 f"{type(record).__name__}")
    return entries


def _label(entry: LogEntry) -> str:
    return f"{entry.rule} ({entry.stage})" if entry.stage else entry.rule


def rules_by_node(entries: list[LogEntry]) -> dict[str, list[str]]:
    """Node name -> the rules (with stage) whose applications touched it, in log order."""
    found: dict[str, dict] = defaultdict(dict)
    for entry in entries:
        for name in entry.touched():
            found[name][_label(entry)] = None
    return {name: list(rules) for name, rules in found.items()}


def summarize(entries: list[LogEntry]) -> list[RuleSummary]:
    """One row per (rule, stage): how often it applied and the nodes it touched."""
    rows: dict[tuple[str, str], RuleSummary] = {}
    seen: dict[tuple[str, str], dict] = defaultdict(dict)
    for entry in entries:
        key = (entry.rule, entry.stage)
        row = rows.get(key)
        if row is None:
            row = rows[key] = RuleSummary(entry.rule, entry.stage, 0, [])
        row.count += 1
        seen[key].update(dict.fromkeys(entry.touched()))
    for key, row in rows.items():
        row.nodes = list(seen[key])
    return list(rows.values())
