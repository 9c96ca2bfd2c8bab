"""``python -m graphtool`` is the same as the ``graphtool`` command."""
from graphtool.cli import main

raise SystemExit(main())
