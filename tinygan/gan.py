"""The GAN model: two networks, their optimizers, one training step, sampling, and its state.

Objective (Goodfellow et al., 2014). The discriminator D ascends

    V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))],

i.e. it minimises the binary cross-entropy of "real" on data and "fake" on
generated samples. The generator would descend the same V, but
``log(1 − D(G(z)))`` is flat exactly when D confidently rejects G's samples
(early in training), so G instead minimises the non-saturating loss
``−E_z[log D(G(z))]``: same fixed point, strong gradients when G is bad.
D outputs a logit ``a``; ``D(x) = σ(a)`` is folded into the stable
BCE-with-logits loss. That is the default objective (``loss="bce"``); hinge, least squares and
Wasserstein losses, gradient penalties, weight clipping and spectral normalisation are the
choices of :mod:`tinygan.objectives` and :mod:`tinygan.critic`.

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
from .backend import Array, Backend, to_numpy
from .config import GANConfig, preset_config
from .critic import Critic
from .layers import Layer, sigmoid
from .model import Model, check_io, decayed, seeded_latents
from .network import mlp
from .objectives import g_loss
from .optim import Adam
from .spectral import spectral_normalised

__all__ = ["GAN", "decayed", "seeded_latents"]


class GAN(Model):
    """A generator ``G: z → x`` and a discriminator ``D: x → logit``, trained adversarially.

    Build from a preset with :meth:`from_preset`, or from a :class:`GANConfig`, optionally with
    explicit layer lists: ``GAN(config, generator=[Dense(…), …], discriminator=[…])`` (the
    generator maps ``latent_dim → data_dim`` in the range of ``config.g_output``; the
    discriminator maps ``pack·data_dim → 1`` logit). ``backend`` is ``"numpy"``, ``"cupy"`` or
    ``None`` (``$TINYGAN_BACKEND``); ``seed`` fixes initialisation, noise and data order.
    """

    kind = "gan"
    config_class = GANConfig
    NETWORKS = {"G": "generator", "D": "discriminator"}
    PROGRESS = "D {d_loss:.3f} G {g_loss:.3f} D(x) {d_real:.2f} D(G(z)) {d_fake:.2f}"

    def __init__(
        self,
        config: GANConfig,
        backend: str | Backend | None = None,
        seed: int = 0,
        generator: list[Layer] | None = None,
        discriminator: list[Layer] | None = None,
    ) -> None:
        super().__init__(config, backend, seed)
        c = config
        g_layers = generator or mlp(
            [c.latent_dim, *c.g_hidden, c.data_dim], c.g_activation, c.g_output, c.g_batchnorm,
            leak=c.leak, bn_momentum=c.bn_momentum, bn_eps=c.bn_eps, pieces=c.maxout_pieces,
        )
        d_layers = discriminator or mlp(
            [c.data_dim * c.pack, *c.d_hidden, 1], c.d_activation, None, c.d_batchnorm, c.d_dropout,
            leak=c.leak, bn_momentum=c.bn_momentum, bn_eps=c.bn_eps, pieces=c.maxout_pieces,
        )
        if c.d_spectral_norm and discriminator is None:
            d_layers = spectral_normalised(d_layers)
        check_io(g_layers, c.latent_dim, c.data_dim, "generator")
        check_io(d_layers, c.data_dim * c.pack, 1, "discriminator")
        self.G = self.nets["G"] = self._network(g_layers)
        self.D = self.nets["D"] = self._network(d_layers)
        self.opt_g = self.optimizers["G"] = Adam(self.G.params, self.G.grads, c.lr_g, c.betas)
        self.opt_d = self.optimizers["D"] = Adam(self.D.params, self.D.grads, c.lr_d, c.betas)
        self.critic = Critic(c, self.D, self.rng)
        self.generator_loss = g_loss(c.loss)
        # G with averaged weights, sampled from when g_ema_decay > 0
        self.G_avg = None
        if c.g_ema_decay:
            self.G_avg = self.averaged["G"] = AveragedNetwork(self.G, c.g_ema_decay, self.backend, c.dtype, seed)

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

    # -- the training step ------------------------------------------------------------------

    def noise(self, n: int) -> Array:
        """Latent vectors ``z ~ N(0, I)`` of shape ``(n, latent_dim)``, drawn on the device."""
        return self.rng.normal((n, self.config.latent_dim), self.dtype)

    def _pack(self, x: Array) -> Array:
        n, m = x.shape[0], self.config.pack
        return x if m == 1 else self.xp.reshape(x, (n // m, m * x.shape[1]))

    def learning_rates(self) -> tuple[Any, Any]:
        """(lr of G, lr of D) for the next step: ``config.lr_*`` decayed over the run (device scalars)."""
        c = self.config
        if c.lr_decay == 1.0:
            return c.lr_g, c.lr_d
        return (decayed(c.lr_g, c.lr_decay, self.steps_done, self.horizon),
                decayed(c.lr_d, c.lr_decay, self.steps_done, self.horizon))

    def train_step(self, real: Array, z: Array | None = None) -> dict[str, Array]:
        """``n_critic`` D updates on ``real`` and ``G(z)``, then one G update; returns device-side metrics.

        ``real: (n_critic·B, data_dim)`` in model space (see :meth:`to_model_space`), one batch of
        ``B`` rows per D update; ``z: (n_critic·B, latent_dim)`` (drawn from the model's generator
        when omitted). ``step`` counts G updates. Metrics are 0-d arrays of the last D update
        (read them at log intervals, not every step, on a GPU): ``d_loss`` (penalty included),
        ``g_loss``, ``d_real`` = mean D(x), ``d_fake`` = mean D(G(z)) before the D update (D is
        the sigmoid of its output for ``bce``, the output itself otherwise), and ``d_penalty``
        when D's loss holds a gradient penalty. On ``cupy-graph`` the step is recorded once as a
        CUDA graph and replayed; its metrics are then the same arrays each step, overwritten by the next.
        """
        if self.backend.records_steps:
            metrics = self._recorded(z is None)(real, z)
        else:
            metrics = self.device_step(real, z)
        self.step += 1
        return metrics

    def device_step(self, real: Array, z: Array | None = None) -> dict[str, Array]:
        """The device work of :meth:`train_step`, without the host's step count: what a CUDA graph records."""
        xp, k = self.xp, self.config.n_critic
        b = real.shape[0] // k
        lr_g, lr_d = self.learning_rates()
        self.G.train()
        self.D.train()
        for i in range(k):  # a fixed count: the same operations every step
            z_i = self.noise(b) if z is None else z[i * b : (i + 1) * b, ...]
            fake = self.G.forward(z_i)
            self.critic.begin_update()
            batch = real[i * b : (i + 1) * b, ...]
            d_loss, logit_real, logit_fake, penalty = self._discriminator_gradients(batch, fake)
            self.opt_d.step(lr_d)
            self.critic.end_update()
        g_loss = self.generator_gradients(fake)  # the last fake: G's latest forward
        self.opt_g.step(lr_g)
        self._count_device_step()
        score = (lambda a: sigmoid(a, xp)) if self.config.loss == "bce" else (lambda a: a)
        metrics = {"d_loss": d_loss, "g_loss": g_loss,
                   "d_real": xp.mean(score(logit_real)), "d_fake": xp.mean(score(logit_fake))}
        return metrics if penalty is None else {**metrics, "d_penalty": penalty}

    def _host_values(self) -> tuple:
        c = self.config  # the values a live model's config may change between steps (a resume does)
        return (c.lr_g, c.lr_d, c.lr_decay, c.real_label, c.betas, c.g_ema_decay, c.gp_weight, c.r1_gamma, c.wgan_clip)

    def _reused_buffers(self) -> list:
        return super()._reused_buffers() + self.critic.buffers()

    def _discriminator_gradients(self, real: Array, fake: Array) -> tuple[Array, Array, Array, Array | None]:
        """D's gradients of its loss on ``real`` and ``fake`` (a constant here): see :class:`~tinygan.critic.Critic`.

        Returns the loss, both outputs and the penalty (``None`` without one).
        """
        return self.critic.gradients(self._pack(real), self._pack(fake))

    def generator_gradients(self, fake: Array) -> Array:
        """G's gradients of its loss (``−log D(G(z))`` for bce) for ``fake = G.forward(z)`` (the latest G forward).

        Returns the loss. The gradient flows through D (in its current state) to ``fake`` and on
        through G; D's own gradients are not needed, so they are not computed.
        """
        self.G.start_gradients()
        loss, grad = self.generator_loss(self.D.forward(self._pack(fake)))
        grad_fake = self.D.backward(grad, need_dparams=False)
        self.G.backward(self.xp.reshape(grad_fake, fake.shape), need_dx=False)
        return loss

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
        generator when ``g_ema_decay > 0``, in evaluation mode (BatchNorm's running statistics).
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
