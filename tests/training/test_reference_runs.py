"""The same seed trains the same model, bit for bit, as the code did when the digests were recorded.

``tests/data/reference-digests.json`` holds SHA-256 digests of every array of three small
training checkpoints (BatchNorm, dropout, weight averaging, PacGAN packing, maxout, a decayed
learning rate, several epochs of data order), recorded before the code around the engine was
reorganised. Floating-point results depend on the BLAS kernel and the NumPy version, so the
comparison runs where those match the recording and is skipped elsewhere (with the reason).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import tinygan
from tinygan.io.checkpoint import load_checkpoint

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "reference-digests.json").read_text())


def _machine_matches() -> str | None:
    """Why this machine cannot reproduce the recorded bits, or None when it can."""
    recorded = REFERENCE["recorded_with"]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl is needed to identify the BLAS kernel"
    blas = [p for p in threadpool_info() if p.get("internal_api") in ("openblas", "mkl", "blis")]
    here = (np.__version__, blas[0]["internal_api"], blas[0].get("architecture")) if blas else None
    there = (recorded["numpy"], recorded["blas"], recorded["architecture"])
    return None if here == there else f"recorded with numpy/BLAS/kernel {there}, this machine has {here}"


def _digests(path: Path) -> dict[str, list]:
    arrays, _ = load_checkpoint(path)
    return {
        k: [str(a.dtype), list(a.shape), hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()]
        for k, a in sorted(arrays.items())
    }


@pytest.mark.usefixtures("numpy_one_blas_thread")
@pytest.mark.parametrize("name", sorted(REFERENCE["runs"]))
def test_same_seed_same_checkpoint_as_recorded(tmp_path, name):
    reason = _machine_matches()
    if reason:
        pytest.skip(reason)
    run = REFERENCE["runs"][name]
    case = run["case"]
    data = tinygan.load_dataset(case["dataset"], n=case["n"], seed=case["seed"])
    gan = tinygan.GAN.from_preset(case["preset"], data.sample_shape, "numpy", case["seed"], **case["overrides"])
    gan.fit(data.x, steps=case["steps"], log_every=10)
    gan.save(str(tmp_path / "c.npz"))
    got = _digests(tmp_path / "c.npz")
    assert sorted(got) == sorted(run["arrays"])
    different = [k for k in got if got[k] != run["arrays"][k]]
    assert not different, f"arrays that differ from the recorded run: {different}"
    _, meta = load_checkpoint(tmp_path / "c.npz")
    assert meta["step"] == run["step"] and meta["data"] == run["data"]
