"""``python -m tinygan``: see :mod:`tinygan.interfaces.cli`."""

import sys

from .interfaces.cli import main

sys.exit(main())
