"""Build the small frozen graphs that rules/opencv/*.yaml are tested on.

The Keras fixtures (fixtures/) cover what Keras writes; these cover the other
spellings the OpenCV rules handle - forms TensorFlow, Grappler or hand-written
TF1 code produce - one concern per graph.  Each is written as NAME.pb with a
graphtool sidecar (NAME.json) and TensorFlow's own input/output pair
(NAME.npz, keys inputs/<name> and outputs/<name>), so tests/test_opencv_rules.py
validates them in OpenCV exactly like the fixtures.

    python rules/opencv/graphs/make_graphs.py [NAME ...]   # rewrites the files here
"""
from __future__ import annotations

import io
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
v1 = tf.compat.v1


def _weights(rng, *shape, low=-1.0, high=1.0):
    return tf.constant(rng.uniform(low, high, shape).astype(np.float32))


def _image(shape=(1, 8, 8, 4)):
    return v1.placeholder(tf.float32, shape, name="input")


def sub_from_constant(rng):
    """c - x after a convolution (OpenCV computes x - c), and x - c for contrast."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID")
    flipped = tf.subtract(_weights(rng, 4), y, name="flipped")
    return tf.nn.relu(tf.subtract(flipped, _weights(rng, 4)), name="output")


def matmul_transpose_b(rng):
    """A dense layer stored transposed (transpose_b=True), as TF1 and exporters write it."""
    x = v1.placeholder(tf.float32, [1, 16], name="input")
    h = tf.matmul(x, _weights(rng, 8, 16), transpose_b=True)
    return tf.nn.bias_add(h, _weights(rng, 8), name="output")


def dilated_conv(rng):
    """Atrous convolutions written with the dilations attr (SAME and VALID).

    tf.nn.conv2d writes dilation as SpaceToBatchND/BatchToSpaceND, which OpenCV
    handles; Keras and converters write the attr, which OpenCV ignores.  (TensorFlow's
    CPU kernels cannot run a dilated DepthwiseConv2dNative, so none is here.)
    """
    x = _image((1, 12, 12, 4))
    a = tf.raw_ops.Conv2D(input=x, filter=_weights(rng, 3, 3, 4, 6), strides=[1, 1, 1, 1],
                          padding="SAME", dilations=[1, 2, 2, 1])
    b = tf.raw_ops.Conv2D(input=tf.nn.relu(a), filter=_weights(rng, 3, 3, 6, 4),
                          strides=[1, 1, 1, 1], padding="VALID", dilations=[1, 3, 2, 1])
    return tf.identity(tf.nn.relu(b), name="output")


def clamps(rng):
    """min/max clamps: ReLU6 spelled min(max(x, 0), 6), a [-1, 2] clip, a lone max(x, 0.5),
    ReLU spelled max(x, 0)."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID")
    a = tf.minimum(tf.maximum(y, 0.0), 6.0)
    b = tf.clip_by_value(a * 3.0 - 4.0, -1.0, 2.0)
    c = tf.maximum(b, 0.5)
    return tf.identity(tf.maximum(tf.minimum(y, 1.5), -0.5) + c + tf.maximum(y, 0.0) * 0.5,
                       name="output")


def stored_inline(rng):
    """Consts the way Grappler writes them: a scalar and a splat in float_val (see write())."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 3, 3, 4, 4), 1, "SAME")
    y = tf.nn.bias_add(y, tf.constant(np.full(4, 0.25, np.float32), name="inline_splat"))
    y = tf.multiply(y, tf.constant(np.float32(2.0), name="inline_scalar"))
    y = tf.concat([y, x], axis=3)
    return tf.identity(tf.nn.relu(y), name="output")


def generic_math(rng):
    """Ops OpenCV lacks outside any known activation: Rsqrt, Erfc, SquaredDifference, Pow, Neg."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID")
    a = tf.math.rsqrt(y * y + 1.0)
    b = tf.math.erfc(y * 0.5)
    c = tf.math.squared_difference(y, _weights(rng, 4))
    d = tf.pow(y, 2.0) + tf.pow(tf.nn.relu(y), 0.5) + tf.pow(y, 3.0) * 0.1
    return tf.identity(a + b - c * 0.1 + d - tf.negative(y), name="output")


def gelu_erf(rng):
    """GELU written the textbook way, 0.5 x (1 + erf(x / sqrt(2))), then with erfc and the
    sign folded into the constant, 0.5 x erfc(x * -1/sqrt(2))."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID")
    g = 0.5 * y * (1.0 + tf.math.erf(y * np.float32(1 / np.sqrt(2))))
    g = 0.5 * g * tf.math.erfc(g * np.float32(-1 / np.sqrt(2)))   # Grappler's folded sign
    return tf.nn.conv2d(g, _weights(rng, 1, 1, 4, 4), 1, "VALID", name="output")


def mish_and_hard_sigmoid(rng):
    """Mish, x * tanh(softplus(x)), and hard sigmoid, relu6(x + 3) / 6 and relu6(x + 3) * 1/6."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID")
    m = y * tf.tanh(tf.nn.softplus(y))
    h = tf.nn.relu6(m + 3.0) / 6.0
    h = tf.nn.relu6(h * 4.0 + 3.0) * np.float32(1 / 6)
    return tf.nn.conv2d(h, _weights(rng, 1, 1, 4, 4), 1, "VALID", name="output")


