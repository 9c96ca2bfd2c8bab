"""TensorFlow GraphDef messages, described at run time (no TensorFlow, no protoc).

See ``graphtool.proto.schema`` for why the schema is built this way.
"""
from graphtool.proto.schema import (  # noqa: F401
    AttrValue,
    DataType,
    FunctionDefLibrary,
    GraphDef,
    NameAttrList,
    NodeDef,
    SavedModel,
    TensorProto,
    TensorShapeProto,
    VersionDef,
)
