"""Find the first layer where the candidate stops computing what the reference computes.

When outputs disagree, the useful answer is *where*: every intermediate layer
of the candidate run (OpenCV layers, or candidate nodes under ``--engine tf``)
is compared with the reference's TensorFlow tensor of the same name - or of a
node that layer absorbed - walking the reference graph in topological order.
The first one beyond tolerance is reported with the nodes it covers and the
Consts (weights) they read.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graphtool.validate.compare import Comparison, align_and_compare
from graphtool.validate.layer_map import downstream_names, feeding_consts, topological_index


@dataclass
class Divergence:
    """Result of bisection: the first diverging node, or why there is none."""
    node: str | None = None             # reference tensor the diverging layer was compared with
    layer: str | None = None            # candidate layer (OpenCV layer or candidate node)
    layer_type: str | None = None
    covers: list[str] = field(default_factory=list)   # candidate nodes that layer computes
    consts: list[str] = field(default_factory=list)   # Consts those nodes read
    comparison: Comparison | None = None
    compared: int = 0                   # layers compared with a reference tensor
    matched_before: int = 0             # of those, within tolerance before the divergence
    last_match: str | None = None
    note: str | None = None


@dataclass
class LayerValues:
    """What the candidate run produced per layer, in the candidate's own names."""
    values: dict                        # layer name -> array (channels-last)
    order: list                         # layer names in the runtime's order
    types: dict = field(default_factory=dict)


def locate(reference, topology, layers: LayerValues, session, feeds, *, rtol: float,
           atol: float, any_layout: bool, weights=None) -> Divergence:
    """Compare every layer with the reference and return the first divergence.

    ``reference``/``topology`` are graphtool Graphs (the candidate's topology
    is what the runtime imported: the pbtxt when there is one, in which case
    ``weights`` is the .pb holding its Consts).  ``session``
    is a ``TFSession`` on the reference; ``any_layout`` lets each layer line
    up channels-first or channels-last, whichever fits (OpenCV makes no promise
    for intermediate blobs).
    """
    layer_set = set(layers.order)
    candidates = {}
    for name in layers.order:
        if name not in layers.values:
            continue
        names = downstream_names(topology, name, layer_set) if topology.get(name) else [name]
        if reference.get(name) is not None:
            names += downstream_names(reference, name, layer_set)
        names = [n for n in dict.fromkeys(names)
                 if reference.get(n) is not None and reference.node(n).op != "Const"]
        if names:
            candidates[name] = names
    if not candidates:
        return Divergence(note="no candidate layer is named after a reference node, so "
                               "intermediate values cannot be paired")
    fetchable = set(session.fetchable({n for names in candidates.values() for n in names}))
    candidates = {k: [n for n in v if n in fetchable] for k, v in candidates.items()}
    candidates = {k: v for k, v in candidates.items() if v}
    wanted = sorted({n for names in candidates.values() for n in names})
    expected = session.run(feeds, wanted)
    position = topological_index(reference)
    ordered = sorted(candidates, key=lambda layer: position[candidates[layer][0]])

    matched, last = 0, None
    for layer in ordered:
        best = _closest(layer, candidates[layer], expected, layers.values[layer], rtol=rtol,
                        atol=atol, any_layout=any_layout)
        if best.passed:
            matched, last = matched + 1, best.name
            continue
        covers = downstream_names(topology, layer, layer_set) if topology.get(layer) else [layer]
        return Divergence(node=best.name, layer=layer, layer_type=layers.types.get(layer),
                          covers=covers,
                          consts=feeding_consts(covers, topology, weights or topology),
                          comparison=best, compared=len(ordered), matched_before=matched,
                          last_match=last)
    return Divergence(compared=len(ordered), matched_before=matched, last_match=last,
                      note=f"all {len(ordered)} paired layers match the reference; the "
                           "difference appears only where outputs are read")


def _closest(layer: str, names, expected, value, *, rtol, atol, any_layout) -> Comparison:
    """The first reference tensor the layer matches, else the one it comes closest to."""
    results = []
    for name in names:
        result = align_and_compare(name, expected[name], value, rtol=rtol, atol=atol,
                                   best=any_layout)
        result.source = layer
        if result.passed:
            return result
        results.append(result)
    return min(results, key=lambda r: (r.max_rel is None, r.max_rel or 0.0))
