"""Every numpy kernel in graphtool.ops against TensorFlow's own kernels.

Each case builds the op in a real TF graph on Const inputs, runs it eagerly in
TF for the expected value, then runs graphtool's shape inference (dtype and
shape must match TF's result) and fold_constants (the Const it writes must hold
TF's value).  Cases where TF fails or is platform-defined must not fold.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import tensorflow as tf  # noqa: E402 - a real dependency: missing it fails

from graphtool import ops  # noqa: E402
from graphtool.analysis import infer_shapes  # noqa: E402
from graphtool.errors import GraphtoolError  # noqa: E402
from graphtool.fold import fold_constants  # noqa: E402
from graphtool.graph import Graph  # noqa: E402
from graphtool.proto import GraphDef  # noqa: E402
from graphtool.tensors import uses_tensor_content  # noqa: E402

BF16 = ml_dtypes.bfloat16
RNG = np.random.default_rng(5)
TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 3e-6,
             np.dtype(np.float16): 2e-3, np.dtype(BF16): 1.6e-2}


def rand(*shape, dtype=np.float32, low=-3.0, high=3.0):
    return RNG.uniform(low, high, shape).astype(dtype)


def ints(*shape, dtype=np.int32, low=-20, high=20):
    return RNG.integers(low, high, shape).astype(dtype)


def nonzero(*shape, dtype=np.int32, low=-9, high=9):
    x = ints(*shape, dtype=dtype, low=low, high=high)
    x[x == 0] = 1
    return x


def i32(*values):
    return np.array(values, np.int32)


class Case:
    def __init__(self, op, inputs, attrs=None, *, exact=False, folds=True, id=None):
        self.op, self.inputs, self.attrs = op, inputs, attrs or {}
        self.exact, self.folds = exact, folds
        self.id = id or op

    def param(self):
        return pytest.param(self, id=self.id)


def _tf_inputs(inputs):
    return {k: [tf.constant(a) for a in v] if isinstance(v, list) else tf.constant(v)
            for k, v in inputs.items()}


def _as_list(result):
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def tf_graph(case) -> tuple[Graph, int]:
    with tf.Graph().as_default() as g:
        result = getattr(tf.raw_ops, case.op)(**_tf_inputs(case.inputs), **case.attrs,
                                              name="target")
        outputs = result if isinstance(result, (list, tuple)) else [result]
        for k, t in enumerate(outputs):
            tf.identity(t, name=f"result{k}")
    return Graph(GraphDef.FromString(g.as_graph_def().SerializeToString())), len(outputs)


def assert_same(ours: np.ndarray, theirs: np.ndarray, exact: bool, what: str):
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != TF {theirs.dtype}"
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != TF {theirs.shape}"
    if exact or theirs.dtype.kind not in "fc" and theirs.dtype != BF16:
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
    else:
        tol = TOLERANCE[theirs.dtype]
        np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64),
                                   rtol=tol, atol=tol, err_msg=what)


def check(case):
    graph, count = tf_graph(case)
    if not case.folds:
        fold_constants(graph)
        assert graph.node("target").op == case.op, "must not be folded"
        return
    expected = _as_list(getattr(tf.raw_ops, case.op)(**_tf_inputs(case.inputs), **case.attrs))
    shapes = infer_shapes(graph)
    for k, want in enumerate(expected):
        info = shapes[f"target:{k}"]
        assert info.shape == want.shape, f"static shape {info.shape} != TF {want.shape}"
        assert ops.get(case.op) and str(info.dtype) == str(tf.as_dtype(want.dtype).name)
    log = fold_constants(graph)
    assert "target" not in graph or graph.node("target").op == "Const"
    assert any(e["op"] == case.op for e in log)
    for k, want in enumerate(expected):
        node = graph.node(f"result{k}")
        assert node.op == "Const", f"result{k} not folded"
        assert uses_tensor_content(node.proto.attr["value"].tensor)
        assert_same(node.tensor, want, case.exact, f"{case.id} output {k}")


# -- elementwise ----------------------------------------------------------------------------
UNARY_ARG = {"Relu": "features", "Relu6": "features", "Elu": "features", "Selu": "features",
             "Softplus": "features", "Softsign": "features", "LeakyRelu": "features"}
EXACT_UNARY = {"Relu", "Relu6", "Floor", "Ceil", "Round", "Rint", "Neg", "Abs", "Sign",
               "Square", "Sqrt"}
POSITIVE = {"Log", "Sqrt", "Rsqrt", "Log1p"}


def unary_cases():
    cases = []
    names = ["Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Erf",
             "Erfc", "Exp", "Expm1", "Log", "Log1p", "Sqrt", "Rsqrt", "Reciprocal", "Floor",
             "Ceil", "Round", "Rint", "Neg", "Abs", "Square", "Sign", "Sin", "Cos", "Atan"]
    for name in names:
        for dtype in (np.float32, np.float16, BF16, np.float64):
            if name == "Rint" and dtype in (np.float16, BF16):
                continue  # TF has no CPU kernel for these
            low = 0.01 if name in POSITIVE else -8.0
            x = rand(3, 17, dtype=dtype, low=low, high=8.0)
            if name in ("Round", "Rint"):
                x = (np.round(rand(3, 17, dtype=np.float32) * 2) / 2).astype(dtype)  # ties
            cases.append(Case(name, {UNARY_ARG.get(name, "x"): x}, exact=name in EXACT_UNARY,
                              id=f"{name}-{np.dtype(dtype).name}"))
    cases.append(Case("LeakyRelu", {"features": rand(4, 5)}, {"alpha": 0.3}, id="LeakyRelu-0.3"))
    for name in ("Neg", "Abs", "Square", "Sign"):
        cases.append(Case(name, {"x": ints(4, 6)}, id=f"{name}-int32"))
    cases.append(Case("LogicalNot", {"x": rand(5) > 0}))
    cases.append(Case("IsNan", {"x": np.array([1, np.nan, np.inf], np.float32)}))
    cases.append(Case("IsFinite", {"x": np.array([1, np.nan, -np.inf], np.float32)}))
    return cases


BROADCASTS = [((2, 3, 4), (3, 1)), ((5,), ()), ((1, 4), (3, 1)), ((2, 1, 3), (2, 4, 1))]
FLOAT_BINARY = ["Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "Maximum", "Minimum",
                "SquaredDifference", "FloorDiv", "FloorMod", "TruncateDiv", "Pow", "DivNoNan",
                "MulNoNan", "Atan2"]
EXACT_BINARY = {"Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "Maximum", "Minimum",
                "FloorDiv", "TruncateDiv", "DivNoNan", "MulNoNan"}
INT_DIVISION = ["FloorDiv", "FloorMod", "TruncateDiv", "TruncateMod", "Div", "RealDiv"]


def binary_cases():
    cases = []
    for name in FLOAT_BINARY:
        for (sa, sb), dtype in zip(BROADCASTS, (np.float32, np.float16, BF16, np.float64)):
            x = rand(*sa, dtype=dtype, low=0.1 if name == "Pow" else -5.0, high=5.0)
            y = rand(*sb, dtype=dtype, low=-2.0, high=2.0)
            if name == "DivNoNan":
                y = np.where(np.abs(y) < 0.5, 0, y).astype(dtype)
            cases.append(Case(name, {"x": x, "y": y}, exact=name in EXACT_BINARY and dtype in (
                np.float32, np.float64), id=f"{name}-{np.dtype(dtype).name}-{sa}x{sb}"))
    for name in INT_DIVISION:
        if name == "RealDiv":
            continue
        for dtype in (np.int32, np.int64):
            cases.append(Case(name, {"x": ints(4, 5, dtype=dtype), "y": nonzero(5, dtype=dtype)},
                              id=f"{name}-{np.dtype(dtype).name}"))
        cases.append(Case(name, {"x": ints(3), "y": i32(3, 0, -2)}, folds=False,
                          id=f"{name}-by-zero"))
    cases.append(Case("FloorDiv", {"x": np.float32([1.0, -1.0, 7.5]),
                                   "y": np.float32([0.1, 0.1, -2.0])}, exact=True,
                      id="FloorDiv-float-edge"))
    cases.append(Case("FloorMod", {"x": np.float32([0.0, -0.0, 5.5, -5.5]),
                                   "y": np.float32([-3, 3, -2, 2])}, exact=True,
                      id="FloorMod-float-signs"))
    cases.append(Case("Pow", {"x": ints(6, low=-4, high=5), "y": ints(6, low=0, high=5)},
                      id="Pow-int32"))
    cases.append(Case("Pow", {"x": i32(2), "y": i32(-1)}, folds=False, id="Pow-int-negative"))
    for name in ("Add", "Sub", "Mul", "Maximum", "Minimum"):
        cases.append(Case(name, {"x": ints(3, 4, dtype=np.int64), "y": ints(4, dtype=np.int64)},
                          id=f"{name}-int64"))
    cases.append(Case("Add", {"x": np.array([2**31 - 1], np.int32), "y": i32(1)},
                      id="Add-int32-wraps"))
    for name in ("Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual"):
        cases.append(Case(name, {"x": ints(3, 4, low=-3, high=3), "y": ints(4, low=-3, high=3)}))
    for name in ("LogicalAnd", "LogicalOr"):
        cases.append(Case(name, {"x": rand(3, 4) > 0, "y": rand(4) > 0}))
    return cases


def cast_cases():
    def cast(x, dst, id, truncate=False, folds=True):
        return Case("Cast", {"x": x}, {"DstT": dst, "Truncate": truncate}, exact=True,
                    folds=folds, id=f"Cast-{id}")
    return [
        cast(rand(20, low=-300, high=300), tf.int32, "f32-i32"),
        cast(rand(20, low=-120, high=120), tf.int8, "f32-i8"),
        cast(rand(20, low=0, high=255), tf.uint8, "f32-u8"),
        cast(rand(20, dtype=np.float64, low=-1e12, high=1e12), tf.int64, "f64-i64"),
        cast(rand(20, dtype=np.float16, low=-60, high=60), tf.int16, "f16-i16"),
        cast(ints(20, low=-1000, high=1000), tf.int8, "i32-i8-wraps"),
        cast(ints(20, dtype=np.int64, low=-2**40, high=2**40), tf.int32, "i64-i32-wraps"),
        cast(ints(20, low=-1000, high=1000), tf.uint16, "i32-u16-wraps"),
        cast(rand(50, low=-70000, high=70000), tf.float16, "f32-f16-rounds"),
        cast(rand(50, low=-70000, high=70000), tf.float16, "f32-f16-truncates", truncate=True),
        cast(rand(50), tf.bfloat16, "f32-bf16-rounds"),
        cast(rand(50), tf.bfloat16, "f32-bf16-truncates", truncate=True),
        cast(rand(50, dtype=np.float64), tf.bfloat16, "f64-bf16"),
        cast(rand(50, dtype=np.float64) * 1e39, tf.float32, "f64-f32-overflow"),
        cast(rand(20, dtype=BF16), tf.float32, "bf16-f32"),
        cast(ints(20, dtype=np.int64, low=-2**62, high=2**62), tf.float32, "i64-f32"),
        cast(np.float32([0, -0.0, np.nan, 0.1, -2]), tf.bool, "f32-bool"),
        cast(rand(6) > 0, tf.float32, "bool-f32"),
        cast(ints(6), tf.bool, "i32-bool"),
        cast(np.float32([1.0, np.nan]), tf.int32, "nan-int", folds=False),
        cast(np.float32([1.0, 3e9]), tf.int32, "f32-i32-out-of-range", folds=False),
        cast(np.float32([1.0, 300.0]), tf.int8, "f32-i8-out-of-range", folds=False),
        cast(np.float32([-1.0]), tf.uint32, "negative-unsigned", folds=False),
    ]


def select_cases():
    return [
        Case("Select", {"condition": rand(3, 4) > 0, "x": rand(3, 4), "y": rand(3, 4)}),
        Case("Select", {"condition": rand(3) > 0, "x": rand(3, 4, 2), "y": rand(3, 4, 2)},
             id="Select-vector-condition"),
        Case("SelectV2", {"condition": rand(4, 1) > 0, "t": rand(1, 5), "e": rand(4, 5)},
             id="SelectV2-broadcast"),
        Case("ClipByValue", {"t": rand(3, 4), "clip_value_min": np.float32(-1),
                             "clip_value_max": np.float32(1.5)}, exact=True),
        Case("AddN", {"inputs": [rand(2, 3), rand(2, 3), rand(2, 3)]}),
    ]


# -- reductions and products ----------------------------------------------------------------
def reduction_cases():
    cases = []
    for name in ("Sum", "Mean", "Max", "Min", "Prod"):
        for axis, keep in ((i32(1), False), (i32(0, 2), True), (i32(-1), False),
                           (np.array([], np.int32), False), (np.int32(-2), True)):
            x = rand(3, 4, 5, low=0.5, high=1.5) if name == "Prod" else rand(3, 4, 5)
            cases.append(Case(name, {"input": x, "axis": axis}, {"keep_dims": keep},
                              id=f"{name}-{axis.tolist()}-{keep}"))
        cases.append(Case(name, {"input": ints(4, 5, low=-9, high=9), "axis": i32(1)},
                          id=f"{name}-int32"))
    cases.append(Case("Mean", {"input": i32(-1, -2), "axis": i32(0)}, id="Mean-int-truncates"))
    cases.append(Case("Sum", {"input": rand(4, 8, dtype=np.float16), "axis": i32(1)},
                      id="Sum-float16"))
    for name in ("All", "Any"):
        cases.append(Case(name, {"input": rand(3, 4) > 0, "axis": i32(1)}))
    for name in ("ArgMax", "ArgMin"):
        cases.append(Case(name, {"input": rand(3, 4, 5), "dimension": np.int32(1)}))
        cases.append(Case(name, {"input": ints(3, 4), "dimension": np.int32(-1)},
                          {"output_type": tf.int32}, id=f"{name}-int32-out"))
    return cases


def matmul_cases():
    return [
        Case("MatMul", {"a": rand(3, 4), "b": rand(4, 5)}),
        Case("MatMul", {"a": rand(4, 3), "b": rand(5, 4)}, {"transpose_a": True,
                                                             "transpose_b": True}, id="MatMul-tt"),
        Case("MatMul", {"a": ints(3, 4), "b": ints(4, 2)}, id="MatMul-int32"),
        Case("BatchMatMulV2", {"x": rand(2, 1, 3, 4), "y": rand(5, 4, 6)}, id="BMM-broadcast"),
        Case("BatchMatMulV2", {"x": rand(2, 4, 3), "y": rand(2, 6, 4)},
             {"adj_x": True, "adj_y": True}, id="BMM-adjoint"),
        Case("BatchMatMulV3", {"x": rand(2, 3, 4), "y": rand(2, 4, 5)}, {"Tout": tf.float32},
             id="BMM-v3"),
        Case("Einsum", {"inputs": [rand(2, 3, 4), rand(4, 5)]}, {"equation": "abc,cd->abd"}),
        Case("Einsum", {"inputs": [rand(2, 3, 4), rand(2, 4, 3)]},
             {"equation": "bij,bjk->bik"}, id="Einsum-batch"),
        Case("Einsum", {"inputs": [rand(2, 3, 4)]}, {"equation": "...ij->...ji"},
             id="Einsum-ellipsis"),
    ]


# -- array ops --------------------------------------------------------------------------------
def strided_slice_cases():
    x = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    specs = [
        ("basic", [0, 1, 2], [2, 4, 5], [1, 1, 1], {}),
        ("negative-strides", [1, -1, 5], [0, 0, 0], [-1, -2, -3], {}),
        ("negative-stride-masked", [0, 0], [0, 0], [1, -1], {"begin_mask": 3, "end_mask": 3}),
        ("negative-indices", [-2, -4], [-1, -1], [1, 2], {}),
        ("out-of-range-clamps", [0, -100], [1, 100], [1, 1], {}),
        ("shrink", [1, 2], [2, 3], [1, 1], {"shrink_axis_mask": 3}),
        ("shrink-negative", [-1, 0, -1], [0, 0, 0], [1, 1, 1], {"shrink_axis_mask": 5}),
        ("new-axis", [0, 0, 1], [0, 0, 3], [1, 1, 1], {"new_axis_mask": 2, "begin_mask": 1,
                                                          "end_mask": 1}),
        ("ellipsis", [0, 1], [0, 2], [1, 1], {"ellipsis_mask": 1}),
        ("ellipsis-middle", [1, 0, 0], [2, 0, 2], [1, 1, 1], {"ellipsis_mask": 2}),
        ("ellipsis-new-axis", [0, 0, 1], [0, 0, 2], [1, 1, 1],
         {"ellipsis_mask": 1, "new_axis_mask": 2}),
        ("new-axis-and-shrink-same-bit", [0, 1], [1, 2], [1, 1],
         {"new_axis_mask": 1, "shrink_axis_mask": 1}),
        ("ellipsis-and-new-axis-same-bit", [0, 1], [1, 2], [1, 1],
         {"ellipsis_mask": 1, "new_axis_mask": 1}),
        ("keras-cropping", [0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1],
         {"begin_mask": 9, "end_mask": 15}),
        ("empty-result", [3], [1], [1], {}),
    ]
    cases = [Case("StridedSlice", {"input": x, "begin": i32(*b), "end": i32(*e),
                                   "strides": i32(*s)}, m, exact=True, id=f"StridedSlice-{n}")
             for n, b, e, s, m in specs]
    return cases


def array_cases():
    x = rand(2, 3, 4)
    return [
        Case("Reshape", {"tensor": x, "shape": i32(4, -1)}, exact=True),
        Case("Reshape", {"tensor": x, "shape": i32(24)}, exact=True, id="Reshape-flat"),
        Case("Squeeze", {"input": rand(1, 3, 1, 2)}, exact=True),
        Case("Squeeze", {"input": rand(1, 3, 1, 2)}, {"axis": [-2]}, exact=True, id="Squeeze-axis"),
        Case("ExpandDims", {"input": x, "axis": np.int32(-1)}, exact=True),
        Case("ExpandDims", {"input": x, "axis": i32(1)}, exact=True, id="ExpandDims-vector-axis"),
        Case("Transpose", {"x": x, "perm": i32(2, 0, 1)}, exact=True),
        Case("ConcatV2", {"values": [x, rand(2, 1, 4)], "axis": np.int32(-2)}, exact=True),
        Case("Pack", {"values": [x, x, x]}, {"axis": -1}, exact=True),
        Case("Unpack", {"value": x}, {"num": 3, "axis": 1}, exact=True),
        Case("Split", {"axis": np.int32(2), "value": x}, {"num_split": 2}, exact=True),
        Case("SplitV", {"value": x, "size_splits": i32(1, -1, 1), "axis": np.int32(-1)},
             {"num_split": 3}, exact=True),
        Case("Slice", {"input": x, "begin": i32(1, 0, 1), "size": i32(1, -1, 2)}, exact=True),
        Case("Tile", {"input": rand(2, 3), "multiples": i32(2, 3)}, exact=True),
        Case("Shape", {"input": x}, {"out_type": tf.int64}, exact=True),
        Case("ShapeN", {"input": [x, rand(5)]}, exact=True),
        Case("Size", {"input": x}, exact=True),
        Case("Rank", {"input": x}, exact=True),
        Case("Fill", {"dims": i32(2, 3), "value": np.float32(1.5)}, exact=True),
        Case("Range", {"start": np.int32(-3), "limit": np.int32(11), "delta": np.int32(4)}),
        Case("Range", {"start": np.int32(10), "limit": np.int32(-3), "delta": np.int32(-3)},
             id="Range-negative-delta"),
        Case("Range", {"start": np.float32(0.1), "limit": np.float32(3.0),
                       "delta": np.float32(0.1)}, exact=True, id="Range-float"),
        Case("ZerosLike", {"x": x}, exact=True),
        Case("OnesLike", {"x": ints(3)}, exact=True),
        Case("GatherV2", {"params": x, "indices": i32(2, 0, 2), "axis": np.int32(1)},
             exact=True),
        Case("GatherV2", {"params": x, "indices": ints(2, 2, low=0, high=4),
                          "axis": np.int32(-1)}, exact=True, id="GatherV2-matrix-indices"),
        Case("OneHot", {"indices": i32(0, 2, -1, 1), "depth": np.int32(3),
                        "on_value": np.float32(5), "off_value": np.float32(-1)}, exact=True),
        Case("OneHot", {"indices": i32(0, 2, 1), "depth": np.int32(4),
                        "on_value": np.int32(1), "off_value": np.int32(0)}, {"axis": 0},
             exact=True, id="OneHot-axis0"),
        Case("Pad", {"input": x, "paddings": i32([0, 1], [2, 0], [1, 1])}, exact=True),
        Case("PadV2", {"input": x, "paddings": i32([0, 0], [1, 1], [0, 2]),
                       "constant_values": np.float32(7)}, exact=True),
        Case("MirrorPad", {"input": x, "paddings": i32([1, 1], [2, 2], [0, 3])},
             {"mode": "REFLECT"}, exact=True),
        Case("MirrorPad", {"input": x, "paddings": i32([2, 1], [3, 0], [4, 0])},
             {"mode": "SYMMETRIC"}, exact=True, id="MirrorPad-symmetric"),
        Case("BroadcastTo", {"input": rand(3, 1), "shape": i32(2, 3, 4)}, exact=True),
        Case("BroadcastArgs", {"s0": i32(3, 1), "s1": i32(2, 1, 4)}, exact=True),
        Case("ReverseV2", {"tensor": x, "axis": i32(0, -1)}, exact=True),
        Case("Identity", {"input": x}, exact=True),
        Case("StopGradient", {"input": x}, exact=True),
        Case("Snapshot", {"input": x}, exact=True),
        Case("IdentityN", {"input": [x, ints(3)]}, exact=True),
    ]


# -- nn ---------------------------------------------------------------------------------------
def nn_cases():
    image, odd = rand(2, 9, 8, 4), rand(1, 7, 7, 3)
    kernel, depthwise = rand(3, 3, 4, 5), rand(3, 2, 4, 2)
    conv = []
    for padding, strides, dilations in (("SAME", 1, 1), ("VALID", 2, 1), ("SAME", 2, 1),
                                        ("VALID", 1, 2), ("SAME", 1, 2)):
        attrs = {"strides": [1, strides, strides, 1], "padding": padding,
                 "dilations": [1, dilations, dilations, 1]}
        conv.append(Case("Conv2D", {"input": image, "filter": kernel}, attrs,
                         id=f"Conv2D-{padding}-s{strides}-d{dilations}"))
        if dilations == 1:  # TF's CPU kernel has no dilated depthwise convolution
            conv.append(Case("DepthwiseConv2dNative", {"input": image, "filter": depthwise},
                             attrs, id=f"Depthwise-{padding}-s{strides}"))
    conv.append(Case("Conv2D", {"input": image, "filter": kernel},
                     {"strides": [1, 2, 1, 1], "padding": "EXPLICIT",
                      "explicit_paddings": [0, 0, 1, 2, 0, 3, 0, 0]}, id="Conv2D-EXPLICIT"))
    conv.append(Case("Conv2D", {"input": image, "filter": rand(1, 1, 2, 6)},
                     {"strides": [1, 1, 1, 1], "padding": "VALID"}, id="Conv2D-grouped"))
    backprop = [Case("Conv2DBackpropInput", {"input_sizes": i32(1, 7, 7, 3),
                                             "filter": rand(3, 3, 3, 4),
                                             "out_backprop": rand(1, o, o, 4)},
                     {"strides": [1, s, s, 1], "padding": p}, id=f"Conv2DBackpropInput-{p}-{s}")
                for p, s, o in (("SAME", 2, 4), ("VALID", 2, 3), ("SAME", 1, 7))]
    pools = []
    for op in ("MaxPool", "AvgPool"):
        arg = "input" if op == "MaxPool" else "value"
        for padding, k, s in (("VALID", 2, 2), ("SAME", 3, 2), ("SAME", 3, 1)):
            pools.append(Case(op, {arg: odd}, {"ksize": [1, k, k, 1], "strides": [1, s, s, 1],
                                               "padding": padding},
                              exact=op == "MaxPool", id=f"{op}-{padding}-k{k}-s{s}"))
    resize = []
    for op in ("ResizeBilinear", "ResizeNearestNeighbor"):
        for size in ((14, 10), (3, 5)):
            for align, half in ((False, False), (True, False), (False, True)):
                resize.append(Case(op, {"images": odd, "size": i32(*size)},
                                   {"align_corners": align, "half_pixel_centers": half},
                                   exact=op == "ResizeNearestNeighbor",
                                   id=f"{op}-{size}-align{int(align)}-half{int(half)}"))
    return conv + backprop + pools + resize + [
        Case("BiasAdd", {"value": image, "bias": rand(4)}, exact=True),
        Case("BiasAdd", {"value": rand(2, 4, 3, 3), "bias": rand(4)}, {"data_format": "NCHW"},
             exact=True, id="BiasAdd-NCHW"),
        Case("FusedBatchNormV3", {"x": image, "scale": rand(4), "offset": rand(4),
                                  "mean": rand(4), "variance": rand(4, low=0.5, high=2)},
             {"epsilon": 0.001, "is_training": False}, folds=False, id="FusedBatchNormV3-all-outputs-used"),
        Case("Softmax", {"logits": rand(3, 7)}),
        Case("LogSoftmax", {"logits": rand(3, 7)}),
        Case("SpaceToBatchND", {"input": rand(1, 5, 6, 2), "block_shape": i32(2, 3),
                                "paddings": i32([1, 0], [0, 0])}, exact=True),
        Case("BatchToSpaceND", {"input": rand(6, 3, 2, 2), "block_shape": i32(2, 3),
                                "crops": i32([1, 0], [0, 2])}, exact=True),
    ]


ALL_CASES = (unary_cases() + binary_cases() + cast_cases() + select_cases() + reduction_cases()
             + matmul_cases() + strided_slice_cases() + array_cases() + nn_cases())


@pytest.mark.parametrize("case", [c.param() for c in ALL_CASES])
def test_kernel_matches_tensorflow(case):
    check(case)


def test_fused_batch_norm_inference_output_folds():
    """Only output 0 of an inference-mode batch norm is computed; it matches TF."""
    args = {"x": rand(2, 5, 5, 3), "scale": rand(3), "offset": rand(3), "mean": rand(3),
            "variance": rand(3, low=0.5, high=2)}
    with tf.Graph().as_default() as g:
        y = tf.raw_ops.FusedBatchNormV3(**_tf_inputs(args), epsilon=0.001, is_training=False,
                                        name="bn")[0]
        tf.identity(y, name="y")
    graph = Graph(GraphDef.FromString(g.as_graph_def().SerializeToString()))
    log = fold_constants(graph)
    want = tf.raw_ops.FusedBatchNormV3(**_tf_inputs(args), epsilon=0.001,
                                       is_training=False)[0].numpy()
    assert {"node": "bn/out_0", "op": "FusedBatchNormV3", "shape": [2, 5, 5, 3],
            "dtype": "float32", "from": "bn"} in log
    assert "bn" not in graph
    assert_same(graph.node("y").tensor, want, False, "batch norm")


def test_evaluate_outside_a_graph():
    """ops.evaluate runs a kernel on arrays with NodeDef attr names, as rules use it."""
    x = rand(4, 6)
    got = ops.evaluate("StridedSlice", [x, i32(0, 5), i32(0, 0), i32(1, -2)],
                       {"begin_mask": 1, "end_mask": 3})
    want = tf.raw_ops.StridedSlice(input=x, begin=i32(0, 5), end=i32(0, 0), strides=i32(1, -2),
                                   begin_mask=1, end_mask=3).numpy()
    assert_same(got[0], want, True, "evaluate")
    where = ops.evaluate("Where", [x > 0])[0]
    np.testing.assert_array_equal(where, tf.where(x > 0).numpy())
    with pytest.raises(GraphtoolError, match="no numpy kernel"):
        ops.evaluate("Placeholder", [])
    with pytest.raises(GraphtoolError, match="cannot be evaluated"):
        ops.evaluate("FloorDiv", [i32(1), i32(0)])


def test_stateful_and_unknown_ops_never_fold():
    with tf.Graph().as_default() as g:
        shape = tf.constant([2, 3])
        tf.identity(tf.raw_ops.RandomUniform(shape=shape, dtype=tf.float32), name="random")
        tf.identity(tf.raw_ops.Cumsum(x=tf.constant([1.0, 2.0]), axis=0), name="cumsum")
    graph = Graph(GraphDef.FromString(g.as_graph_def().SerializeToString()))
    fold_constants(graph)
    assert graph.node("RandomUniform").op == "RandomUniform"
    assert graph.node("random").op == "Identity"
    assert graph.node("Cumsum").op == "Cumsum"
    assert not ops.is_foldable("RandomUniform") and ops.is_stateful("RandomUniform")
    assert ops.is_stateful("Cumsum")  # unknown: assumed to have effects


def test_every_kernel_is_exercised():
    """Each op with a numpy kernel has at least one case here."""
    tested = {c.op for c in ALL_CASES} | {"FusedBatchNormV3", "Where", "RandomUniform"}
    aliases = {"Inv", "BiasAddV1", "FusedBatchNorm", "FusedBatchNormV2", "BatchMatMul",
               "Concat", "Gather", "ConjugateTranspose", "PreventGradient", "EnsureShape",
               "CheckNumerics", "Mod", "MaxPoolV2", "Tan", "Asin", "Acos", "Sinh", "Cosh",
               "IsInf", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "EuclideanNorm"}
    untested = {name for name, e in ops.OPS.items() if e.foldable} - tested - aliases
    assert not untested, f"kernels without a TF comparison: {sorted(untested)}"


def test_output_args_name_every_output():
    """Inlining maps a function body's ``node:arg:index`` to a port through these names."""
    named = {name: e for name, e in ops.OPS.items() if e.output_args}
    assert {"FusedBatchNormV3", "Switch", "Merge", "TopKV2"} <= set(named)
    for name, entry in named.items():
        assert not callable(entry.outputs) and entry.outputs == len(entry.output_args), name
        assert len(set(entry.output_args)) == len(entry.output_args), name
