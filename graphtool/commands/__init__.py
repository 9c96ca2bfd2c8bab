"""One module per CLI sub-command.

Each module defines ``NAME`` (the sub-command), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``.  Modules must import heavy
libraries (TensorFlow, OpenCV, graphviz) inside ``run`` so that ``graphtool
--help`` and ``graphtool inspect`` start fast.  ``graphtool.cli`` discovers the
modules here, so adding a command means adding one file.
"""
