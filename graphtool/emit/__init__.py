"""Writing results: graphs (binary or text) and any other output file, always atomically."""
from graphtool.emit.files import atomic_write, save_graph  # noqa: F401
