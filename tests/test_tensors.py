"""Tensor <-> numpy conversion checked against TensorFlow's own make_tensor_proto/make_ndarray."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from graphtool.dtypes import DType, as_dtype, tf_name, to_numpy
from graphtool.errors import GraphtoolError
from graphtool.proto import TensorProto
from graphtool.tensors import from_array, to_array, uses_tensor_content

DTYPES = ["float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "bool"]


def _sample(dtype: str, shape=(2, 3)):
    rng = np.random.default_rng(42)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), shape).astype(dtype)
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    return rng.normal(size=shape).astype(np_dtype)


def _ours(tf_tensor_proto) -> TensorProto:
    return TensorProto.FromString(tf_tensor_proto.SerializeToString())


@pytest.mark.parametrize("dtype", DTYPES)
def test_reads_what_tensorflow_writes(dtype):
    import tensorflow as tf
    value = _sample(dtype)
    proto = tf.make_tensor_proto(value, dtype=getattr(tf, dtype))
    np.testing.assert_array_equal(to_array(_ours(proto)), tf.make_ndarray(proto))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensorflow_reads_what_we_write(dtype):
    import tensorflow as tf
    value = _sample(dtype, (3, 1, 2))
    ours = from_array(value)
    assert ours.tensor_content, "numeric tensors must be written as tensor_content"
    theirs = tf.make_ndarray(tf.make_tensor_proto(0).FromString(ours.SerializeToString()))
    assert theirs.dtype == to_numpy(dtype)
    np.testing.assert_array_equal(theirs, value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_splat_values_repeat_last(dtype):
    """TensorFlow's rule: fewer typed values than elements repeats the last one."""
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2
    proto = tensor_pb2.TensorProto(dtype=getattr(tf, dtype).as_datatype_enum)
    for size in (2, 3):
        proto.tensor_shape.dim.add(size=size)
    field = {"float16": "half_val", "bfloat16": "half_val", "float32": "float_val",
             "float64": "double_val", "int64": "int64_val", "bool": "bool_val"}.get(dtype, "int_val")
    raw = [1, 0] if dtype == "bool" else [3, 5]
    if field == "half_val":
        raw = list(np.array([1.5, -2.0], dtype=to_numpy(dtype)).view(np.uint16))
    getattr(proto, field).extend(raw)
    expected = tf.make_ndarray(proto)
    np.testing.assert_array_equal(to_array(_ours(proto)), expected)
    assert not uses_tensor_content(_ours(proto))


def test_scalar_and_empty_and_zero_fill():
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2
    scalar = tf.make_tensor_proto(np.float32(2.5))
    assert to_array(_ours(scalar)).shape == ()
    assert to_array(_ours(scalar)) == 2.5
    empty = tf.make_tensor_proto(np.zeros((0, 4), np.float32))
    assert to_array(_ours(empty)).shape == (0, 4)
    zeros = tensor_pb2.TensorProto(dtype=tf.int32.as_datatype_enum)
    zeros.tensor_shape.dim.add(size=4)
    np.testing.assert_array_equal(to_array(_ours(zeros)), tf.make_ndarray(zeros))


def test_strings():
    import tensorflow as tf
    proto = tf.make_tensor_proto(np.array([b"a", b"bc", b"\xff"], dtype=object))
    np.testing.assert_array_equal(to_array(_ours(proto)), tf.make_ndarray(proto))
    back = tf.make_ndarray(tf.make_tensor_proto(0).FromString(
        from_array(np.array([b"x", b"yz"], dtype=object)).SerializeToString()))
    assert list(back) == [b"x", b"yz"]


def test_large_tensor_is_a_view_not_a_copy():
    value = np.arange(1 << 20, dtype=np.float32)
    proto = from_array(value)
    array = to_array(proto)
    assert not array.flags.owndata  # a view over the protobuf's bytes
    assert not array.flags.writeable


def test_corrupt_content_is_a_clear_error():
    proto = from_array(np.zeros((2, 2), np.float32))
    proto.tensor_content = proto.tensor_content[:-1]
    with pytest.raises(GraphtoolError, match="needs 16"):
        to_array(proto)


def test_dtype_names():
    import tensorflow as tf
    for name in DTYPES:
        dt = as_dtype(name)
        assert int(dt) == getattr(tf, name).as_datatype_enum
        assert str(dt) == name
        assert as_dtype(tf_name(dt)) is dt
        assert as_dtype(int(dt) + 100) is dt  # reference types fold to the value type
    assert as_dtype(np.float32) is DType.float32
    with pytest.raises(GraphtoolError):
        as_dtype("float31")


@pytest.mark.parametrize("dtype", DTYPES)
def test_write_array_in_place_is_what_tensorflow_reads(dtype):
    """write_array fills a NodeDef's own value attr; TF reads back the same array, and
    the message is byte for byte what from_array builds."""
    import tensorflow as tf
    from graphtool.proto import NodeDef
    from graphtool.tensors import write_array
    for shape in ((3, 1, 2), ()):
        value = np.asarray(_sample(dtype, shape))
        node = NodeDef(name="c", op="Const")
        written = write_array(node.attr["value"].tensor, value)
        assert written == as_dtype(dtype if dtype != "bfloat16" else "bfloat16")
        tensor = node.attr["value"].tensor
        assert tensor.SerializeToString() == from_array(value).SerializeToString()
        theirs = tf.make_ndarray(tf.make_tensor_proto(0).FromString(tensor.SerializeToString()))
        np.testing.assert_array_equal(theirs, value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_decode_with_a_known_header_matches_tensorflow(dtype):
    """decode (the header already read) gives TF's value for content and splat forms."""
    import tensorflow as tf
    from graphtool.tensors import decode
    value = _sample(dtype, (2, 3))
    for proto in (tf.make_tensor_proto(value, dtype=getattr(tf, dtype)),
                  tf.make_tensor_proto(value.reshape(-1)[0], dtype=getattr(tf, dtype),
                                       shape=[2, 3])):
        ours = _ours(proto)
        got = decode(ours, as_dtype(ours.dtype), tuple(d.size for d in ours.tensor_shape.dim))
        np.testing.assert_array_equal(got, tf.make_ndarray(proto))
        assert got.dtype == tf.make_ndarray(proto).dtype
