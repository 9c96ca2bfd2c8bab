"""Freeze a Keras model object (Keras 3 or tf-keras): trace with training=False, fold variables.

Tracing `model(x, training=False)` under a fixed input signature is what makes
Dropout vanish and BatchNormalization use its moving statistics; the
conversion then turns every variable read into a Const.
"""
from __future__ import annotations

from graphtool.errors import GraphtoolError
from graphtool.freeze.frozen import RawFreeze
from graphtool.freeze.shapes import resolve_shapes


def model_io(model, path: str):
    """[(input name, dims, dtype)] and the output names of a built model."""
    import tensorflow as tf

    tensors = list(getattr(model, "inputs", None) or [])
    if not tensors:
        raise GraphtoolError("model has no defined inputs (a subclassed model that was never built): "
                             "build it from keras.Input(...) or call it once before saving", path=path)
    names = list(getattr(model, "input_names", None) or [t.name for t in tensors])
    names = [n.split(":")[0] for n in names]
    inputs = []
    for name, t in zip(names, tensors):
        shape = None if t.shape is None or getattr(t.shape, "rank", 0) is None else list(tuple(t.shape))
        inputs.append((name, shape, tf.as_dtype(t.dtype).name))
    return inputs, list(model.output_names)


def freeze_model(model, overrides: dict, path: str, kind: str, keras_version: str) -> RawFreeze:
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    inputs, output_names = model_io(model, path)
    shapes = resolve_shapes([(n, s) for n, s, _ in inputs], overrides, path)
    specs = [tf.TensorSpec(shape, dtype, name=name) for (name, _, dtype), shape in zip(inputs, shapes)]

    def pack(xs):
        return xs[0] if len(xs) == 1 else list(xs)

    @tf.function(input_signature=specs, autograph=False)
    def infer(*xs):
        return tf.nest.flatten(model(pack(xs), training=False))

    try:
        concrete = infer.get_concrete_function()
    except Exception as exc:
        raise GraphtoolError(f"tracing the model with input shapes {shapes} failed: "
                             f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}",
                             path=path) from exc
    frozen = convert_variables_to_constants_v2(concrete, aggressive_inlining=True)
    outputs = frozen.outputs
    if len(output_names) != len(outputs):
        output_names = [f"output_{k}" for k in range(len(outputs))]

    def run_model(arrays):
        result = model(pack([tf.constant(a) for a in arrays]), training=False)
        return [np.asarray(r) for r in tf.nest.flatten(result)]

    return RawFreeze(
        graph_def=frozen.graph.as_graph_def(),
        placeholders=[t.name.split(":")[0] for t in frozen.inputs],
        input_names=[n for n, _, _ in inputs],
        input_shapes=shapes,
        input_dtypes=[d for _, _, d in inputs],
        output_refs=[t.name for t in outputs],
        output_names=output_names,
        output_dtypes=[t.dtype.as_datatype_enum for t in outputs],
        run_model=run_model,
        kind=kind,
        keras_version=keras_version,
    )
