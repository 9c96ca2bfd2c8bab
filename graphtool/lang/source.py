"""Reading YAML rule files while remembering where every value came from.

PyYAML's ``safe_load`` forgets positions, so an error about a rule could only
say "somewhere in the file".  Here the document is composed into PyYAML's node
tree (which carries marks) and converted to plain Python values by hand; on
the way every value's path (``("rules", 0, "pattern", "conv", "op")``) is
mapped to its line and column, and every mapping key to the key's own position.
Duplicate keys, which PyYAML would silently collapse, are errors.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from graphtool.errors import GraphtoolError

Path = tuple  # a path of mapping keys and sequence indices


@dataclass(frozen=True)
class Position:
    """A place in a rule file: 1-based line and column."""
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def shifted(self, line_offset: int, column: int) -> "Position":
        """The position ``line_offset`` lines further, at ``column`` (or shifted on line 0)."""
        if line_offset == 0:
            return Position(self.file, self.line, self.column + column)
        return Position(self.file, self.line + line_offset, column + 1)


@dataclass
class SourceMap:
    """Positions of the values (and of the mapping keys) of one YAML document."""
    file: str
    values: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    styles: dict = field(default_factory=dict)

    def at(self, path: Path, *, key: bool = False) -> Position:
        """The position of the value at ``path`` (or of its key); falls back to the parent."""
        table = self.keys if key else self.values
        path = tuple(path)
        while path:
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Position(self.file, 1, 1))

    def error(self, path: Path, message: str, *, key: bool = False) -> GraphtoolError:
        """A GraphtoolError prefixed with ``file:line:column`` of ``path``."""
        return GraphtoolError(f"{self.at(path, key=key)}: {message}")

    def text_start(self, path: Path) -> tuple[Position, int]:
        """Where the text of a scalar begins (skipping an opening quote), and its style.

        Block scalars (``|``, ``>``) start on the next line.
        """
        pos = self.at(path)
        style = self.styles.get(tuple(path))
        if style in ("'", '"'):
            return Position(pos.file, pos.line, pos.column + 1), 0
        if style in ("|", ">"):
            return Position(pos.file, pos.line + 1, pos.column), 1
        return pos, 0


class _Builder:
    """Turns a composed YAML node tree into Python values plus a SourceMap."""

    def __init__(self, file: str, loader):
        self.map = SourceMap(file)
        self.loader = loader

    def _pos(self, node) -> Position:
        mark = node.start_mark
        return Position(self.map.file, mark.line + 1, mark.column + 1)

    def build(self, node, path: Path = ()):
        self.map.values[path] = self._pos(node)
        if isinstance(node, yaml.MappingNode):
            result = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise GraphtoolError(f"{self._pos(key_node)}: mapping keys must be plain "
                                         "names, not lists or mappings")
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise GraphtoolError(f"{self._pos(key_node)}: YAML merge keys ('<<') are not "
                                         "supported in rule files; write the keys out")
                key = self.loader.construct_object(key_node)
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    key = str(key_node.value)
                if key in result:
                    first = self.map.keys[path + (key,)]
                    raise GraphtoolError(f"{self._pos(key_node)}: duplicate key {key!r} "
                                         f"(first given at line {first.line}); keep one")
                self.map.keys[path + (key,)] = self._pos(key_node)
                result[key] = self.build(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        self.map.styles[path] = node.style
        return self.loader.construct_object(node)


# libyaml's parser when PyYAML was built with it (5-10x faster; same nodes and marks).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, file: str):
    """Parse one YAML document: ``(value, SourceMap)``.  Syntax errors carry their position."""
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, SourceMap(file)
        builder = _Builder(file, loader)
        return builder.build(root), builder.map
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise GraphtoolError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise GraphtoolError(f"{file}: invalid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()


def read_yaml(path: str):
    """Read and parse a YAML file: ``(value, SourceMap)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GraphtoolError("no such rule file; check the path", path=path)
    if os.path.isdir(path):
        raise GraphtoolError("is a directory; give a .yaml rule file", path=path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise GraphtoolError(f"cannot read the rule file: {exc.strerror}", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise GraphtoolError("the rule file is not UTF-8 text", path=path) from None
    return parse_yaml(text, path)
