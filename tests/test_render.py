"""Rendering real frozen graphs: SVG structure, labels, clusters, collapse, focus, diffs.

Expectations come from the Keras model definitions (kernel shapes, strides,
padding), from TensorFlow (tensor shapes) or from the edits the tests make,
never from the renderer's own output.
"""
from __future__ import annotations

import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import graphtool
from graphtool import GraphtoolError
from graphtool.render import render_svg, render_to_file, write_diff, write_report

from conftest import FIXTURES, fixture_graphs, freeze_keras, run_cli

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


# -- helpers: read what the SVG shows -------------------------------------------

def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def node_groups(root) -> dict[str, ET.Element]:
    """Title (node name or scope box id) -> the <g class="node ..."> element."""
    found = {}
    for g in root.iter(SVG + "g"):
        if "node" in (g.get("class") or "").split():
            found[g.find(SVG + "title").text] = g
    return found


def texts(group) -> list[str]:
    return [t.text or "" for t in group.iter(SVG + "text")]


def tooltip(group) -> str:
    """The tooltip text (Graphviz writes runs of spaces as no-break spaces)."""
    for a in group.iter(SVG + "a"):
        return (a.get(XLINK + "title") or "").replace("\xa0", " ")
    return ""


def classes(group) -> set[str]:
    return set((group.get("class") or "").split())


def edges(root) -> dict[tuple[str, str], ET.Element]:
    """(source title, target title) -> <g class="edge"> (dot titles edges 'a->b')."""
    found = {}
    for g in root.iter(SVG + "g"):
        if "edge" in (g.get("class") or "").split():
            src, dst = g.find(SVG + "title").text.split("->")
            found[(src, dst)] = g
    return found


def outline_box(group):
    """Bounding box of a cluster's outline (a polygon, or a path when rounded)."""
    shape = next(e for e in group.iter() if e.tag in (SVG + "polygon", SVG + "path"))
    text = shape.get("points") or shape.get("d")
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", text)]
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def text_position(group):
    t = next(group.iter(SVG + "text"))
    return float(t.get("x")), float(t.get("y"))


# -- a real model whose facts we know from its definition ------------------------

@pytest.fixture(scope="session")
def model_pb(tmp_path_factory) -> Path:
    """Keras 3 model: stem conv (3x3, stride 2, 8 filters) + BN + ReLU, two branches, head."""
    import keras

    keras.utils.set_random_seed(3)
    x = keras.Input((16, 16, 3), name="image")
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="stem_conv")(x)
    y = keras.layers.BatchNormalization(name="stem_bn")(y)
    y = keras.layers.ReLU(name="stem_relu")(y)
    a = keras.layers.Conv2D(8, 1, padding="valid", name="branch_a")(y)
    b = keras.layers.DepthwiseConv2D(3, padding="same", name="branch_b")(y)
    y = keras.layers.Add(name="merge")([a, b])
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    y = keras.layers.Dense(5, activation="softmax", name="head")(y)
    return freeze_keras(keras.Model(x, y), tmp_path_factory.mktemp("render") / "model.pb")


@pytest.fixture()
def model(model_pb):
    return graphtool.load(model_pb)


def one(graph, op: str, scope: str):
    """The single node of ``op`` whose name has the scope component ``scope*``."""
    found = [n for n in graph.nodes_by_op(op)
             if any(part.startswith(scope) for part in n.name.split("/")[:-1])]
    assert len(found) == 1, (op, scope, [n.name for n in found])
    return found[0]


# -- tests ----------------------------------------------------------------------

@pytest.mark.parametrize("path", fixture_graphs(), ids=lambda p: p.name)
def test_every_fixture_renders_as_valid_svg_with_all_computing_nodes(path):
    graph = graphtool.load(path)
    drawn = node_groups(parse(render_svg(graph, collapse_depth=0)))
    # Every node that computes something is drawn under its own name; only
    # constants and Identity nodes may be folded into the labels of their readers.
    computing = {n.name for n in graph.nodes if n.op not in ("Const", "Identity")}
    assert computing <= set(drawn)


def test_labels_show_op_short_name_and_folded_constants(model):
    root = parse(render_svg(model, collapse_depth=0, shapes=False))
    drawn = node_groups(root)
    conv = one(model, "Conv2D", "stem_conv")
    label = texts(drawn[conv.name])
    assert label[0] == "Conv2D"
    assert conv.name.rsplit("/", 1)[1] in label
    # The kernel (3x3, 3 input channels, 8 filters) is folded into the label, not drawn.
    assert any("3x3x3x8 float32" in t for t in label)
    kernel_consts = [n.name for n in model.nodes_by_op("Const")
                     if n.tensor.shape == (3, 3, 3, 8)]
    assert kernel_consts and not set(kernel_consts) & set(drawn)
    dense = one(model, "MatMul", "head")
    assert any("8x5 float32" in t for t in texts(drawn[dense.name]))


