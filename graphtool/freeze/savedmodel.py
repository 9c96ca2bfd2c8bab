"""Freeze SavedModel directories: TF2 (object graph + signatures) and TF1 (simple_save).

TF2 signatures are re-traced with static shapes and their variables folded.
TF1 SavedModels are restored into a session, which is what loads the trained
weights (pointing OpenCV at saved_model.pb never does), then frozen with
the learning phase fixed to inference.
"""
from __future__ import annotations

import os

from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.freeze.frozen import RawFreeze
from graphtool.freeze.phase import freeze_learning_phase, is_phase_placeholder
from graphtool.freeze.shapes import resolve_shapes
from graphtool.freeze.tensors import split_ref


def read_saved_model(path: str):
    """Parse saved_model.pb; a one-line error when it is not readable."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    pb = os.path.join(path, "saved_model.pb")
    try:
        if os.path.isfile(pb):
            with open(pb, "rb") as f:
                proto.ParseFromString(f.read())
        else:
            from google.protobuf import text_format
            with open(os.path.join(path, "saved_model.pbtxt")) as f:
                text_format.Parse(f.read(), proto)
    except (DecodeError, OSError, ValueError, Exception) as exc:
        raise GraphtoolError(f"unreadable SavedModel ({type(exc).__name__}): saved_model.pb is damaged; "
                             "export the model again", path=path) from None
    if not proto.meta_graphs:
        raise GraphtoolError("SavedModel has no MetaGraph; export the model again", path=path)
    return proto


def _pick_meta_graph(proto):
    for meta in proto.meta_graphs:
        if "serve" in meta.meta_info_def.tags:
            return meta
    return proto.meta_graphs[0]


def _check_signature(meta, signature: str, path: str):
    available = sorted(meta.signature_def)
    if signature not in meta.signature_def:
        raise GraphtoolError(
            f"SavedModel has no signature {signature!r}{did_you_mean(signature, available)}; "
            f"available: {', '.join(available) or 'none'} (choose one with --signature NAME)", path=path)
    return meta.signature_def[signature]


def _unreadable(path: str, exc: Exception):
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return GraphtoolError(f"TensorFlow cannot load the SavedModel: {type(exc).__name__}: "
                          f"{(lines[0] if lines else '')[:300]}; export it again", path=path)


def freeze_saved_model(path: str, signature: str, overrides: dict) -> RawFreeze:
    proto = read_saved_model(path)
    meta = _pick_meta_graph(proto)
    _check_signature(meta, signature, path)
    tags = list(meta.meta_info_def.tags)
    if len(meta.object_graph_def.nodes):
        return _freeze_tf2(path, tags, signature, overrides)
    return _freeze_tf1(path, tags, signature, overrides)


def _freeze_tf2(path, tags, signature, overrides) -> RawFreeze:
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    try:
        loaded = tf.saved_model.load(path, tags=tags)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    fn = loaded.signatures[signature]
    _, kwargs = fn.structured_input_signature
    names = sorted(kwargs)
    shapes = resolve_shapes(
        [(n, None if kwargs[n].shape.rank is None else kwargs[n].shape.as_list()) for n in names],
        overrides, path)
    specs = [tf.TensorSpec(s, kwargs[n].dtype, name=n) for n, s in zip(names, shapes)]

    @tf.function(input_signature=specs, autograph=False)
    def infer(*xs):
        return fn(**dict(zip(names, xs)))

    concrete = infer.get_concrete_function()
    out_keys = sorted(concrete.structured_outputs)
    frozen = convert_variables_to_constants_v2(concrete, aggressive_inlining=True)

    def run_model(arrays):
        result = fn(**{n: tf.constant(a) for n, a in zip(names, arrays)})
        return [np.asarray(result[k]) for k in out_keys]

    return RawFreeze(
        graph_def=frozen.graph.as_graph_def(),
        placeholders=[t.name.split(":")[0] for t in frozen.inputs],
        input_names=names, input_shapes=shapes, input_dtypes=[kwargs[n].dtype.name for n in names],
        output_refs=[t.name for t in frozen.outputs], output_names=out_keys,
        output_dtypes=[t.dtype.as_datatype_enum for t in frozen.outputs],
        run_model=run_model, kind="savedmodel-tf2", keras_version=None)


def _freeze_tf1(path, tags, signature, overrides) -> RawFreeze:
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    try:
        with graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(session, tags, path)
    except Exception as exc:
        session.close()
        raise _unreadable(path, exc) from exc
    sig = meta.signature_def[signature]
    graph_def = graph.as_graph_def()
    nodes = {n.name: n for n in graph_def.node}
    phase = sorted(n.name for n in graph_def.node if is_phase_placeholder(n))
    input_keys = [k for k in sorted(sig.inputs) if split_ref(sig.inputs[k].name)[0] not in phase]
    infos = [sig.inputs[k] for k in input_keys]
    placeholders = [split_ref(i.name)[0] for i in infos]
    for name in placeholders:
        if nodes[name].op != "Placeholder":
            raise GraphtoolError(f"signature input {name!r} is a {nodes[name].op}, not a Placeholder; "
                                 "export a signature whose inputs are placeholders", path=path)
    shapes = resolve_shapes(
        [(p, None if i.tensor_shape.unknown_rank else
          [None if d.size < 0 else d.size for d in i.tensor_shape.dim]) for p, i in zip(placeholders, infos)],
        overrides, path)
    out_keys = sorted(sig.outputs)
    fetches = [sig.outputs[k].name for k in out_keys]
    feeds_phase = {graph.get_tensor_by_name(p + ":0"): False for p in phase}

    def run_model(arrays):
        feed = dict(feeds_phase)
        feed.update({p + ":0": a for p, a in zip(placeholders, arrays)})
        return session.run(fetches, feed)

    with graph.as_default():
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            session, graph_def, sorted({split_ref(f)[0] for f in fetches}))
    if phase:
        kept = {n.name for n in frozen.node}
        freeze_learning_phase(frozen, [p for p in phase if p in kept])
    return RawFreeze(
        graph_def=frozen, placeholders=placeholders, input_names=placeholders, input_shapes=shapes,
        input_dtypes=[tf.as_dtype(i.dtype).name for i in infos], output_refs=fetches, output_names=out_keys,
        output_dtypes=[sig.outputs[k].dtype for k in out_keys], run_model=run_model,
        kind="savedmodel-tf1", keras_version=None, learning_phase=phase)