def batch_norms(rng):
    """FusedBatchNormV3 after a residual Add (nothing to fold into), after a Dense and a deconv."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID") + x

    def bn(t, channels):
        return v1.nn.fused_batch_norm(
            t, _weights(rng, channels, low=0.5, high=1.5), _weights(rng, channels),
            _weights(rng, channels), _weights(rng, channels, low=0.5, high=1.5),
            epsilon=1e-3, is_training=False)[0]

    y = tf.nn.relu(bn(y, 4))
    up = tf.nn.conv2d_transpose(y, _weights(rng, 2, 2, 6, 4), [1, 16, 16, 6], 2, "VALID")
    up = bn(tf.nn.bias_add(up, _weights(rng, 6)), 6)
    flat = tf.reshape(tf.nn.max_pool2d(up, 4, 4, "VALID"), [1, 96])
    dense = tf.matmul(flat, _weights(rng, 96, 5))
    scale, offset = _weights(rng, 5, low=0.5, high=1.5), _weights(rng, 5)
    return tf.add(dense * scale, offset, name="output")


def partial_batch_norms(rng):
    """Halves of a batch norm after linear ops - a scale alone, an offset alone - and a
    scaled convolution something else reads too: what the one-step rules leave to the
    two-step ones."""
    x = _image()

    def conv(bias: bool):
        y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID")
        return tf.nn.bias_add(y, _weights(rng, 4)) if bias else y

    scale = lambda: _weights(rng, 4, low=0.5, high=1.5)  # noqa: E731
    scaled_with_bias = conv(True) * scale()
    scaled = conv(False) * scale()
    offset_only = conv(True) + _weights(rng, 4)
    shared = conv(False) * scale()
    shifted = shared + _weights(rng, 4)
    y = scaled_with_bias + scaled + offset_only + shifted + tf.nn.relu(shared)
    dense = tf.matmul(tf.reduce_mean(y, [1, 2]), _weights(rng, 4, 3))
    return tf.add(dense, _weights(rng, 3), name="output")


def residual_dense(rng):
    """h + h W on 2-D tensors: OpenCV reads an Add after a MatMul as the MatMul's bias."""
    x = v1.placeholder(tf.float32, [1, 8], name="input")
    h = tf.nn.relu(tf.matmul(x, _weights(rng, 8, 8)))
    return tf.add(h, tf.matmul(h, _weights(rng, 8, 8)), name="output")


