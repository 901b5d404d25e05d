"""Backends: selection by name and environment, errors, seeded random numbers, host transfers, imports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygan.backend import ENV_VAR, BackendError, cupy_available, get_backend, namespace_of, to_numpy

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# Selecting a backend
# --------------------------------------------------------------------------------------------


def test_get_backend_by_name(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    numpy_backend = get_backend("numpy")
    assert numpy_backend.name == "numpy" and numpy_backend.xp is np
    assert get_backend() is numpy_backend  # the default
    assert get_backend(None).name == "numpy"
    strict = get_backend("array-api-strict")
    assert strict.name == "array-api-strict"
    assert strict.xp.__name__ == "array_api_strict"
    assert get_backend(strict) is strict  # a Backend passes through


def test_get_backend_from_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "array-api-strict")
    assert get_backend().name == "array-api-strict"
    assert get_backend("numpy").name == "numpy"  # an explicit name wins over the variable
    monkeypatch.setenv(ENV_VAR, "numpy")
    assert get_backend().name == "numpy"
    monkeypatch.setenv(ENV_VAR, "")
    assert get_backend().name == "numpy"  # empty means unset


def test_unknown_backend_name(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(BackendError, match=r"unknown backend 'jax': expected one of numpy, cupy"):
        get_backend("jax")


def test_unknown_backend_from_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "tpu")
    with pytest.raises(BackendError, match=r"\$TINYGAN_BACKEND 'tpu'") as info:
        get_backend()
    assert "numpy, cupy" in str(info.value)


def test_backend_error_is_runtime_error():
    assert issubclass(BackendError, RuntimeError)


def test_cupy_missing_explains_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail, as on a machine without it
    with pytest.raises(BackendError, match="pip install") as info:
        get_backend("cupy")
    assert "tinygan[cuda12]" in str(info.value)
    assert not cupy_available()
    monkeypatch.setenv(ENV_VAR, "cupy")
    with pytest.raises(BackendError, match="pip install"):
        get_backend()


def test_cupy_without_device(monkeypatch):
    """CuPy importable but no usable CUDA: a BackendError that says what to check, never a CUDA traceback."""

    class FakeRuntime:
        def __init__(self, count=None):
            self.count = count

        def getDeviceCount(self):  # CuPy's name
            if self.count is None:
                raise RuntimeError("cudaErrorNoDevice")
            return self.count

    class FakeCupy:
        class cuda:  # CuPy's name
            runtime = FakeRuntime()

    monkeypatch.setitem(sys.modules, "cupy", FakeCupy)
    with pytest.raises(BackendError, match="CUDA is not usable.*nvidia-smi"):
        get_backend("cupy")
    FakeCupy.cuda.runtime = FakeRuntime(0)
    with pytest.raises(BackendError, match="no CUDA device"):
        get_backend("cupy")
    assert not cupy_available()


def test_dtype(backend):
    assert backend.dtype("float32") == backend.xp.float32
    assert backend.dtype("float64") == backend.xp.float64
    with pytest.raises(ValueError, match="'float16'"):
        backend.dtype("float16")


def test_asarray_and_to_numpy(backend):
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    a = backend.asarray(host)
    assert namespace_of(a) is backend.xp
    back = to_numpy(a)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(backend.to_numpy(a), host)

    as32 = backend.asarray([[1, 2], [3, 4]], dtype=backend.dtype("float32"))
    assert to_numpy(as32).dtype == np.float32
    scalar = backend.asarray(2.5)
    assert tuple(scalar.shape) == ()
    assert float(to_numpy(scalar)) == 2.5

    # reductions come back as 0-d host arrays (NumPy returns scalars there, CuPy 0-d device arrays)
    total = to_numpy(backend.xp.sum(a))
    assert isinstance(total, np.ndarray) and total.shape == () and float(total) == 15.0
    assert to_numpy(backend.xp.asarray(True)).dtype == np.bool_


def test_to_numpy_of_numpy_is_free():
    a = np.ones(3)
    assert to_numpy(a) is a
    assert isinstance(to_numpy(np.float32(1.5)), np.ndarray)


def test_synchronize(backend):
    backend.synchronize()  # a no-op on the CPU, a stream sync on a GPU: must simply not fail


# --------------------------------------------------------------------------------------------
# Random numbers
# --------------------------------------------------------------------------------------------


def _draws(rng, backend):
    return [
        to_numpy(rng.normal((3, 4), backend.dtype("float64"))),
        to_numpy(rng.uniform((5,), backend.dtype("float32"))),
        to_numpy(rng.permutation(7)),
    ]


def test_random_is_deterministic_for_a_seed(backend):
    a, b = _draws(backend.rng(42), backend), _draws(backend.rng(42), backend)
    c = _draws(backend.rng(43), backend)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])


def test_random_shapes_dtypes_and_ranges(backend):
    rng = backend.rng(0)
    for dtype in ("float32", "float64"):
        u = to_numpy(rng.uniform((100, 100), backend.dtype(dtype)))
        n = to_numpy(rng.normal((100, 100), backend.dtype(dtype)))
        assert u.shape == n.shape == (100, 100)
        assert u.dtype == n.dtype == np.dtype(dtype)
        assert u.min() >= 0.0 and u.max() < 1.0
        assert abs(u.mean() - 0.5) < 0.015  # 10 000 samples: all bounds are about 5 standard errors
        assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.035


@pytest.mark.parametrize("n", [0, 1, 2, 10, 1000])
def test_permutation_is_a_permutation(backend, n):
    perm = to_numpy(backend.rng(3).permutation(n))
    assert perm.shape == (n,)
    assert np.issubdtype(perm.dtype, np.integer)
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))
    if n >= 10:
        assert not np.array_equal(perm, np.arange(n))


def test_random_state_round_trip(backend):
    rng = backend.rng(5)
    rng.normal((10,), backend.dtype("float64"))
    state = rng.get_state()
    json.dumps(state)  # plain data, storable in a checkpoint's metadata
    if backend.on_gpu:
        assert state == {"kind": "cupy"}  # CuPy does not expose its state; resuming reseeds
        rng.set_state(state)  # accepted, a no-op
        return
    first = _draws(rng, backend)
    rng.set_state(state)
    again = _draws(rng, backend)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)

    other = backend.rng(999)  # a state moves between generators too, e.g. into a resumed run
    other.set_state(json.loads(json.dumps(state)))
    for x, y in zip(first, _draws(other, backend), strict=True):
        np.testing.assert_array_equal(x, y)


def test_random_state_is_a_snapshot(backend):
    if backend.on_gpu:
        pytest.skip("cupy backend: generator state is not exposed")
    rng = backend.rng(1)
    state = rng.get_state()
    frozen = json.dumps(state, sort_keys=True)
    rng.normal((10,), backend.dtype("float64"))
    assert json.dumps(state, sort_keys=True) == frozen  # drawing later does not change a saved state


# --------------------------------------------------------------------------------------------
# Importing
# --------------------------------------------------------------------------------------------


def test_import_tinygan_loads_only_numpy():
    """``import tinygan`` must not pull in CuPy (slow, needs CUDA) or the test-only array-api-strict."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import tinygan\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps(sorted(m for m in new if m not in sys.stdlib_module_names)))\n"
        "print(json.dumps(['cupy' in sys.modules, 'array_api_strict' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert json.loads(out[0]) == ["numpy", "tinygan"]
    assert json.loads(out[1]) == [False, False]


def test_a_state_from_another_backend_reseeds_from_the_fallback():
    """A checkpoint saved on CuPy (whose generator state cannot be kept) and resumed on NumPy continues
    with fresh numbers from (seed, step), not with the seed's stream replayed from its start."""
    rng = get_backend("numpy").rng(7)
    rng.set_state({"kind": "cupy"}, fallback_seed=123)
    expected = np.random.default_rng(123).standard_normal((4,), dtype=np.float32)
    np.testing.assert_array_equal(rng.normal((4,), np.float32), expected)
    assert not np.array_equal(expected, get_backend("numpy").rng(7).normal((4,), np.float32))