def test_tooltips_list_every_attr(model):
    drawn = node_groups(parse(render_svg(model, collapse_depth=0, shapes=False)))
    conv = one(model, "Conv2D", "stem_conv")
    tip = tooltip(drawn[conv.name])
    assert tip.splitlines()[0] == conv.name
    assert "strides: [1, 2, 2, 1]" in tip      # stride 2 from the layer definition
    assert "padding: SAME" in tip
    for key in conv.attrs:                      # every attr the node carries
        assert f"  {key}: " in tip
    assert "3x3x3x8" in tip                     # the folded kernel, summarised


def test_name_scopes_are_clusters_containing_their_nodes(model):
    root = parse(render_svg(model, collapse_depth=0, shapes=False))
    clusters = {g.find(SVG + "title").text: g for g in root.iter(SVG + "g")
                if "cluster" in (g.get("class") or "").split()}
    bn_cluster = [t for t in clusters if "stem_bn" in t]
    assert bn_cluster, sorted(clusters)
    x0, y0, x1, y1 = outline_box(clusters[bn_cluster[0]])
    bn_ops = [n for n in model.nodes if "/stem_bn" in n.name and n.op in ("Rsqrt", "Sub")]
    drawn = node_groups(root)
    assert len(bn_ops) == 2
    for node in bn_ops:
        x, y = text_position(drawn[node.name])
        assert x0 <= x <= x1 and y0 <= y <= y1


def test_collapse_reduces_node_count_and_boxes_name_their_scope(model):
    full = node_groups(parse(render_svg(model, collapse_depth=0, shapes=False)))
    collapsed = node_groups(parse(render_svg(model, collapse_depth=1, shapes=False)))
    assert len(collapsed) < len(full)
    boxes = [g for g in collapsed.values() if "scope-box" in classes(g)]
    bn_box = [g for g in boxes if any("stem_bn" in t for t in texts(g))]
    assert len(bn_box) == 1
    in_scope = [n for n in model.names() if "/stem_bn_1/" in n or "/stem_bn/" in n]
    assert f"{len(in_scope)} nodes" in texts(bn_box[0])
    # Nothing inside the collapsed scope is drawn on its own.
    assert not set(in_scope) & set(collapsed)


def test_collapse_is_automatic_above_the_node_limit(model):
    full = node_groups(parse(render_svg(model, collapse_depth=0, shapes=False)))
    auto = node_groups(parse(render_svg(model, max_nodes_expanded=8, shapes=False)))
    assert len(auto) < len(full)
    assert any("scope-box" in classes(g) for g in auto.values())


def test_big_graph_collapses_automatically_and_quickly(resnet50_pb):
    graph = graphtool.load(resnet50_pb)
    assert len(graph) > 1000
    start = time.perf_counter()
    drawn = node_groups(parse(render_svg(graph)))
    elapsed = time.perf_counter() - start
    assert 20 < len(drawn) <= 400
    assert elapsed < 10, elapsed


def test_focus_draws_the_neighbourhood(model):
    relu = one(model, "Relu", "stem_relu")
    # Found with the graph API: its producer and its consumers (the two branch convolutions).
    producers = {i.split(":")[0] for i in relu.data_inputs}
    consumers = {c.name for c in model.consumers(relu.name)}
    assert len(consumers) == 2
    drawn = node_groups(parse(render_svg(model, focus=relu.name, radius=1, shapes=False)))
    assert set(drawn) == {relu.name} | producers | consumers
    assert "focus" in classes(drawn[relu.name])
    only = node_groups(parse(render_svg(model, focus=relu.name, radius=0, shapes=False)))
    assert set(only) == {relu.name}


def test_focus_on_unknown_node_suggests_close_names(model):
    relu = one(model, "Relu", "stem_relu")
    with pytest.raises(GraphtoolError) as info:
        render_svg(model, focus=relu.name.rsplit("/", 1)[0] + "/Relux")
    message = str(info.value)
    assert "\n" not in message and relu.name in message


