"""Writing results: graphs (binary or text), OpenCV configs, any output file - atomically."""
from graphtool.emit.files import atomic_write, save_graph  # noqa: F401
from graphtool.emit.opencv_pbtxt import opencv_config  # noqa: F401
