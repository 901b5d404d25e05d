"""The recorded CUDA-graph step on a GPU: the same results as the eager step (skipped without CuPy and a GPU).

The CPU half of the proof is ``test_recorded_step.py``; here the recorded graph itself is compared
with eager steps that run the same kernels, bit for bit, and with plain CuPy (``cupy.matmul``).
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from tinygan import GAN, VAE, GANConfig, VAEConfig
from tinygan.backend import cupy_available, get_backend, to_numpy

pytestmark = pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA device")

CONFIG = dict(
    data_shape=(12,), latent_dim=5, g_hidden=[32, 64], g_batchnorm=[False, True], d_hidden=[48, 16],
    d_dropout=0.3, g_ema_decay=0.99, lr_decay=0.1, pack=2, batch_size=32,
)


def _batches(n: int, rows: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(-1, 1, (rows, 12)).astype(np.float32) for _ in range(n)]


def _train(backend, steps: int = 6, **overrides) -> tuple[GAN, list[dict]]:
    gan = GAN(GANConfig(**{**CONFIG, **overrides}), backend=backend, seed=4)
    gan.set_horizon(steps)
    history = []
    classes, n_classes = np.random.default_rng(1), gan.config.n_classes
    for real in _batches(steps, 32 * gan.config.n_critic):
        labels = gan.backend.asarray(classes.integers(0, n_classes, len(real))) if n_classes else None
        metrics = gan.train_step(gan.backend.asarray(real), labels=labels)
        history.append({k: float(v) for k, v in metrics.items()})  # read before the next replay
    return gan, history


@pytest.mark.parametrize("layout", ["nn", "tn", "nt"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cublas_gemm_matches_cupy_matmul(layout, dtype):
    import cupy

    gemm = get_backend("cupy-graph").matmul
    rng = cupy.random.default_rng(1)
    x, w, dy = (rng.standard_normal(s, dtype=dtype) for s in ((64, 100), (100, 48), (64, 48)))
    a, b = {"nn": (x, w), "tn": (x.T, dy), "nt": (dy, w.T)}[layout]
    ours, theirs = gemm(a, b), cupy.matmul(a, b)
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-5 if dtype == "float32" else 1e-12,
                               atol=1e-5 if dtype == "float32" else 1e-12)


VARIANTS = {
    "bce": {},
    "hinge-spectral-norm": {"loss": "hinge", "d_spectral_norm": True},
    "wgan-gp-r1-n-critic": {"loss": "wgan-gp", "r1_gamma": 1.0, "n_critic": 2, "d_spectral_norm": True},
    "wgan-clipped-maxout": {"loss": "wgan", "n_critic": 2, "d_activation": "maxout", "maxout_pieces": 2},
    # class-conditional, both forms, with the penalties (the concat form's masked to the image)
    "conditional-concat-wgan-gp-r1": {"n_classes": 4, "conditioning": "concat", "loss": "wgan-gp", "r1_gamma": 1.0},
    "conditional-projection-hinge-r1": {"n_classes": 4, "conditioning": "projection", "loss": "hinge",
                                        "r1_gamma": 1.0, "d_spectral_norm": True},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_recorded_graph_equals_eager_steps_bit_for_bit(variant):
    graph_backend = get_backend("cupy-graph")
    eager_backend = replace(graph_backend, name="cupy")  # the same kernels, the same GEMM call, not recorded
    recorded, recorded_history = _train(graph_backend, **VARIANTS[variant])
    eager, eager_history = _train(eager_backend, **VARIANTS[variant])
    step = recorded._recordings[True]
    assert step.graph is not None and step.failed is None, step.failed
    assert recorded_history == eager_history
    got, want = recorded.state()[0], eager.state()[0]
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_recorded_graph_agrees_with_plain_cupy():
    recorded, _ = _train("cupy-graph")
    plain, _ = _train("cupy")
    got, want = recorded.state()[0], plain.state()[0]
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_a_step_that_cannot_be_recorded_runs_eagerly_and_says_why():
    import cupy

    from tinygan.backend.cuda import CaptureWarning, RecordedStep

    a = cupy.ones((8, 8), cupy.float32)
    step = RecordedStep(lambda x: cupy.matmul(x, a), graphs=True)  # CuPy refuses cuBLAS while recording
    x = cupy.full((8, 8), 2.0, cupy.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [to_numpy(step(x)) for _ in range(3)]
    assert any(issubclass(w.category, CaptureWarning) for w in caught)
    assert step.failed is not None
    for r in results:
        np.testing.assert_array_equal(r, np.full((8, 8), 16.0, np.float32))


def test_fit_with_a_recorded_step_logs_what_eager_training_logs():
    """The training loop sums each step's metrics: recorded steps overwrite theirs, so it must copy."""
    graph_backend = get_backend("cupy-graph")
    histories = []
    for backend in (graph_backend, replace(graph_backend, name="cupy")):
        gan = GAN(GANConfig(**CONFIG), backend=backend, seed=4)
        x = np.random.default_rng(0).uniform(0, 1, (256, 12)).astype(np.float32)
        histories.append([{k: v for k, v in r.items() if k != "steps_per_s"} for r in gan.fit(x, steps=9, log_every=3)])
    assert histories[0] == histories[1]


def _train_vae(backend, steps: int = 6) -> tuple[VAE, list[dict]]:
    config = VAEConfig(data_shape=(12,), latent_dim=4, enc_hidden=[32, 16], dec_hidden=[24], lr_decay=0.1,
                       batch_size=32)  # fmt: skip
    vae = VAE(config, backend=backend, seed=4)
    vae.set_horizon(steps)
    history = []
    for real in _batches(steps):
        metrics = vae.train_step(vae.backend.asarray((real + 1) / 2))  # images in [0, 1]
        history.append({k: float(v) for k, v in metrics.items()})
    return vae, history


def test_recorded_vae_graph_equals_eager_steps_bit_for_bit_and_plain_cupy_closely():
    graph_backend = get_backend("cupy-graph")
    recorded, recorded_history = _train_vae(graph_backend)
    eager, eager_history = _train_vae(replace(graph_backend, name="cupy"))
    plain, _ = _train_vae("cupy")
    step = recorded._recordings[True]
    assert step.graph is not None and step.failed is None, step.failed
    assert recorded_history == eager_history
    got, want, near = recorded.state()[0], eager.state()[0], plain.state()[0]
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        np.testing.assert_allclose(got[name], near[name], rtol=1e-4, atol=1e-5, err_msg=name)
