"""The fused GPU kernels compute what the array code computes: each body compiled as C++ and compared on the CPU.

The bodies in ``tinygan/backend/kernels.py`` are CUDA C, but every one is plain C arithmetic on
one element, so it compiles as C++ too. Each test here runs a body over host arrays (inputs
broadcast first, as CuPy broadcasts them) and compares its outputs with the engine's own array
code on NumPy -- the layer, loss or optimizer the kernel stands in for -- so a wrong formula is
caught without a GPU. On a GPU, every engine test runs through the kernels themselves as well.
Skipped where no C++ compiler is found.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinygan import BatchNorm, Dense, Dropout, LeakyReLU, Sequential, Tanh
from tinygan.backend import get_backend
from tinygan.backend.kernels import SOURCES
from tinygan.engine.logit_losses import bce_with_logits
from tinygan.engine.optim import Adam
from tinygan.models.averaging import AveragedNetwork

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to compile the kernel bodies")
_LIBS: dict[str, ctypes.CDLL] = {}


def _params(spec: str) -> list[tuple[str, str]]:
    return [tuple(p.split()) for p in spec.split(",") if p.strip()]


def _source(name: str, t: str) -> str:
    inputs, outputs, body = SOURCES[name]
    params = _params(inputs) + _params(outputs)
    ctype = {"T": t, "float64": "double"}
    decls = "\n".join(f"    {ctype[k]} {v} = (({ctype[k]}*)args[{i}])[i];" for i, (k, v) in enumerate(params))
    stores = "\n".join(
        f"    (({ctype[k]}*)args[{len(_params(inputs)) + j}])[i] = {v};" for j, (k, v) in enumerate(_params(outputs))
    )
    return f"""
