"""``python -m edgetally ...`` is the ``edge`` command."""

import sys

from edgetally.cli import main

sys.exit(main())
