"""A training step can be recorded once and replayed: proven on the CPU, before any GPU sees it.

A CUDA graph replays the kernels of one step with the scalar arguments they had when recorded.
Two properties make that exact, and both are checked here on NumPy:

* no value reaching an array operation changes from step to step except through arrays (the
  recording backend of ``recording.py`` logs every operation with its host values; consecutive
  steps must log the same), and no step reads a value back to the host;
* a step function built once, called again on its own input buffers -- what a replay does --
  gives the same bits as ordinary steps.

On a GPU, ``tests/backend/test_cuda.py`` compares the recorded CUDA graph with the eager step.
"""

from __future__ import annotations

import numpy as np
import pytest
from recording import record, recording_backend

from tinygan import GAN, VAE, GANConfig, VAEConfig
from tinygan.backend.cuda import RecordedStep
from tinygan.engine.optim import Adam

CONFIG = dict(
    data_shape=(6,), data_kind="image", latent_dim=3, g_hidden=[8, 8], g_batchnorm=[False, True], d_hidden=[8],
    d_dropout=0.3, d_activation="maxout", maxout_pieces=2, g_ema_decay=0.9, lr_decay=0.1, pack=2, batch_size=8,
)


# The step's variants: each objective, n_critic > 1, the penalties' second-order backward, spectral norms.
VARIANTS = {
    "bce": {},
    "hinge": {"loss": "hinge"},
    "lsgan": {"loss": "lsgan"},
    "wgan-n-critic": {"loss": "wgan", "n_critic": 2},
    "wgan-gp-n-critic": {"loss": "wgan-gp", "n_critic": 2},
    "r1": {"r1_gamma": 1.0},
    "spectral-norm": {"d_spectral_norm": True},
    "spectral-norm-wgan-gp": {"d_spectral_norm": True, "loss": "wgan-gp", "r1_gamma": 0.5},
    # class-conditional, both forms: the labels are an input like the batch
    "conditional-concat": {"n_classes": 3, "conditioning": "concat"},
    "conditional-concat-r1": {"n_classes": 3, "conditioning": "concat", "r1_gamma": 1.0},
    "conditional-projection": {"n_classes": 3, "conditioning": "projection"},
    "conditional-projection-wgan-gp-n-critic": {"n_classes": 3, "conditioning": "projection", "loss": "wgan-gp",
                                                "n_critic": 2, "d_spectral_norm": True},
}


def _gan(backend="numpy", seed=3, **overrides) -> GAN:
    gan = GAN(GANConfig(**{**CONFIG, **overrides}), backend=backend, seed=seed)
    gan.set_horizon(20)
    return gan


def _batch(gan: GAN, i: int) -> np.ndarray:
    x = np.random.default_rng(i).uniform(-1, 1, (gan.config.batch_size * gan.config.n_critic, 6))
    return gan.backend.asarray(x, dtype=gan.dtype)


def _labels(gan: GAN, i: int):
    """The batch's classes for a conditional GAN (``None`` for others)."""
    if not gan.config.n_classes:
        return None
    rows = gan.config.batch_size * gan.config.n_critic
    return gan.backend.asarray(np.random.default_rng(50 + i).integers(0, gan.config.n_classes, rows))


def _logs(gan: GAN, steps: int) -> list[list[tuple]]:
    return [record(gan.train_step, _batch(gan, i), None, _labels(gan, i))[1] for i in range(steps)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_consecutive_steps_pass_the_same_host_values_to_every_operation(variant):
    _assert_steps_pass_the_same_host_values(_logs(_gan(recording_backend(), **VARIANTS[variant]), 4))


def _assert_steps_pass_the_same_host_values(logs: list) -> None:
    """Steps after the first log the same operations with the same host values, and read nothing back."""
    assert len(logs[1]) > 100, "the recording saw the step's operations"
    assert logs[1] == logs[2] == logs[3]
    reads = [entry for entry in logs[1] if entry[0].startswith("host read")]
    assert not reads, f"a step reads values back to the host: {reads}"


def test_the_recording_catches_a_step_size_passed_as_a_host_number():
    """The check can fail: Adam as often written, with Python floats that change every step."""

    class HostAdam(Adam):
        def step(self, lr=None):
            self.k = getattr(self, "k", 0) + 1
            b1, b2 = self.betas
            self.m *= b1
            self.m += (1 - b1) * self.grads
            self.v *= b2
            self.v += (1 - b2) * self.grads * self.grads
            size = self.lr / (1 - b1**self.k)  # a host number that changes from step to step
            self.params -= size * self.m / (self.xp.sqrt(self.v / (1 - b2**self.k)) + self.eps)

    gan = _gan(recording_backend())
    gan.opt_g = gan.optimizers["G"] = HostAdam(gan.G.params, gan.G.grads, 1e-3)
    logs = _logs(gan, 3)
    assert logs[1] != logs[2]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("with_z", [False, True], ids=["noise-drawn-inside", "noise-given"])
def test_a_step_built_once_and_replayed_equals_ordinary_steps(with_z, variant):
    plain, replayed = _gan(**VARIANTS[variant]), _gan(**VARIANTS[variant])
    step = RecordedStep(replayed.device_step, graphs=False, key=replayed._host_values,
                        keep=replayed._reused_buffers)
    for i in range(6):
        real = _batch(plain, i)
        rows = 8 * plain.config.n_critic
        z = np.random.default_rng(100 + i).standard_normal((rows, 3)).astype(np.float32) if with_z else None
        labels = _labels(plain, i)
        expected = plain.train_step(real, z, labels)
        got = step(real.copy(), None if z is None else z.copy(), None if labels is None else labels.copy())
        assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in expected.items()}
    arrays, _ = plain.state()
    replayed.step = plain.step  # the host count is the caller's to keep
    for name, value in replayed.state()[0].items():
        np.testing.assert_array_equal(value, arrays[name], err_msg=name)


