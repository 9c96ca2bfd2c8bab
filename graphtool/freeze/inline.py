"""Inline (Stateful)PartitionedCall nodes into the main graph.

`convert_variables_to_constants_v2` leaves calls to functions that must run
under XLA (Keras 3 grouped convolutions, as in ConvNeXt) in the graph.  A frozen
graph for OpenCV must have no function library, so their bodies are copied in
under the call's name.  The grouped Conv2D those bodies contain is something
TensorFlow's CPU kernels refuse outside XLA, so it is lowered to ops every
runtime has (DepthwiseConv2dNative, or Split + Conv2D per group + ConcatV2).
"""
from __future__ import annotations

import numpy as np

from graphtool.freeze.tensors import data_ref, split_ref

CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_MAX_CALLS = 10000


def inline_calls(graph_def) -> None:
    """Replace every call node whose function is in the library by the function's body."""
    library = {f.signature.name: f for f in graph_def.library.function}
    for _ in range(_MAX_CALLS):
        call = next((n for n in graph_def.node
                     if n.op in CALL_OPS and n.attr["f"].func.name in library), None)
        if call is None:
            break
        _inline_one(graph_def, call, library[call.attr["f"].func.name])
    lower_grouped_convolutions(graph_def)


def _inline_one(graph_def, call, fdef) -> None:
    from tensorflow.python.framework.function_def_to_graph import function_def_to_graph_def

    body, flat_names = function_def_to_graph_def(fdef)
    prefix = call.name + "/"
    data_inputs = [i for i in call.input if not i.startswith("^")]
    call_controls = [i for i in call.input if i.startswith("^")]
    args = {a.name: src for a, src in zip(fdef.signature.input_arg, data_inputs)}
    taken = {n.name for n in graph_def.node}

    def remap(ref: str) -> str:
        node, index, control = split_ref(ref)
        if node in args:
            src = args[node]
            return "^" + split_ref(src)[0] if control else src
        return "^" + prefix + node if control else data_ref(prefix + node, index)

    new_nodes = []
    for node in body.node:
        if node.op == "Placeholder" and node.name in args:
            continue
        copy = type(node)()
        copy.CopyFrom(node)
        copy.name = prefix + node.name
        if copy.name in taken:
            raise RuntimeError(f"inlining {call.name} would duplicate node {copy.name}")
        del copy.input[:]
        copy.input.extend(remap(i) for i in node.input)
        if not any(not i.startswith("^") for i in copy.input):
            copy.input.extend(call_controls)
        new_nodes.append(copy)

    outputs = []
    for out_arg in fdef.signature.output_arg:
        ret = fdef.ret[out_arg.name]
        node = ret.split(":")[0]
        outputs.append(args[node] if node in args else remap(flat_names.get(ret, ret)))
    output_nodes = sorted({split_ref(o)[0] for o in outputs})

    for node in graph_def.node:
        if node.name == call.name:
            continue
        rewired = []
        for ref in node.input:
            name, index, control = split_ref(ref)
            if name != call.name:
                rewired.append(ref)
            elif control:
                rewired.extend("^" + o for o in output_nodes)
            else:
                rewired.append(outputs[index])
        if rewired != list(node.input):
            del node.input[:]
            node.input.extend(dict.fromkeys(rewired))
    keep = [n for n in graph_def.node if n.name != call.name]
    del graph_def.node[:]
    graph_def.node.extend(keep + new_nodes)


def _const_value(nodes: dict, ref: str):
    """The numpy value behind a chain of Identity nodes ending in a Const, or None."""
    import tensorflow as tf

    name = split_ref(ref)[0]
    while name in nodes and nodes[name].op == "Identity":
        name = split_ref(nodes[name].input[0])[0]
    node = nodes.get(name)
    if node is None or node.op != "Const":
        return None
    return tf.make_ndarray(node.attr["value"].tensor)


