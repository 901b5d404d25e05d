"""``python -m tinygan``: see :mod:`tinygan.cli`."""

import sys

from .cli import main

sys.exit(main())
