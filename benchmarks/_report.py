"""Writing a benchmark's results: the JSON file each script leaves behind with ``--json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run from a checkout without installing tinygan
    sys.path.insert(0, str(_REPO))

from tinygan.io.files import atomic_write_bytes  # noqa: E402


def write_json(path: str | Path, payload: object) -> None:
    """``payload`` as indented JSON at ``path``, folders created; replaced atomically, never half-written."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode())