def test_a_changed_host_value_records_the_step_again():
    gan = _gan()
    step = RecordedStep(gan.device_step, graphs=False, key=gan._host_values)
    for i in range(3):
        step(_batch(gan, i))
    first = step.recorded
    gan.config.lr_g = 5e-4  # as a resumed run with --lr-g does
    step(_batch(gan, 3))
    assert step.recorded != first and step.recorded[0][0] == 5e-4


def test_the_recording_catches_an_interpolation_weight_drawn_on_the_host():
    """The check can fail for the critic too: WGAN-GP with one ε per step drawn by the host."""
    gan = _gan(recording_backend(), loss="wgan-gp")
    host = np.random.default_rng(0)
    gan.critic._interpolates = lambda real, fake: fake + float(host.random()) * (real - fake)
    logs = _logs(gan, 3)
    assert logs[1] != logs[2]


def test_the_recording_catches_classes_read_back_to_the_host():
    """The check can fail for a conditional step: a one-hot built on the host from the batch's labels."""
    gan = _gan(recording_backend(), n_classes=3, conditioning="concat")
    eye = np.eye(3, dtype=np.float32)
    gan.conditioning.one_hot = lambda labels, dtype: gan.xp.asarray(eye[[labels.item(j) for j in range(len(labels))]])
    logs = _logs(gan, 3)
    assert any(entry[0].startswith("host read") for entry in logs[1])


# -- the VAE step: the same two properties --------------------------------------------------------

VAE_CONFIG = dict(data_shape=(6,), latent_dim=3, enc_hidden=[8, 8], dec_hidden=[8], lr_decay=0.1, batch_size=8)


def _vae(backend="numpy", seed=3) -> VAE:
    vae = VAE(VAEConfig(**VAE_CONFIG), backend=backend, seed=seed)
    vae.set_horizon(20)
    return vae


def _images(vae: VAE, i: int):
    return vae.backend.asarray(np.random.default_rng(i).random((8, 6)), dtype=vae.dtype)


def test_consecutive_vae_steps_pass_the_same_host_values_to_every_operation():
    vae = _vae(recording_backend())
    _assert_steps_pass_the_same_host_values([record(vae.train_step, _images(vae, i))[1] for i in range(4)])


def test_the_recording_catches_a_vae_learning_rate_decayed_on_the_host():
    """The check can fail: a schedule computed from the host step count passes a new number each step."""

    class HostSchedule(VAE):
        def learning_rate(self):
            c = self.config
            return c.lr * c.lr_decay ** (self.step / 20)

    vae = HostSchedule(VAEConfig(**VAE_CONFIG), backend=recording_backend(), seed=3)
    logs = [record(vae.train_step, _images(vae, i))[1] for i in range(3)]
    assert logs[1] != logs[2]


@pytest.mark.parametrize("with_eps", [False, True], ids=["noise-drawn-inside", "noise-given"])
def test_a_vae_step_built_once_and_replayed_equals_ordinary_steps(with_eps):
    plain, replayed = _vae(), _vae()
    step = RecordedStep(replayed.device_step, graphs=False, key=replayed._host_values,
                        keep=replayed._reused_buffers)
    for i in range(6):
        x = _images(plain, i)
        eps = np.random.default_rng(100 + i).standard_normal((8, 3)).astype(np.float32) if with_eps else None
        expected = plain.train_step(x, eps)
        got = step(x.copy(), None if eps is None else eps.copy())
        assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in expected.items()}
    replayed.step = plain.step
    arrays = plain.state()[0]
    for name, value in replayed.state()[0].items():
        np.testing.assert_array_equal(value, arrays[name], err_msg=name)
    assert replayed._reused_buffers(), "the latent's and the loss's buffers are kept alive with the recording"
