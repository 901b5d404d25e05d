"""Run tinygan in a fresh process under an address-space cap (``RLIMIT_AS``, what ``ulimit -v`` sets).

Under a cap an allocation that does not fit fails at once with NumPy's raw ``MemoryError`` instead of
swapping or being killed, so a test sees whether a request was measured before it was allocated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAP = 2 * 1024**3  # bytes of address space: Python, NumPy and a tiny model take a few hundred MB

# Set the cap, then run the command line (argv after the cap) or the Python code given with -c.
_PRELUDE = """
import resource, runpy, sys
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
if sys.argv[2] == "-c":
    code = sys.argv[3]
    sys.argv = ["-c"]
    exec(compile(code, "<capped>", "exec"), {"__name__": "__main__"})
else:
    sys.argv = ["tinygan", *sys.argv[2:]]
    runpy.run_module("tinygan", run_name="__main__")
"""


def run_capped(*args: str, cwd: Path, cap: int = CAP, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m tinygan ARGS`` (or ``python -c CODE`` for ``"-c", CODE``) under ``cap`` bytes of address space."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TINYGAN_BACKEND="numpy")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-c", _PRELUDE, str(cap), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
