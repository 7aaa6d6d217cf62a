"""``python -m threadline``: the ``threadline`` command (threadline.cli)."""

import sys

from threadline.cli import main

sys.exit(main())