def test_edge_labels_carry_tensorflow_shapes(model_pb, model):
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(model_pb.read_bytes())
    with tf.Graph().as_default() as tf_graph:
        tf.graph_util.import_graph_def(graph_def, name="")
    shapes = {}
    for op in tf_graph.get_operations():
        for port, t in enumerate(op.outputs):
            if t.shape.rank is not None:
                shapes[f"{op.name}:{port}"] = (tuple(t.shape.as_list()), t.dtype.name)
    relu = one(model, "Relu", "stem_relu")
    conv = one(model, "Conv2D", "branch_a")
    root = parse(render_svg(model, collapse_depth=0, shapes=shapes))
    label = texts(edges(root)[(relu.name, conv.name)])
    assert label == ["x".join(map(str, tf_graph.get_tensor_by_name(relu.name + ":0")
                                  .shape.as_list()))]   # 1x8x8x8 (stride 2 on 16x16)
    bare = parse(render_svg(model, collapse_depth=0, shapes=False))
    assert texts(edges(bare)[(relu.name, conv.name)]) == []


def test_names_and_attrs_are_escaped():
    graph = graphtool.Graph()
    graph.add_node("Placeholder", "in>put", attrs={"dtype": (1, "type")})
    odd = 'say "hi" <b>&amp; C:\\N \u00e9'
    graph.add_node("Relu", "scope&/re<lu", ["in>put"], {"T": (1, "type"), "_note": odd})
    svg = render_svg(graph, shapes=False)
    drawn = node_groups(parse(svg))
    assert set(drawn) == {"in>put", "scope&/re<lu"}
    tip = tooltip(drawn["scope&/re<lu"])
    # The backslash is shown as a look-alike, because dot expands backslash escapes.
    assert f"_note: {odd.replace(chr(92), chr(0x29f5))}" in tip


def test_diff_marks_removed_added_and_changed_nodes(model, tmp_path):
    after = model.copy()
    reader = one(after, "Conv2D", "branch_a")
    read = reader.input_node(1)                  # the kernel read, bypassed
    assert read.op == "Identity"
    relu = one(after, "Relu", "stem_relu")       # a computing node, bypassed
    conv = one(after, "DepthwiseConv2dNative", "branch_b")
    mean = one(after, "Mean", "gap")
    softmax = one(after, "Softmax", "head")
    after.bypass(read)
    after.bypass(relu)
    conv.set_attr("dilations", [1, 2, 2, 1])
    added = after.add_node("Relu6", "extra/relu6", [mean.name], {"T": mean.attr("T")})
    log = [{"rule": "drop-identity", "stage": "cleanup", "root": read.name,
            "removed": [read.name], "changed": [reader.name]},
           {"rule": "drop-relu", "stage": "test", "root": relu.name, "removed": [relu.name]},
           {"rule": "dilate", "stage": "test", "root": conv.name, "changed": [conv.name]}]
    result = write_diff(model, after, tmp_path / "out", log=log)
    assert sorted(os.listdir(tmp_path / "out")) == ["after.svg", "before.svg"]
    before = node_groups(parse((tmp_path / "out" / "before.svg").read_text()))
    after_g = node_groups(parse((tmp_path / "out" / "after.svg").read_text()))
    assert "mark-removed" in classes(before[relu.name])
    assert "removed by rule drop-relu (test)" in tooltip(before[relu.name])
    assert relu.name not in after_g
    assert "mark-added" in classes(after_g[added.name])
    assert added.name not in before
    for drawn in (before, after_g):
        assert "mark-changed" in classes(drawn[conv.name])
        tip = tooltip(drawn[conv.name])
        assert "attr dilations: [1, 1, 1, 1] -> [1, 2, 2, 1]" in tip
        assert "changed by rule dilate (test)" in tip
        # The bypassed kernel read is a constant: it stays folded into its (marked)
        # reader, whose label says it was removed.
        assert "mark-changed" in classes(drawn[reader.name])
        assert "changed by rule drop-identity (cleanup)" in tooltip(drawn[reader.name])
    assert any("1x1x8x8 float32 (removed)" in t for t in texts(before[reader.name]))
    assert not classes(after_g[softmax.name]) & {"mark-changed", "mark-added"}
    legend = [g for g in after_g.values() if "legend" in classes(g)]
    assert legend and any("added" in t for t in texts(legend[0]))
    assert sorted(result["diff"].removed) == sorted([read.name, relu.name])


def test_diff_recognises_a_rename(model, tmp_path):
    after = model.copy()
    output = model.node("Identity")           # the graph output, fed by the Softmax
    softmax = output.input_node(0).name
    after.bypass(after.node("Identity"))      # the Softmax takes the name "Identity"
    assert after.node("Identity").op == "Softmax"
    write_diff(model, after, tmp_path)
    before = node_groups(parse((tmp_path / "before.svg").read_text()))
    after_g = node_groups(parse((tmp_path / "after.svg").read_text()))
    assert "mark-removed" in classes(before["Identity"])
    assert "mark-changed" in classes(before[softmax])
    assert "renamed to 'Identity'" in tooltip(before[softmax])
    assert "renamed from " + repr(softmax) in tooltip(after_g["Identity"])


