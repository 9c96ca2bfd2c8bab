"""GraphDef and friends, declared in Python from the public wire format.

Why this mechanism: the schema is a ``FileDescriptorProto`` assembled here from
field numbers and types (facts of the wire format) and turned into message
classes by the installed protobuf runtime's own ``message_factory``.  Nothing
is generated ahead of time, so

* users need no ``protoc`` and no TensorFlow;
* there is no generated ``*_pb2.py`` whose runtime-version check can break when
  protobuf is upgraded (generated code is tied to the runtime that made it;
  descriptors are not);
* the fast C (upb) parser still does all the work, and unknown fields are kept
  by the runtime, so fields this schema omits survive a load/save round trip.

Only what graphtool reads is declared in detail; the rest of TensorFlow's
messages (debug info, full types, resource handles) is declared as far as
needed for text-format files to parse, and anything else rides along as
unknown fields in binary files.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "bool": _F.TYPE_BOOL,
    "int32": _F.TYPE_INT32, "int64": _F.TYPE_INT64, "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64, "float": _F.TYPE_FLOAT, "double": _F.TYPE_DOUBLE,
}
_PACKAGE = "graphtool.tf"

# DataType enum values (TensorFlow types.proto numbering).  *_REF variants are
# the same value + 100 and are generated below.
DATA_TYPES = {
    "DT_INVALID": 0, "DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4,
    "DT_INT16": 5, "DT_INT8": 6, "DT_STRING": 7, "DT_COMPLEX64": 8, "DT_INT64": 9,
    "DT_BOOL": 10, "DT_QINT8": 11, "DT_QUINT8": 12, "DT_QINT32": 13, "DT_BFLOAT16": 14,
    "DT_QINT16": 15, "DT_QUINT16": 16, "DT_UINT16": 17, "DT_COMPLEX128": 18, "DT_HALF": 19,
    "DT_RESOURCE": 20, "DT_VARIANT": 21, "DT_UINT32": 22, "DT_UINT64": 23,
    "DT_FLOAT8_E5M2": 24, "DT_FLOAT8_E4M3FN": 25, "DT_FLOAT8_E4M3FNUZ": 26,
    "DT_FLOAT8_E4M3B11FNUZ": 27, "DT_FLOAT8_E5M2FNUZ": 28, "DT_INT4": 29, "DT_UINT4": 30,
    "DT_INT2": 31, "DT_UINT2": 32,
}

# FullTypeId values that appear in frozen graphs' text form (full_type.proto).
FULL_TYPE_IDS = {
    "TFT_UNSET": 0, "TFT_VAR": 1, "TFT_ANY": 2, "TFT_PRODUCT": 3, "TFT_NAMED": 4,
    "TFT_FOR_EACH": 20, "TFT_CALLABLE": 100, "TFT_TENSOR": 1000, "TFT_ARRAY": 1001,
    "TFT_OPTIONAL": 1002, "TFT_LITERAL": 1003, "TFT_ENCODED": 1004, "TFT_SHAPE_TENSOR": 1005,
    "TFT_BOOL": 200, "TFT_UINT8": 201, "TFT_UINT16": 202, "TFT_UINT32": 203,
    "TFT_UINT64": 204, "TFT_INT8": 205, "TFT_INT16": 206, "TFT_INT32": 207,
    "TFT_INT64": 208, "TFT_HALF": 209, "TFT_FLOAT": 210, "TFT_DOUBLE": 211,
    "TFT_COMPLEX64": 212, "TFT_COMPLEX128": 213, "TFT_STRING": 214, "TFT_BFLOAT16": 215,
    "TFT_DATASET": 10102, "TFT_RAGGED": 10103, "TFT_ITERATOR": 10104,
    "TFT_MUTEX_LOCK": 10202, "TFT_LEGACY_VARIANT": 10203,
}

# Message layouts: name -> list of (field, number, type, label) where label is
# "" (optional), "repeated", "packed" (repeated scalar, packed on the wire) or
# "map<K,V>" for map fields.  A field of type "oneof:NAME:T" belongs to oneof NAME.
MESSAGES: dict[str, list[tuple]] = {
    "TensorShapeProto.Dim": [("size", 1, "int64", ""), ("name", 2, "string", "")],
    "TensorShapeProto": [("dim", 2, "TensorShapeProto.Dim", "repeated"),
                         ("unknown_rank", 3, "bool", "")],
    "TensorProto": [
        ("dtype", 1, "DataType", ""), ("tensor_shape", 2, "TensorShapeProto", ""),
        ("version_number", 3, "int32", ""), ("tensor_content", 4, "bytes", ""),
        ("half_val", 13, "int32", "packed"), ("float_val", 5, "float", "packed"),
        ("double_val", 6, "double", "packed"), ("int_val", 7, "int32", "packed"),
        ("string_val", 8, "bytes", "repeated"), ("scomplex_val", 9, "float", "packed"),
        ("int64_val", 10, "int64", "packed"), ("bool_val", 11, "bool", "packed"),
        ("dcomplex_val", 12, "double", "packed"),
        ("resource_handle_val", 14, "ResourceHandleProto", "repeated"),
        ("variant_val", 15, "VariantTensorDataProto", "repeated"),
        ("uint32_val", 16, "uint32", "packed"), ("uint64_val", 17, "uint64", "packed"),
        ("float8_val", 18, "bytes", ""),
    ],
    "ResourceHandleProto.DtypeAndShape": [("dtype", 1, "DataType", ""),
                                          ("shape", 2, "TensorShapeProto", "")],
    "ResourceHandleProto": [
        ("device", 1, "string", ""), ("container", 2, "string", ""),
        ("name", 3, "string", ""), ("hash_code", 4, "uint64", ""),
        ("maybe_type_name", 5, "string", ""),
        ("dtypes_and_shapes", 6, "ResourceHandleProto.DtypeAndShape", "repeated"),
    ],
    "VariantTensorDataProto": [("type_name", 1, "string", ""), ("metadata", 2, "bytes", ""),
                               ("tensors", 3, "TensorProto", "repeated")],
    "AttrValue.ListValue": [
        ("s", 2, "bytes", "repeated"), ("i", 3, "int64", "packed"),
        ("f", 4, "float", "packed"), ("b", 5, "bool", "packed"),
        ("type", 6, "DataType", "packed"), ("shape", 7, "TensorShapeProto", "repeated"),
        ("tensor", 8, "TensorProto", "repeated"), ("func", 9, "NameAttrList", "repeated"),
    ],
    "AttrValue": [
        ("s", 2, "oneof:value:bytes", ""), ("i", 3, "oneof:value:int64", ""),
        ("f", 4, "oneof:value:float", ""), ("b", 5, "oneof:value:bool", ""),
        ("type", 6, "oneof:value:DataType", ""),
        ("shape", 7, "oneof:value:TensorShapeProto", ""),
        ("tensor", 8, "oneof:value:TensorProto", ""),
        ("list", 1, "oneof:value:AttrValue.ListValue", ""),
        ("func", 10, "oneof:value:NameAttrList", ""),
        ("placeholder", 9, "oneof:value:string", ""),
    ],
    "NameAttrList": [("name", 1, "string", ""), ("attr", 2, "AttrValue", "map<string>")],
    "FullTypeDef": [("type_id", 1, "FullTypeId", ""), ("args", 2, "FullTypeDef", "repeated"),
                    ("s", 3, "oneof:attr:string", ""), ("i", 4, "oneof:attr:int64", "")],
    "NodeDef.ExperimentalDebugInfo": [("original_node_names", 1, "string", "repeated"),
                                      ("original_func_names", 2, "string", "repeated")],
    "NodeDef": [
        ("name", 1, "string", ""), ("op", 2, "string", ""), ("input", 3, "string", "repeated"),
        ("device", 4, "string", ""), ("attr", 5, "AttrValue", "map<string>"),
        ("experimental_debug_info", 6, "NodeDef.ExperimentalDebugInfo", ""),
        ("experimental_type", 7, "FullTypeDef", ""),
    ],
    "VersionDef": [("producer", 1, "int32", ""), ("min_consumer", 2, "int32", ""),
                   ("bad_consumers", 3, "int32", "packed")],
    "OpDef.ArgDef": [
        ("name", 1, "string", ""), ("description", 2, "string", ""),
        ("type", 3, "DataType", ""), ("type_attr", 4, "string", ""),
        ("number_attr", 5, "string", ""), ("type_list_attr", 6, "string", ""),
        ("handle_data", 7, "ResourceHandleProto.DtypeAndShape", "repeated"),
        ("is_ref", 16, "bool", ""), ("experimental_full_type", 17, "FullTypeDef", ""),
    ],
    "OpDef.AttrDef": [
        ("name", 1, "string", ""), ("type", 2, "string", ""),
        ("default_value", 3, "AttrValue", ""), ("description", 4, "string", ""),
        ("has_minimum", 5, "bool", ""), ("minimum", 6, "int64", ""),
        ("allowed_values", 7, "AttrValue", ""),
    ],
    "OpDeprecation": [("version", 1, "int32", ""), ("explanation", 2, "string", "")],
    "OpDef": [
        ("name", 1, "string", ""), ("input_arg", 2, "OpDef.ArgDef", "repeated"),
        ("output_arg", 3, "OpDef.ArgDef", "repeated"),
        ("control_output", 20, "string", "repeated"), ("attr", 4, "OpDef.AttrDef", "repeated"),
        ("deprecation", 8, "OpDeprecation", ""), ("summary", 5, "string", ""),
        ("description", 6, "string", ""), ("is_commutative", 18, "bool", ""),
        ("is_aggregate", 16, "bool", ""), ("is_stateful", 17, "bool", ""),
        ("allows_uninitialized_input", 19, "bool", ""),
        ("is_distributed_communication", 21, "bool", ""),
    ],
    "FunctionDef.ArgAttrs": [("attr", 1, "AttrValue", "map<string>")],
    "FunctionDef": [
        ("signature", 1, "OpDef", ""), ("attr", 5, "AttrValue", "map<string>"),
        ("arg_attr", 7, "FunctionDef.ArgAttrs", "map<uint32>"),
        ("resource_arg_unique_id", 8, "uint32", "map<uint32>"),
        ("node_def", 3, "NodeDef", "repeated"), ("ret", 4, "string", "map<string>"),
        ("control_ret", 6, "string", "map<string>"),
    ],
    "GradientDef": [("function_name", 1, "string", ""), ("gradient_func", 2, "string", "")],
    "RegisteredGradient": [("gradient_func", 1, "string", ""),
                           ("registered_op_type", 2, "string", "")],
    "FunctionDefLibrary": [
        ("function", 1, "FunctionDef", "repeated"), ("gradient", 2, "GradientDef", "repeated"),
        ("registered_gradients", 3, "RegisteredGradient", "repeated"),
    ],
    # Debug info is only carried along; its contents stay unknown fields.
    "GraphDebugInfo": [],
    "GraphDef": [
        ("node", 1, "NodeDef", "repeated"), ("versions", 4, "VersionDef", ""),
        ("version", 3, "int32", ""), ("library", 2, "FunctionDefLibrary", ""),
        ("debug_info", 5, "GraphDebugInfo", ""),
    ],
    # Just enough of a SavedModel to recognise one and say so.
    "MetaGraphDef": [("graph_def", 2, "GraphDef", "")],
    "SavedModel": [("saved_model_schema_version", 1, "int64", ""),
                   ("meta_graphs", 2, "MetaGraphDef", "repeated")],
}
ENUMS = {"DataType": {**DATA_TYPES, **{k + "_REF": v + 100 for k, v in DATA_TYPES.items()
                                       if 0 < v}},
         "FullTypeId": FULL_TYPE_IDS}


def _message_proto(container, path: list[str]):
    """Find or create the DescriptorProto for a dotted message path inside ``container``."""
    for part in path:
        existing = [m for m in container.message_type if m.name == part] if hasattr(
            container, "message_type") else [m for m in container.nested_type if m.name == part]
        if existing:
            container = existing[0]
        else:
            container = (container.message_type.add() if hasattr(container, "message_type")
                         else container.nested_type.add())
            container.name = part
    return container


def _set_type(field, type_name: str) -> None:
    if type_name in _SCALARS:
        field.type = _SCALARS[type_name]
    elif type_name in ENUMS:
        field.type = _F.TYPE_ENUM
        field.type_name = f".{_PACKAGE}.{type_name}"
    else:
        field.type = _F.TYPE_MESSAGE
        field.type_name = f".{_PACKAGE}.{type_name}"


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="graphtool_tf.proto", package=_PACKAGE,
                                             syntax="proto3")
    for enum_name, values in ENUMS.items():
        enum = fdp.enum_type.add(name=enum_name)
        for name, number in sorted(values.items(), key=lambda kv: kv[1]):
            enum.value.add(name=name, number=number)
    for full_name, fields in MESSAGES.items():
        msg = _message_proto(fdp, full_name.split("."))
        oneofs: dict[str, int] = {}
        for fname, number, ftype, label in fields:
            field = msg.field.add(name=fname, number=number)
            if ftype.startswith("oneof:"):
                _, group, ftype = ftype.split(":")
                if group not in oneofs:
                    oneofs[group] = len(msg.oneof_decl)
                    msg.oneof_decl.add(name=group)
                field.oneof_index = oneofs[group]
            if label.startswith("map<"):
                key_type = label[4:-1]
                entry_name = "".join(p.capitalize() for p in fname.split("_")) + "Entry"
                entry = msg.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                key = entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL)
                _set_type(key, key_type)
                value = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
                _set_type(value, ftype)
                field.label = _F.LABEL_REPEATED
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{full_name}.{entry_name}"
                continue
            field.label = _F.LABEL_REPEATED if label in ("repeated", "packed") else _F.LABEL_OPTIONAL
            _set_type(field, ftype)
            if label == "repeated" and ftype in _SCALARS and ftype not in ("string", "bytes"):
                field.options.packed = False
    return fdp


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_build_file())


def _message_class(name: str):
    descriptor = _POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}")
    return message_factory.GetMessageClass(descriptor)


GraphDef = _message_class("GraphDef")
NodeDef = _message_class("NodeDef")
AttrValue = _message_class("AttrValue")
NameAttrList = _message_class("NameAttrList")
TensorProto = _message_class("TensorProto")
TensorShapeProto = _message_class("TensorShapeProto")
VersionDef = _message_class("VersionDef")
FunctionDefLibrary = _message_class("FunctionDefLibrary")
SavedModel = _message_class("SavedModel")
DataType = _POOL.FindEnumTypeByName(f"{_PACKAGE}.DataType")