def make_const(graph_def, name: str, value: np.ndarray):
    """Append a Const whose data sits in tensor_content (the only place OpenCV reads)."""
    import tensorflow as tf

    node = graph_def.node.add(name=name, op="Const")
    dtype = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr["dtype"].type = dtype
    tensor = node.attr["value"].tensor
    tensor.dtype = dtype
    for size in value.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = np.ascontiguousarray(value).tobytes()
    return node


def _input_channels(graph_def) -> dict:
    """Static channel count of every Conv2D's data input, from TF's shape inference."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    channels = {}
    for node in graph_def.node:
        if node.op == "Conv2D":
            shape = graph.get_tensor_by_name(_fetch(node.input[0])).shape
            axis = 1 if node.attr["data_format"].s == b"NCHW" else -1
            if shape.rank == 4 and shape[axis] is not None:
                channels[node.name] = int(shape[axis])
    return channels


def _fetch(ref: str) -> str:
    node, index, _ = split_ref(ref)
    return f"{node}:{index}"


def lower_grouped_convolutions(graph_def) -> None:
    """Rewrite Conv2D nodes whose kernel sees fewer channels than the input has."""
    nodes = {n.name: n for n in graph_def.node}
    convs = [n for n in graph_def.node if n.op == "Conv2D"]
    if not convs:
        return
    kernels = {n.name: _const_value(nodes, n.input[1]) for n in convs}
    if not any(k is not None and k.ndim == 4 for k in kernels.values()):
        return
    channels = _input_channels(graph_def)
    for conv in convs:
        kernel = kernels[conv.name]
        if kernel is None or conv.name not in channels or kernel.shape[2] == channels[conv.name]:
            continue
        if conv.attr["data_format"].s == b"NCHW":
            raise RuntimeError(f"grouped NCHW convolution {conv.name} is not supported")
        groups = channels[conv.name] // kernel.shape[2]
        if kernel.shape[2] == 1:
            _to_depthwise(graph_def, conv, kernel, groups)
        else:
            _to_split_convs(graph_def, conv, kernel, groups)


_CONV_ATTRS = ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations")


def _to_depthwise(graph_def, conv, kernel, channels: int) -> None:
    kh, kw, _, out = kernel.shape
    depthwise = kernel.reshape(kh, kw, channels, out // channels)
    weights = make_const(graph_def, conv.name + "/depthwise_kernel", depthwise)
    attrs = {k: conv.attr[k] for k in _CONV_ATTRS if k in conv.attr}
    data = conv.input[0]
    controls = [i for i in conv.input if i.startswith("^")]
    conv.op = "DepthwiseConv2dNative"
    conv.attr.clear()
    for key, value in attrs.items():
        conv.attr[key].CopyFrom(value)
    del conv.input[:]
    conv.input.extend([data, weights.name] + controls)


def _to_split_convs(graph_def, conv, kernel, groups: int) -> None:
    per_group = kernel.shape[3] // groups
    attrs = {k: conv.attr[k] for k in _CONV_ATTRS if k in conv.attr}
    axis = make_const(graph_def, conv.name + "/group_axis", np.array(3, np.int32))
    split = graph_def.node.add(name=conv.name + "/group_split", op="Split")
    split.input.extend([axis.name, conv.input[0]])
    split.attr["T"].CopyFrom(attrs["T"])
    split.attr["num_split"].i = groups
    parts = []
    for g in range(groups):
        weights = make_const(graph_def, f"{conv.name}/group_{g}/kernel",
                             kernel[..., g * per_group:(g + 1) * per_group])
        part = graph_def.node.add(name=f"{conv.name}/group_{g}", op="Conv2D")
        part.input.extend([data_ref(split.name, g), weights.name])
        for key, value in attrs.items():
            part.attr[key].CopyFrom(value)
        parts.append(part.name)
    controls = [i for i in conv.input if i.startswith("^")]
    conv.op = "ConcatV2"
    conv.attr.clear()
    conv.attr["T"].CopyFrom(attrs["T"])
    conv.attr["N"].i = groups
    conv.attr["Tidx"].type = axis.attr["dtype"].type
    del conv.input[:]
    conv.input.extend(parts + [axis.name] + controls)