def test_report_is_self_contained(model, tmp_path):
    after = model.copy()
    after.bypass(one(after, "Conv2D", "branch_a").input_node(1))
    log_path = tmp_path / "log.jsonl"
    log_path.write_text('{"rule": "drop-identity", "stage": "s", "removed": ["x"]}\n'
                        '{"action": "fold_constants", "folded": [{"node": "c1", "op": "Mul"}]}\n')
    out = tmp_path / "report.html"
    write_report(out, model, after, log=str(log_path),
                 validation={"opencv": "4.13.0", "outputs": [
                     {"name": "Identity", "max_abs": 1.5e-6, "max_rel": 2e-5, "passed": True}]})
    page = out.read_text()
    assert page.count("<svg") == 2
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "drop-identity" in page and "fold_constants" in page and "4.13.0" in page
    assert '<td class="pass">pass</td>' in page


def test_bad_rewrite_log_is_a_one_line_error(model, tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"rule": "a"}\nnot json\n')
    with pytest.raises(GraphtoolError, match="line 2 is not JSON") as info:
        write_diff(model, model.copy(), tmp_path / "out", log=str(log))
    assert "\n" not in str(info.value)
    with pytest.raises(GraphtoolError, match="no such rewrite log"):
        write_diff(model, model.copy(), tmp_path / "out", log=str(tmp_path / "missing.jsonl"))


def test_jupyter_repr_is_svg():
    graph = graphtool.load(FIXTURES / "residual_concat.k3.pb")
    svg = graph._repr_svg_()
    root = parse(svg)
    assert root.tag == SVG + "svg"
    assert len(node_groups(root)) >= 5


def test_render_to_file_never_overwrites_the_input(tmp_path):
    src = tmp_path / "g.pb"
    src.write_bytes((FIXTURES / "conv_bn_pool.k3.pb").read_bytes())
    with pytest.raises(GraphtoolError):
        render_to_file(graphtool.load(src), src)
    assert src.read_bytes() == (FIXTURES / "conv_bn_pool.k3.pb").read_bytes()


# -- command line ----------------------------------------------------------------

def test_cli_render_and_diff(tmp_path):
    graph = FIXTURES / "conv_bn_pool.k3.pb"
    result = run_cli("render", graph, "-o", tmp_path / "g.svg", "--collapse-depth", "1",
                     "--no-shapes")
    assert result.returncode == 0, result.stderr
    parse((tmp_path / "g.svg").read_text())
    result = run_cli("diff", graph, FIXTURES / "conv_bn_pool.k2.pb", "-o", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "d")) == ["after.svg", "before.svg", "index.html"]


def _one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_focus_not_found(tmp_path):
    graph = FIXTURES / "conv_bn_pool.k3.pb"
    result = run_cli("render", graph, "-o", tmp_path / "g.svg", "--focus", "convolution")
    _one_line_error(result, "'convolution'", "conv_bn_pool_1/conv_1/convolution")
    assert not (tmp_path / "g.svg").exists()


def test_cli_unwritable_output_dir(tmp_path):
    graph = FIXTURES / "conv_bn_pool.k3.pb"
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _one_line_error(run_cli("diff", graph, graph, "-o", blocker / "sub"), "output directory")
    _one_line_error(run_cli("diff", graph, graph, "-o", blocker), "not a directory")
    _one_line_error(run_cli("render", graph, "-o", tmp_path / "missing" / "g.svg"),
                    "does not exist")


def test_cli_read_only_output_dir(tmp_path):
    graph = FIXTURES / "conv_bn_pool.k3.pb"
    if os.geteuid() == 0:
        # root writes into any 0500 directory; sysfs refuses even root.
        _one_line_error(run_cli("diff", graph, graph, "-o", "/sys/kernel"), "cannot write")
        _one_line_error(run_cli("diff", graph, graph, "-o", "/sys/graphtool-out"),
                        "cannot create the output directory")
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    _one_line_error(run_cli("diff", graph, graph, "-o", locked), "not writable")


def test_cli_without_dot(tmp_path):
    import shutil

    dot = shutil.which("dot")
    assert dot, "graphviz must be installed for this test"
    dot_dir = os.path.dirname(dot)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if p and os.path.realpath(p) != os.path.realpath(dot_dir))
    result = run_cli("render", FIXTURES / "conv_bn_pool.k3.pb", "-o", tmp_path / "g.svg",
                     env={"PATH": path})
    _one_line_error(result, "`dot` program was not found", "apt-get install graphviz")
