"""Name scopes as a tree, and which scopes to collapse into single boxes.

TensorFlow names carry their scope (``model/conv1/BiasAdd`` lives in
``model/conv1``); Keras puts each layer in a scope of its own, so scopes are
what a reader thinks in.  A scope that wraps (nearly) the whole graph, like
Keras' ``functional_1``, adds nothing and is made transparent, so depth 1
means "the layers".
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# A lone top-level scope is made transparent when it holds at least this share of the nodes.
WRAPPER_SHARE = 0.5


@dataclass(eq=False)
class Scope:
    path: str                      # full name-scope path, "" for the root
    depth: int                     # 0 for the root, 1 for its children, ...
    members: list[str] = field(default_factory=list)   # nodes directly inside
    children: dict[str, "Scope"] = field(default_factory=dict)  # by path
    total: int = 0                 # nodes in this scope and below

    def walk(self):
        yield self
        for child in self.children.values():
            yield from child.walk()

    def nodes(self):
        """Every node in this scope and below."""
        for scope in self.walk():
            yield from scope.members


def _wrapper_prefix(parts_of: dict[str, list[str]]) -> list[str]:
    """Leading scope components that (nearly) every node shares."""
    prefix: list[str] = []
    total = len(parts_of)
    while True:
        below = Counter(p[len(prefix)] for p in parts_of.values()
                        if len(p) > len(prefix) and p[:len(prefix)] == prefix)
        if len(below) != 1:
            return prefix
        (name, count), = below.items()
        if count < WRAPPER_SHARE * total:
            return prefix
        prefix.append(name)


def build_tree(names) -> Scope:
    """The scope tree of ``names`` (graph order kept inside each scope)."""
    parts_of = {name: name.split("/")[:-1] for name in names}
    prefix = _wrapper_prefix(parts_of)
    root = Scope("/".join(prefix), 0)
    for name, parts in parts_of.items():
        rel = parts[len(prefix):] if parts[:len(prefix)] == prefix else parts
        base = prefix if parts[:len(prefix)] == prefix else []
        scope = root
        scope.total += 1
        for i in range(len(rel)):
            path = "/".join(base + rel[:i + 1])
            child = scope.children.get(path)
            if child is None:
                child = Scope(path, scope.depth + 1)
                scope.children[path] = child
            scope = child
            scope.total += 1
        scope.members.append(name)
    return root


def count_by_scope(names) -> Counter:
    """Scope path -> how many of ``names`` lie in it (at any depth)."""
    counts: Counter = Counter()
    for name in names:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            counts["/".join(parts[:i])] += 1
    return counts


def boxes_at(root: Scope, depth: int) -> list[Scope]:
    """Scopes that collapsing at ``depth`` turns into boxes (those holding 2+ nodes)."""
    if depth <= 0:
        return []
    return [s for s in root.walk() if s.depth == depth and s.total >= 2]


def shown_count(root: Scope, depth: int) -> int:
    """How many nodes and boxes remain when scopes at ``depth`` are collapsed."""
    boxes = boxes_at(root, depth)
    return root.total - sum(b.total for b in boxes) + len(boxes)


def choose_depth(root: Scope, limit: int) -> int:
    """The deepest collapse that shows at most ``limit`` items (0 when all fit, else >= 1)."""
    if root.total <= limit:
        return 0
    deepest = max(s.depth for s in root.walk())
    for depth in range(deepest, 0, -1):
        if shown_count(root, depth) <= limit:
            return depth
    return 1
