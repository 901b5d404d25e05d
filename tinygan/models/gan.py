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
choices of :mod:`tinygan.engine.objectives` and :mod:`tinygan.models.critic`.

Everything in a step that changes from step to step -- Adam's bias corrections, the decayed
learning rates, the weight of the moving average -- is computed on the device from step
counters kept there, so the step can be recorded once and replayed (a CUDA graph on a GPU).
This module is the model only: the training loop and the data position live in
:mod:`tinygan.training.trainer`, checkpoint files in :mod:`tinygan.io.checkpoint`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Array, Backend, to_numpy
from ..engine.layers import Layer, sigmoid
from ..engine.objectives import g_loss
from ..engine.optim import Adam
from ..engine.spectral import spectral_normalised
from .architectures import discriminator_layers, generator_layers
from .arguments import count, latents
from .averaging import AveragedNetwork
from .classes import sample_labels
from .conditioning import Conditioning, check_discriminator, class_names, input_sizes, with_projection_head
from .config import GANConfig
from .critic import Critic
from .model import Model, check_io, decayed

__all__ = ["GANModel"]


class GANModel(Model):
    """A generator ``G: z → x`` and a discriminator ``D: x → logit``, trained adversarially.

    Build from a preset with :meth:`from_preset`, or from a :class:`GANConfig`, optionally with
    explicit layer lists: ``GAN(config, generator=[Dense(…), …], discriminator=[…])`` (the
    generator maps ``latent_dim → data_dim`` in the range of ``config.g_output``; the
    discriminator maps ``pack·data_dim → 1`` logit). ``backend`` is ``"numpy"``, ``"cupy"`` or
    ``None`` (``$TINYGAN_BACKEND``); ``seed`` fixes initialisation, noise and data order.

    With ``config.n_classes = K > 0`` the GAN is class-conditional (:mod:`tinygan.models.conditioning`):
    G maps ``latent_dim + K`` inputs (z and the class's one-hot), and D takes ``pack·(data_dim + K)``
    inputs (concat form) or ends in a ``ProjectionHead(·, K)`` (projection form).
    """

    kind = "gan"
    config_class = GANConfig
    NETWORKS = {"G": "generator", "D": "discriminator"}
    PROGRESS = "D {d_loss:.3f} G {g_loss:.3f} D(x) {d_real:.2f} D(G(z)) {d_fake:.2f}"
    PARAM_COPIES = 6  # and G's average, with its buffer
    SIZE_FIELDS = ("n_classes", "latent_dim", "g_hidden", "d_hidden", "pack", "maxout_pieces", "batch_size")

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
        g_in, d_in = input_sizes(c)  # the class's one-hot joins G's input (and D's, in the concat form)
        g_layers = generator or generator_layers(c, g_in)
        d_layers = discriminator or with_projection_head(discriminator_layers(c, d_in), c)
        if c.d_spectral_norm and discriminator is None:
            d_layers = spectral_normalised(d_layers)
        check_io(g_layers, g_in, c.data_dim, "generator")
        check_discriminator(d_layers, d_in, c)
        self.check_memory([g_layers, d_layers])
        self.G = self.nets["G"] = self._network(g_layers)
        self.D = self.nets["D"] = self._network(d_layers)
        self.opt_g = self.optimizers["G"] = Adam(self.G.params, self.G.grads, c.lr_g, c.betas)
        self.opt_d = self.optimizers["D"] = Adam(self.D.params, self.D.grads, c.lr_d, c.betas)
        self.conditioning = Conditioning(c, self.D, self.backend) if c.n_classes else None
        mask = None if self.conditioning is None else self.conditioning.penalty_mask()
        self.critic = Critic(c, self.D, self.rng, mask)
        self.generator_loss = g_loss(c.loss)
        # G with averaged weights, sampled from when g_ema_decay > 0
        self.G_avg = None
        if c.g_ema_decay:
            self.G_avg = self.averaged["G"] = AveragedNetwork(self.G, c.g_ema_decay, self.backend, c.dtype, seed)

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

    def train_step(self, real: Array, z: Array | None = None, labels: Array | None = None) -> dict[str, Array]:
        """``n_critic`` D updates on ``real`` and ``G(z)``, then one G update; returns device-side metrics.

        ``real: (n_critic·B, data_dim)`` in model space (see :meth:`to_model_space`), one batch of ``B``
        rows per D update; ``z: (n_critic·B, latent_dim)`` (drawn from the model's generator when
        omitted); ``labels: (n_critic·B,)`` int64, the classes of ``real`` (a conditional GAN only),
        which G's samples of the step are asked for too. ``step`` counts G updates. Metrics are 0-d
        arrays of the last D update (read them at log intervals, not every step, on a GPU): ``d_loss``
        (penalty included), ``g_loss``, ``d_real`` = mean D(x), ``d_fake`` = mean D(G(z)) before the D
        update (D is the sigmoid of its output for ``bce``, the output itself otherwise), and
        ``d_penalty`` when D's loss holds a gradient penalty. On ``cupy-graph`` the step is recorded
        once as a CUDA graph and replayed; its metrics are then the same arrays each step, overwritten
        by the next.
        """
        if self.backend.records_steps:
            metrics = self._recorded(z is None)(real, z, labels)
        else:
            metrics = self.device_step(real, z, labels)
        self.step += 1
        return metrics

    def device_step(self, real: Array, z: Array | None = None, labels: Array | None = None) -> dict[str, Array]:
        """The device work of :meth:`train_step`, without the host's step count: what a CUDA graph records."""
        xp, k = self.xp, self.config.n_critic
        if (labels is None) != (self.conditioning is None):
            raise ValueError("labels: a conditional GAN's step takes the classes of its batch, an unconditional "
                             f"GAN's none (n_classes = {self.config.n_classes})")
        b = real.shape[0] // k
        lr_g, lr_d = self.learning_rates()
        self.G.train()
        self.D.train()
        for i in range(k):  # a fixed count: the same operations every step
            z_i = self.noise(b) if z is None else z[i * b : (i + 1) * b, ...]
            y = None if labels is None else labels[i * b : (i + 1) * b]
            fake = self.G.forward(self._generator_input(z_i, y))
            self.critic.begin_update()
            batch = real[i * b : (i + 1) * b, ...]
            d_loss, logit_real, logit_fake, penalty = self._discriminator_gradients(batch, fake, y)
            self.opt_d.step(lr_d)
            self.critic.end_update()
        g_loss = self.generator_gradients(fake, y)  # the last fake: G's latest forward
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

    def _generator_input(self, z: Array, labels: Array | None) -> Array:
        return z if labels is None else self.conditioning.generator_input(z, labels)

    def _discriminator_input(self, x: Array, labels: Array | None) -> Array:
        """What D judges: ``x`` packed, with its classes for a conditional D."""
        return self._pack(x if labels is None else self.conditioning.discriminator_input(x, labels))

    def _discriminator_gradients(
        self, real: Array, fake: Array, labels: Array | None = None
    ) -> tuple[Array, Array, Array, Array | None]:
        """D's gradients of its loss on ``real`` and ``fake`` (a constant here), both of classes ``labels``
        for a conditional GAN: see :class:`~tinygan.models.critic.Critic`.

        Returns the loss, both outputs and the penalty (``None`` without one).
        """
        return self.critic.gradients(self._discriminator_input(real, labels), self._discriminator_input(fake, labels))

    def generator_gradients(self, fake: Array, labels: Array | None = None) -> Array:
        """G's gradients of its loss (``−log D(G(z))`` for bce) for ``fake = G.forward(z)`` (the latest G forward),
        judged as samples of classes ``labels`` for a conditional GAN.

        Returns the loss. The gradient flows through D (in its current state) to ``fake`` and on
        through G; D's own gradients are not needed, so they are not computed.
        """
        self.G.start_gradients()
        loss, grad = self.generator_loss(self.D.forward(self._discriminator_input(fake, labels)))
        grad_input = self.D.backward(grad, need_dparams=False)
        if labels is None:
            grad_fake = self.xp.reshape(grad_input, fake.shape)
        else:  # per sample, then without the one-hot's columns (concat form)
            grad_fake = self.conditioning.image_gradient(self.xp.reshape(grad_input, (fake.shape[0], -1)))
        self.G.backward(grad_fake, need_dx=False)
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

    def sample(self, n: int, z: np.ndarray | None = None, labels: Any = None) -> np.ndarray:
        """``n`` generated samples as a host float32 array of shape ``(n, *data_shape)``.

        Images are in [0, 1]; points are in the data's own units. Drawn from the averaged
        generator when ``g_ema_decay > 0``, in evaluation mode (BatchNorm's running statistics).
        ``z`` optionally fixes the latents; otherwise they come from the sampling generator,
        whose draws never shift the training noise. A conditional GAN draws ``labels``: one class
        (a name such as ``"sneaker"`` or a number) for all ``n``, or one per sample; by default
        the samples are spread evenly over the classes, class by class. An unconditional GAN
        asked for classes raises ``ValueError``.
        """
        n = count(n, "number of samples")
        self.check_rows(n, f"sample({n})", ("G",), self.config.data_dim)
        classes = self._sample_labels(n, labels)
        if z is None:
            zz = self.sample_rng.normal((n, self.config.latent_dim), self.dtype)
        else:
            zz = self.backend.asarray(latents(z, n, self.config.latent_dim), dtype=self.dtype)
        if self.G_avg is None:
            generator = self.G
        else:
            spread = None if self.conditioning is None else self.conditioning.spread_input
            generator = self.G_avg.network(self.step, self.config.latent_dim, self.dtype, spread)
        generator.eval()
        y = self.from_model_space(generator.forward(self._generator_input(zz, classes)))
        generator.train()
        return to_numpy(y).astype(np.float32).reshape((n, *self.config.data_shape))

    def _sample_labels(self, n: int, labels: Any) -> Array | None:
        """The classes of ``n`` samples on the device (see :meth:`sample`); ``None`` for an unconditional GAN."""
        if self.conditioning is None:
            if labels is not None:
                raise ValueError("labels: this GAN is unconditional (n_classes = 0, trained without classes), so it "
                                 "cannot generate a chosen class; train a conditional one (n_classes > 0)")
            return None
        return self.backend.asarray(sample_labels(n, labels, class_names(self.config)))
