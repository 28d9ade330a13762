"""``python -m lib COMMAND``: the command line (lib.tools.cli)."""

import sys

from lib.tools.cli import main

sys.exit(main())
