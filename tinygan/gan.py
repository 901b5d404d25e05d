"""The GAN model: two networks, their optimizers, one training step, sampling, and its state.

Objective (Goodfellow et al., 2014). The discriminator D ascends

    V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))],

i.e. it minimises the binary cross-entropy of "real" on data and "fake" on
generated samples. The generator would descend the same V, but
``log(1 − D(G(z)))`` is flat exactly when D confidently rejects G's samples
(early in training), so G instead minimises the non-saturating loss
``−E_z[log D(G(z))]``: same fixed point, strong gradients when G is bad.
D outputs a logit ``a``; ``D(x) = σ(a)`` is folded into the stable
BCE-with-logits loss.

Everything in a step that changes from step to step -- Adam's bias corrections, the decayed
learning rates, the weight of the moving average -- is computed on the device from step
counters kept there, so the step can be recorded once and replayed (a CUDA graph on a GPU).
This module is the model only: the training loop and the data position live in
:mod:`tinygan.trainer`, checkpoint files in :mod:`tinygan.checkpoint`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .averaging import AveragedNetwork
from .backend import Array, Backend, get_backend, to_numpy
from .config import GANConfig, preset_config
from .errors import DivergenceError
from .layers import Dense, Layer, layer_from_spec, sigmoid
from .losses import bce_with_logits
from .network import Sequential, count_params, mlp
from .optim import Adam


def seeded_latents(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """``n`` latent vectors from ``seed``, drawn on the host so that every backend sees the same ones.

    Drawn row by row from one stream: the first ``k`` rows do not depend on ``n``.
    """
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


def decayed(lr: float, decay: float, done: Any, total: Any) -> Any:
    """``lr · decay^(done / total)``: the learning rate after ``done`` of ``total`` steps.

    Works on host numbers and on 0-d device arrays alike.
    """
    return lr * decay ** (done / total)


class GAN:
    """A generator ``G: z → x`` and a discriminator ``D: x → logit``, trained adversarially.

    Build from a preset with :meth:`from_preset`, or from a :class:`GANConfig`, optionally with
    explicit layer lists: ``GAN(config, generator=[Dense(…), …], discriminator=[…])`` (the
    generator maps ``latent_dim → data_dim`` in the range of ``config.g_output``; the
    discriminator maps ``pack·data_dim → 1`` logit). ``backend`` is ``"numpy"``, ``"cupy"`` or
    ``None`` (``$TINYGAN_BACKEND``); ``seed`` fixes initialisation, noise and data order.
    """

    kind = "gan"

    def __init__(
        self,
        config: GANConfig,
        backend: str | Backend | None = None,
        seed: int = 0,
        generator: list[Layer] | None = None,
        discriminator: list[Layer] | None = None,
    ) -> None:
        self.config = c = config
        self.backend = get_backend(backend)
        self.xp = xp = self.backend.xp
        self.seed = seed
        self.rng = self.backend.rng(seed)
        self.sample_rng = self.backend.rng(seed + 7919)  # its own stream: sampling never shifts training
        g_layers = generator or mlp(
            [c.latent_dim, *c.g_hidden, c.data_dim], c.g_activation, c.g_output, c.g_batchnorm,
            leak=c.leak, bn_momentum=c.bn_momentum, bn_eps=c.bn_eps, pieces=c.maxout_pieces,
        )
        d_layers = discriminator or mlp(
            [c.data_dim * c.pack, *c.d_hidden, 1], c.d_activation, None, c.d_batchnorm, c.d_dropout,
            leak=c.leak, bn_momentum=c.bn_momentum, bn_eps=c.bn_eps, pieces=c.maxout_pieces,
        )
        _check_io(g_layers, c.latent_dim, c.data_dim, "generator")
        _check_io(d_layers, c.data_dim * c.pack, 1, "discriminator")
        self.G = Sequential(g_layers, self.backend, c.dtype, rng=self.rng)
        self.D = Sequential(d_layers, self.backend, c.dtype, rng=self.rng)
        self.opt_g = Adam(self.G.params, self.G.grads, c.lr_g, c.betas)
        self.opt_d = Adam(self.D.params, self.D.grads, c.lr_d, c.betas)
        self.dtype = self.backend.dtype(c.dtype)
        # G with averaged weights, sampled from when g_ema > 0
        self.G_avg = AveragedNetwork(self.G, c.g_ema, self.backend, c.dtype, seed) if c.g_ema else None
        self.dataset_name: str | None = None  # what it was trained on, kept in checkpoints for `eval`
        self.step = 0  # training steps taken, on the host: for bookkeeping, never passed to a kernel
        self.steps_done = xp.zeros((), dtype=xp.float64)  # the same count, on the device
        self.horizon = xp.ones((), dtype=xp.float64)  # steps in the run, for the learning-rate decay

    @classmethod
    def from_preset(
        cls,
        name: str = "default",
        data_shape: tuple[int, ...] = (28, 28),
        backend: str | Backend | None = None,
        seed: int = 0,
        data_kind: str | None = None,
        **overrides: Any,
    ) -> GAN:
        """A GAN from preset ``name`` (default, reference, article, points) for samples of ``data_shape``.

        ``data_kind`` defaults to ``"points"`` for 1-D samples of size 2 and ``"image"`` otherwise;
        ``overrides`` set any :class:`GANConfig` field.
        """
        if data_kind is None:
            data_kind = "points" if tuple(data_shape) == (2,) else "image"
        return cls(preset_config(name, tuple(data_shape), data_kind, **overrides), backend, seed)

    @property
    def n_params(self) -> int:
        """Trainable values of G and D together."""
        return self.G.n_params + self.D.n_params

    # -- the training step ------------------------------------------------------------------

    def noise(self, n: int) -> Array:
        """Latent vectors ``z ~ N(0, I)`` of shape ``(n, latent_dim)``, drawn on the device."""
        return self.rng.normal((n, self.config.latent_dim), self.dtype)

    def _pack(self, x: Array) -> Array:
        n, m = x.shape[0], self.config.pack
        return x if m == 1 else self.xp.reshape(x, (n // m, m * x.shape[1]))

    def set_horizon(self, total_steps: int) -> None:
        """The run's length in steps, over which ``config.lr_decay`` decays the learning rates."""
        self.horizon[...] = max(int(total_steps), 1)

    def learning_rates(self) -> tuple[Any, Any]:
        """(lr of G, lr of D) for the next step: ``config.lr_*`` decayed over the run (device scalars)."""
        c = self.config
        if c.lr_decay == 1.0:
            return c.lr_g, c.lr_d
        return (decayed(c.lr_g, c.lr_decay, self.steps_done, self.horizon),
                decayed(c.lr_d, c.lr_decay, self.steps_done, self.horizon))

    def train_step(self, real: Array, z: Array | None = None) -> dict[str, Array]:
        """One D update on ``real`` and ``G(z)``, then one G update; returns device-side metrics.

        ``real: (B, data_dim)`` in model space (see :meth:`to_model_space`), ``z: (B, latent_dim)``
        (drawn from the model's generator when omitted). Metrics are 0-d arrays (read them at log
        intervals, not every step, on a GPU): ``d_loss = −V`` on this batch, ``g_loss``
        (non-saturating), ``d_real`` = mean D(x), ``d_fake`` = mean D(G(z)) before the D update.
        """
        G, D, xp = self.G, self.D, self.xp
        z = self.noise(real.shape[0]) if z is None else z
        lr_g, lr_d = self.learning_rates()
        G.train()
        D.train()
        fake = G.forward(z)

        # D ascends V: minimise BCE(D(x), real_label) + BCE(D(G(z)), 0). G's output is a constant here.
        D.zero_grad()
        logit_real = D.forward(self._pack(real))
        loss_real, grad = bce_with_logits(logit_real, self.config.real_label)
        D.backward(grad, need_dx=False)
        logit_fake = D.forward(self._pack(fake))
        loss_fake, grad = bce_with_logits(logit_fake, 0.0)
        D.backward(grad, need_dx=False)
        self.opt_d.step(lr_d)

        # G descends −log D(G(z)) through the updated D; D's gradients are not needed, so not computed.
        G.zero_grad()
        loss_g, grad = bce_with_logits(D.forward(self._pack(fake)), 1.0)
        grad_fake = D.backward(grad, need_dparams=False)
        G.backward(xp.reshape(grad_fake, fake.shape), need_dx=False)
        self.opt_g.step(lr_g)
        self.steps_done += 1
        self.step += 1
        if self.G_avg is not None:
            self.G_avg.update(self.steps_done)

        return {
            "d_loss": loss_real + loss_fake,
            "g_loss": loss_g,
            "d_real": xp.mean(sigmoid(logit_real, xp)),
            "d_fake": xp.mean(sigmoid(logit_fake, xp)),
        }

    def check_finite(self) -> None:
        """Raise :class:`~tinygan.errors.DivergenceError` if any parameter is NaN or infinite."""
        for name, net in (("generator", self.G), ("discriminator", self.D)):
            if not bool(self.xp.all(self.xp.isfinite(net.params))):
                raise DivergenceError(f"training diverged at step {self.step}: {name} parameters are not finite")

    # -- data space <-> model space -----------------------------------------------------------

    def to_model_space(self, x: Array) -> Array:
        """Map data (images in [0, 1], or raw points) to the generator's output range."""
        return 2.0 * x - 1.0 if self.config.g_output == "tanh" else x

    def from_model_space(self, y: Array) -> Array:
        """Inverse of :meth:`to_model_space`; images come back clipped to [0, 1]."""
        if self.config.data_kind != "image":
            return y
        y = (y + 1.0) * 0.5 if self.config.g_output == "tanh" else y
        return self.xp.clip(y, 0.0, 1.0)

    # -- using a trained model ---------------------------------------------------------------

    def sample(self, n: int, z: np.ndarray | None = None) -> np.ndarray:
        """``n`` generated samples as a host float32 array of shape ``(n, *data_shape)``.

        Images are in [0, 1]; points are in the data's own units. Drawn from the averaged
        generator when ``g_ema > 0``, in evaluation mode (BatchNorm's running statistics).
        ``z`` optionally fixes the latents; otherwise they come from the sampling generator,
        whose draws never shift the training noise.
        """
        if n < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}")
        if z is None:
            zz = self.sample_rng.normal((n, self.config.latent_dim), self.dtype)
        else:
            zz = self.backend.asarray(z, dtype=self.dtype)
        if self.G_avg is None:
            generator = self.G
        else:
            generator = self.G_avg.network(self.step, self.config.latent_dim, self.dtype)
        generator.eval()
        y = self.from_model_space(generator.forward(zz))
        generator.train()
        return to_numpy(y).astype(np.float32).reshape((n, *self.config.data_shape))

    # -- state: what a checkpoint holds of the model -----------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, metadata) from which :meth:`from_state` rebuilds this model, training state included.

        Raises :class:`~tinygan.errors.DivergenceError` if a value is not finite: a diverged
        model must never replace the last good checkpoint.
        """
        arrays = {f"G/{k}": v for k, v in self.G.state_dict().items()}
        arrays.update({f"D/{k}": v for k, v in self.D.state_dict().items()})
        arrays.update({f"opt_g/{k}": v for k, v in self.opt_g.state_dict().items()})
        arrays.update({f"opt_d/{k}": v for k, v in self.opt_d.state_dict().items()})
        if self.G_avg is not None:
            arrays.update({f"G_avg/{k}": v for k, v in self.G_avg.state_dict().items()})
        for name, a in arrays.items():
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise DivergenceError(f"training diverged at step {self.step}: {name} is not finite")
        meta = {
            "model": self.kind,
            "config": self.config.to_json(),
            "generator": [layer.spec() for layer in self.G.layers],
            "discriminator": [layer.spec() for layer in self.D.layers],
            "seed": self.seed,
            "step": self.step,
            "dataset": self.dataset_name,
            "backend": self.backend.name,
            "rng": self.rng.get_state(),
        }
        return arrays, meta

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], backend: str | Backend | None = None
    ) -> GAN:
        """Rebuild a model from :meth:`state` output; raises ``ValueError`` saying what does not fit."""
        try:
            config = GANConfig.from_json(meta.get("config"))
            g_layers = [layer_from_spec(spec) for spec in _specs(meta, "generator")]
            d_layers = [layer_from_spec(spec) for spec in _specs(meta, "discriminator")]
            seed = meta.get("seed", 0)
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise ValueError(f"seed {seed!r} is not a non-negative integer")
        except Exception as e:  # the description comes from a file: any failure means it is unusable
            raise ValueError(f"invalid model configuration ({e})") from None
        for prefix, layers in (("G", g_layers), ("D", d_layers)):  # before allocating what the file asks for
            wanted = count_params(layers)
            held = sum(a.size for k, a in arrays.items() if k.startswith(prefix + "/"))
            if wanted > held:
                raise ValueError(
                    f"does not fit this model ({prefix} needs {wanted} parameters, the file holds {held} values for it)"
                )
        try:
            model = cls(config, backend, seed, g_layers, d_layers)
        except (TypeError, ValueError) as e:
            raise ValueError(f"invalid model configuration ({e})") from None
        model.restore(arrays, meta)
        return model

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Load networks, optimizers, step and random state from :meth:`state` output into this model.

        Raises ``ValueError`` saying what is wrong: an invalid training state, or arrays that do
        not fit this model.
        """
        step, rng = meta.get("step", 0), meta.get("rng", {})
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"invalid training state (step {step!r} is not a count)")
        if not isinstance(rng, dict):
            raise ValueError("invalid training state (random-generator state is not a mapping)")
        odd = [k for k, v in arrays.items() if np.asarray(v).dtype.kind not in "biuf"]
        if odd:
            raise ValueError(f"array {odd[0]!r} is not numeric")
        parts = {"G": self.G.load_state_dict, "D": self.D.load_state_dict,
                 "opt_g": self.opt_g.load_state_dict, "opt_d": self.opt_d.load_state_dict}
        if self.G_avg is not None:
            parts["G_avg"] = self.G_avg.load_state_dict
        try:
            for prefix, load in parts.items():
                load({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix + "/")})
        except (KeyError, ValueError, TypeError, IndexError, OverflowError) as e:
            raise ValueError(f"does not fit this model ({e})") from None
        try:
            self.rng.set_state(rng, fallback_seed=self.seed * 1_000_003 + step)
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise ValueError(f"invalid random-generator state ({e})") from None
        self.step = step
        self.steps_done[...] = step
        name = meta.get("dataset")
        self.dataset_name = name if isinstance(name, str) else None


def _check_io(layers: list[Layer], n_in: int, n_out: int, name: str) -> None:
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    if not dense or dense[0].n_in != n_in or dense[-1].n_out != n_out:
        got = f"{dense[0].n_in} → {dense[-1].n_out}" if dense else "no Dense layer"
        raise ValueError(f"{name} must map {n_in} → {n_out} features, got {got}")


def _specs(meta: dict[str, Any], name: str) -> list[dict[str, Any]]:
    specs = meta.get(name)
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ValueError(f"{name} description is not a list of layers")
    return specs