extern "C" void run_{t}(long n, void** args) {{
  typedef {t} T;
  for (long i = 0; i < n; ++i) {{
{decls}
    {{ {body} }}
{stores}
  }}
}}"""


def _library(name: str) -> ctypes.CDLL:
    if name not in _LIBS:
        code = "#include <cmath>\nusing std::sqrt; using std::pow; using std::tanh; using std::log1p;\n"
        code += "using std::exp; using std::fabs;\n" + _source(name, "float") + _source(name, "double")
        folder = Path(tempfile.gettempdir()) / "tinygan-kernels"
        folder.mkdir(exist_ok=True)
        lib = folder / f"{name}-{hashlib.sha256(code.encode()).hexdigest()[:12]}.so"
        if not lib.exists():
            src = lib.with_suffix(".cpp")
            src.write_text(code)
            # no contraction of a*b+c into one rounding: as close to NumPy's separate passes as C gets
            subprocess.run([CXX, "-O1", "-ffp-contract=off", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
        _LIBS[name] = ctypes.CDLL(str(lib))
    return _LIBS[name]


def run(name: str, dtype: type, *args: object, outputs: tuple = ()) -> tuple[np.ndarray, ...]:
    """Run kernel ``name`` on host arrays: ``args`` are its inputs (scalars or arrays, broadcast), then
    ``outputs`` the initial values of its outputs (read-write ones matter); returns the outputs."""
    inputs, outs, _ = SOURCES[name]
    kinds = [k for k, _ in _params(inputs)] + [k for k, _ in _params(outs)]
    values = [*args, *outputs] if outputs else [*args, *([0.0] * len(_params(outs)))]
    shape = np.broadcast_shapes(*(np.shape(v) for v in values))
    arrays = [  # copies, C-ordered, 0-d kept 0-d
        np.array(np.broadcast_to(np.asarray(v, np.float64 if k == "float64" else dtype), shape), order="C")
        for k, v in zip(kinds, values, strict=True)
    ]
    pointers = (ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))
    getattr(_library(name), "run_float" if dtype == np.float32 else "run_double")(ctypes.c_long(int(np.prod(shape))),
                                                                                  pointers)
    return tuple(arrays[len(args):])


def close(a: np.ndarray, b: np.ndarray, dtype: type) -> None:
    tol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=tol, atol=tol)


DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
NUMPY = get_backend("numpy")


def _layer(layer, dtype, training=True):
    net = Sequential([layer], NUMPY, dtype=np.dtype(dtype).name, seed=3)
    net.train(training)
    return net.layers[0]


def _x(seed, shape, dtype, scale=2.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def test_every_kernel_is_checked_here():
    checked = {"adam", "adam_scalars", "ema", "leaky_relu", "dropout", "tanh_grad", "sigmoid", "bn_center",
               "bn_running", "bn_inv_std", "bn_normalize", "bn_dx", "bce"}
    assert set(SOURCES) == checked


@DTYPES
def test_adam_kernels_match_adam(dtype):
    p, g = _x(0, (300,), dtype), _x(1, (300,), dtype)
    opt = Adam(p.copy(), g, lr=1e-3, betas=(0.5, 0.999))
    m, v, t = np.zeros(300, dtype), np.zeros(300, dtype), np.zeros(())
    params = p.copy()
    for _ in range(3):
        opt.step()
        t, step_size, c2 = run("adam_scalars", dtype, 1e-3, 0.5, 0.999, outputs=(t, 0.0, 0.0))
        params, m, v = run("adam", dtype, g, 0.5, 0.5, 0.999, 1 - 0.999, step_size, c2, 1e-8, outputs=(params, m, v))
    assert float(t) == 3.0
    close(params, opt.params, dtype)
    close(m, opt.m, dtype)
    close(v, opt.v, dtype)


@DTYPES
def test_ema_kernel_matches_the_average(dtype):
    source = Sequential([Dense(5, 10)], NUMPY, np.dtype(dtype).name, seed=1)
    average = AveragedNetwork(source, 0.9, NUMPY, np.dtype(dtype).name, 0)
    average.net.params[...] = _x(5, (60,), dtype)
    avg = average.net.params.copy()
    average.update(np.asarray(3.0))
    (got,) = run("ema", dtype, source.params, 0.9, 3.0, outputs=(avg,))
    close(got, average.net.params, dtype)


@DTYPES
def test_activation_kernels_match_the_layers(dtype):
    x, dy = _x(6, (7, 9), dtype), _x(7, (7, 9), dtype)
    leaky = _layer(LeakyReLU(0.2), dtype)
    y = leaky.forward(x)
    got_y, got_factor = run("leaky_relu", dtype, x, 0.2)
    close(got_y, y, dtype)
    close(got_factor, leaky.factor, dtype)
    tanh = _layer(Tanh(), dtype)
    tanh.forward(x)
    close(run("tanh_grad", dtype, dy, tanh.y)[0], tanh.backward(dy), dtype)
    close(run("sigmoid", dtype, x)[0], 0.5 * np.tanh(0.5 * x) + 0.5, dtype)


@DTYPES
def test_dropout_kernel_matches_the_layer(dtype):
    x = _x(8, (6, 10), dtype)
    layer = _layer(Dropout(0.3), dtype)
    y = layer.forward(x)
    u = np.random.default_rng(3).random((6, 10), dtype=dtype)  # the draw the layer made (seed 3, first draw)
    mask, got_y = run("dropout", dtype, u, x, 0.3, 1 / 0.7)
    close(mask, layer.mask, dtype)
    close(got_y, y, dtype)


@DTYPES
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_kernels_match_the_layer(dtype, training):
    x, dy = _x(9, (8, 5), dtype), _x(10, (8, 5), dtype)
    layer = _layer(BatchNorm(5, momentum=0.2), dtype, training)
    layer.params["gamma"][...] = _x(11, (5,), dtype)
    layer.params["beta"][...] = _x(12, (5,), dtype)
    running = (layer.running_mean.copy(), layer.running_var.copy())
    y = layer.forward(x)
    mean = x.mean(axis=0) if training else running[0]
    xc, sq = run("bn_center", dtype, x, mean)
    var = sq.mean(axis=0) if training else running[1]
    if training:
        got_mean, got_var = run("bn_running", dtype, mean, var, 0.2, 8 / 7, outputs=running)
        close(got_mean, layer.running_mean, dtype)
        close(got_var, layer.running_var, dtype)
    (inv_std,) = run("bn_inv_std", dtype, var, layer.eps)
    xhat, got_y = run("bn_normalize", dtype, xc, inv_std, layer.params["gamma"], layer.params["beta"])
    close(xhat, layer.xhat, dtype)
    close(got_y, y, dtype)
    if training:
        sums = dy.sum(axis=0), (dy * xhat).sum(axis=0)
        dx = layer.backward(dy, need_dparams=False)
        close(run("bn_dx", dtype, dy, xhat, *sums, layer.params["gamma"] * inv_std, 8)[0], dx, dtype)


@DTYPES
@pytest.mark.parametrize("target", [1.0, 0.9, 0.0, "array"])
def test_bce_kernel_matches_the_loss(dtype, target):
    a = _x(13, (12, 1), dtype, scale=30.0)  # large logits too: the stable form must hold in C as well
    t = np.random.default_rng(1).random((12, 1)).astype(dtype) if target == "array" else target
    loss, grad = bce_with_logits(a, t)
    terms, got_grad = run("bce", dtype, a, t, a.size)
    close(terms.sum(), loss, dtype)
    close(got_grad, grad, dtype)