def residual_scale(rng):
    """y + relu(y) * c: OpenCV reads an Add after a per-channel Mul as the Mul's bias."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID")
    return tf.add(y, tf.nn.relu(y) * _weights(rng, 4), name="output")


def strided_slices(rng):
    """Slices with masks OpenCV ignores: begin_mask, an ellipsis, a shrunk axis."""
    x = _image()
    conv = lambda t: tf.reduce_mean(tf.nn.conv2d(t, _weights(rng, 1, 1, t.shape[-1], 4), 1,
                                                 "VALID"), [1, 2])
    cropped = x[:, 1:, :-2, :]
    channels = x[..., 1:3]
    column = tf.reshape(x[:, :, 3, :], [1, 8, 1, 4])
    return tf.add_n([conv(cropped), conv(channels), conv(column)], name="output")


def layer_norm_2d(rng):
    """LayerNormalization of a 2-D tensor (a pooled feature vector), tf-keras spelling."""
    x = v1.placeholder(tf.float32, [1, 16], name="input")
    h = tf.matmul(x, _weights(rng, 16, 8))
    mean = tf.reduce_mean(h, [-1], keepdims=True)
    variance = tf.reduce_mean(tf.math.squared_difference(h, mean), [-1], keepdims=True)
    scale = tf.math.rsqrt(variance + 1e-3) * _weights(rng, 8, low=0.5, high=1.5)
    normed = h * scale + (_weights(rng, 8) - mean * scale)
    return tf.matmul(normed, _weights(rng, 8, 3), name="output")


def arithmetic_identities(rng):
    """x * 1, x / 1, 0 + x and x - 0 around convolutions (a transposed one scaled, no bias)."""
    x = _image()
    y = tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID")
    y = tf.subtract(tf.add(0.0, tf.divide(y * 1.0, 1.0)), 0.0)
    up = tf.nn.conv2d_transpose(tf.nn.relu(y), _weights(rng, 2, 2, 3, 4), [1, 16, 16, 3], 2,
                                "VALID")
    return tf.add(up * _weights(rng, 3, low=0.5, high=1.5), _weights(rng, 3), name="output")


def zero_offsets(rng):
    """What an untrained model carries: a zero bias, x * ones and x + zeros per channel
    (a batch norm's scale and offset), next to 0 - x, which is not x. Last, NASNet's
    shape: a batch norm after a Concat whose scaled output, once the zero offset is gone,
    feeds a ReLU and an Add of a computed tensor (OpenCV would take that Add for the
    Mul's bias)."""
    x = _image()
    y = tf.nn.bias_add(tf.nn.conv2d(x, _weights(rng, 1, 1, 4, 4), 1, "VALID"), tf.zeros([4]))
    y = tf.zeros([1, 1, 1, 4]) + tf.ones([4]) * tf.nn.relu(y)
    y = y / tf.ones([4]) - tf.zeros([4])
    y = tf.nn.relu(tf.subtract(tf.zeros([4]), y))
    z = tf.concat([y, x], axis=3) * _weights(rng, 8, low=0.5, high=1.5) + tf.zeros([8])
    return tf.add(tf.nn.avg_pool2d(tf.nn.relu(z), 3, 1, "SAME"), z, name="output")


def shared_channel_scale(rng):
    """A per-channel Mul read by a ReLU and by an Add of a constant: OpenCV makes the
    Add the Mul's bias, and the ReLU then reads x * c + b."""
    x = _image((1, 4, 4, 3))
    scaled = tf.nn.relu(tf.nn.conv2d(x, _weights(rng, 1, 1, 3, 3), 1, "VALID")) * \
        _weights(rng, 3, low=0.5, high=2.0)
    return tf.concat([tf.nn.relu(scaled), scaled + _weights(rng, 3, low=5.0, high=10.0)],
                     axis=3, name="output")


def shared_linear_bias(rng):
    """A convolution, a depthwise convolution and a MatMul, each read by a ReLU and by a
    BiasAdd, and a MatMul read by a ReLU and an Add: OpenCV merges the bias into the
    layer, and the ReLU then reads it too."""
    x = _image((1, 4, 4, 3))
    branches = []
    for linear in (tf.nn.conv2d(x, _weights(rng, 1, 1, 3, 3), 1, "VALID"),
                   tf.nn.depthwise_conv2d(x, _weights(rng, 1, 1, 3, 1), [1, 1, 1, 1], "VALID")):
        branches += [tf.nn.relu(linear), tf.nn.bias_add(linear, _weights(rng, 3, low=5, high=9))]
    image = tf.concat(branches, axis=3)
    flat = tf.reshape(tf.reduce_mean(image, axis=[1, 2]), [1, 12])
    product = tf.matmul(flat, _weights(rng, 12, 3))
    other = tf.matmul(flat, _weights(rng, 12, 3))
    return tf.concat([tf.nn.relu(product), tf.nn.bias_add(product, _weights(rng, 3, low=5, high=9)),
                      tf.nn.relu(other), _weights(rng, 3, low=5, high=9) + other],
                     axis=1, name="output")


def nested_concat(rng):
    """Concatenations inside a concatenation along the same axis, as in InceptionV3's
    last blocks; one inner concatenation also feeds a ReLU, one names its axis -1."""
    x = tf.nn.relu(tf.nn.conv2d(_image(), _weights(rng, 1, 1, 4, 4), 1, "VALID"))
    a, b, c = (tf.nn.relu(x * _weights(rng, 4, low=0.5, high=1.5)) for _ in range(3))
    shared = tf.concat([b, c], axis=3)
    outer = tf.concat([x, tf.concat([a, b], axis=3), shared, tf.concat([c, a], axis=3),
                       tf.concat([a, x], axis=-1)], axis=3)
    return tf.add(tf.nn.conv2d(outer, _weights(rng, 1, 1, 36, 4), 1, "VALID"),
                  tf.nn.conv2d(tf.nn.relu(shared), _weights(rng, 1, 1, 8, 4), 1, "VALID"),
                  name="output")


def leaky_relu(rng):
    """max(x, 0.2 x), the 0.2 x also read by a Sigmoid (OpenCV's own LeakyReLU fusion
    drops it for that reader)."""
    z = tf.nn.conv2d(_image(), _weights(rng, 1, 1, 4, 4), 1, "VALID")
    scaled = z * 0.2
    return tf.concat([tf.maximum(z, scaled), tf.nn.sigmoid(scaled)], axis=3, name="output")


def tf1_dropout(rng):
    """TF1 tf.nn.dropout with keep_prob fed by a PlaceholderWithDefault of 1.0."""
    x = v1.placeholder(tf.float32, [1, 16], name="input")
    keep = v1.placeholder_with_default(np.float32(1.0), [], name="keep_prob")
    h = tf.nn.relu(tf.matmul(x, _weights(rng, 16, 8)))
    noise = keep + v1.random_uniform(tf.shape(h), seed=1)
    dropped = tf.multiply(tf.divide(h, keep), tf.floor(noise))
    return tf.matmul(dropped, _weights(rng, 8, 3), name="output")


def flatten_from_input(rng):
    """A flatten of the graph input itself: OpenCV knows no layout for it."""
    x = _image((1, 4, 4, 3))
    return tf.matmul(tf.reshape(x, [1, -1]), _weights(rng, 48, 5), name="output")


def grouped_conv(rng):
    """Keras 3 grouped convolutions (groups=C and groups=2), frozen with
    convert_variables_to_constants_v2: each stays an XLA function call whose body
    is a grouped Conv2D, with the bodies in the graph's function library."""
    import keras
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    keras.utils.set_random_seed(int(rng.integers(1 << 30)))
    inp = keras.Input((8, 8, 4), name="input")
    x = keras.layers.Conv2D(8, 3, padding="same", groups=4, name="per_channel")(inp)
    x = keras.layers.Conv2D(6, 3, padding="same", groups=2, name="two_groups")(x)
    model = keras.Model(inp, x)
    function = tf.function(lambda t: model(t, training=False))
    frozen = convert_variables_to_constants_v2(function.get_concrete_function(
        tf.TensorSpec([1, 8, 8, 4], tf.float32, name="input")))
    return frozen.graph.as_graph_def(), [frozen.inputs[0]], frozen.outputs[0]


grouped_conv.frozen = True   # returns (graph_def, inputs, output) instead of building in place

GRAPHS = {f.__name__: f for f in (
    sub_from_constant, matmul_transpose_b, dilated_conv, clamps, stored_inline, generic_math,
    gelu_erf, mish_and_hard_sigmoid, batch_norms, tf1_dropout, flatten_from_input, residual_dense,
    residual_scale, strided_slices, layer_norm_2d, grouped_conv, arithmetic_identities,
    zero_offsets, shared_channel_scale, shared_linear_bias, nested_concat,
    leaky_relu, partial_batch_norms)}


def _inline_values(graph_def) -> None:
    """Rewrite the Consts named inline_* the way Grappler writes them (float_val, splats)."""
    for node in graph_def.node:
        if node.op == "Const" and node.name.startswith("inline_"):
            tensor = node.attr["value"].tensor
            values = np.frombuffer(tensor.tensor_content, np.float32) if tensor.tensor_content \
                else np.array(tensor.float_val, np.float32)
            tensor.ClearField("tensor_content")
            del tensor.float_val[:]
            tensor.float_val.append(float(values.reshape(-1)[0]))


def write(name: str) -> None:
    rng = np.random.default_rng(sorted(GRAPHS).index(name))
    if getattr(GRAPHS[name], "frozen", False):
        graph_def, inputs, output = GRAPHS[name](rng)
    else:
        graph = tf.Graph()
        with graph.as_default():
            output = GRAPHS[name](rng)
            inputs = [op.outputs[0] for op in graph.get_operations() if op.type == "Placeholder"]
        graph_def = graph.as_graph_def()
    _inline_values(graph_def)
    feeds = {t.name: np.random.default_rng(100).standard_normal(t.shape).astype(np.float32)
             for t in inputs}
    run_graph = tf.Graph()
    with run_graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
        with v1.Session(graph=run_graph) as session:
            result = session.run(output.name, feeds)
    out_name = output.name.split(":")[0]
    sidecar = {
        "format": "graphtool-sidecar/1",
        "inputs": [{"name": t.name.split(":")[0], "tensor": t.name, "dtype": "float32",
                    "shape": list(t.shape)} for t in inputs],
        "outputs": [{"name": out_name, "tensor": output.name, "dtype": "float32",
                     "shape": list(result.shape)}],
        "source": {"path": f"rules/opencv/graphs/make_graphs.py:{name}", "kind": "builder"},
        "reference": f"{name}.npz",
    }
    with open(os.path.join(HERE, f"{name}.pb"), "wb") as fh:
        fh.write(graph_def.SerializeToString())
    with open(os.path.join(HERE, f"{name}.json"), "w") as fh:
        json.dump(sidecar, fh, indent=2)
        fh.write("\n")
    arrays = {f"inputs/{k.split(':')[0]}": v for k, v in feeds.items()}
    arrays[f"outputs/{out_name}"] = result
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with open(os.path.join(HERE, f"{name}.npz"), "wb") as fh:
        fh.write(buffer.getvalue())


if __name__ == "__main__":
    for graph_name in sys.argv[1:] or sorted(GRAPHS):
        write(graph_name)
        print(f"wrote {graph_name}")
