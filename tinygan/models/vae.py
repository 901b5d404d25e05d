"""The VAE model: an encoder, a decoder, their optimizers, one training step, sampling, and its state.

Objective (Kingma & Welling, 2014): maximise the evidence lower bound, i.e. minimise per sample

    −ELBO(x) = E_q(z|x)[−log p(x|z)] + KL(q(z|x) ‖ N(0, I)),

with ``q(z|x) = N(μ(x), diag σ²(x))`` from the encoder and ``p(x|z)`` Bernoulli pixels with
logits from the decoder (images in [0, 1]) or a Gaussian of fixed std ``x_std`` (2-D points).
The expectation is estimated with one reparameterised sample ``z = μ + σ·ε`` per image, which
makes the whole loss differentiable in the encoder's output; the KL term is in closed form.
The two pieces of math this adds to the engine -- and their backward passes -- are in
:mod:`tinygan.engine.elbo`. Everything that changes from step to step (Adam's bias corrections, a
decayed learning rate, ε) lives on the device, so the step can be recorded as a CUDA graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Array, Backend, Workspace, to_numpy, unit_floats
from ..engine.elbo import GaussianLatent, bernoulli_nll, gaussian_nll
from ..engine.layers import Layer, sigmoid
from ..engine.optim import Adam
from ..io.errors import MemoryRequestError
from ..io.memory import check_fits
from .architectures import decoder_layers, encoder_layers
from .arguments import count, latents
from .model import Model, activation_values, check_io, decayed
from .vae_config import VAEConfig

__all__ = ["VAEModel"]


class VAEModel(Model):
    """An encoder ``x → [μ, log σ²]`` and a decoder ``z → x``, trained together on −ELBO.

    Build from a preset with :meth:`from_preset`, or from a :class:`VAEConfig`, optionally with
    explicit layer lists: ``VAE(config, encoder=[Dense(…), …], decoder=[…])`` (the encoder maps
    ``data_dim → 2·latent_dim``, the decoder ``latent_dim → data_dim`` logits, or point means).
    ``backend`` is ``"numpy"``, ``"cupy"`` or ``None`` (``$TINYGAN_BACKEND``); ``seed`` fixes
    initialisation, noise and data order.
    """

    kind = "vae"
    RECONSTRUCTS = True
    config_class = VAEConfig
    NETWORKS = {"enc": "encoder", "dec": "decoder"}
    PROGRESS = "-ELBO {neg_elbo:.2f} (recon {recon:.2f} KL {kl:.2f})"
    SIZE_FIELDS = ("latent_dim", "enc_hidden", "dec_hidden", "batch_size")

    def __init__(
        self,
        config: VAEConfig,
        backend: str | Backend | None = None,
        seed: int = 0,
        encoder: list[Layer] | None = None,
        decoder: list[Layer] | None = None,
    ) -> None:
        super().__init__(config, backend, seed)
        c = config
        enc_layers = encoder or encoder_layers(c)
        dec_layers = decoder or decoder_layers(c)
        check_io(enc_layers, c.data_dim, 2 * c.latent_dim, "encoder")
        check_io(dec_layers, c.latent_dim, c.data_dim, "decoder")
        self.check_memory([enc_layers, dec_layers])
        self.enc = self.nets["enc"] = self._network(enc_layers)
        self.dec = self.nets["dec"] = self._network(dec_layers)
        self.opt_enc = self.optimizers["enc"] = Adam(self.enc.params, self.enc.grads, c.lr, c.betas)
        self.opt_dec = self.optimizers["dec"] = Adam(self.dec.params, self.dec.grads, c.lr, c.betas)
        self.latent = GaussianLatent(self.xp, c.latent_dim)
        self.recon_work = Workspace(self.xp)


    # -- the training step ------------------------------------------------------------------

    def noise(self, n: int) -> Array:
        """``ε ~ N(0, I)`` of shape ``(n, latent_dim)``, drawn on the device."""
        return self.rng.normal((n, self.config.latent_dim), self.dtype)

    def learning_rate(self) -> Any:
        """The learning rate of the next step: ``config.lr``, decayed over the run (a device scalar)."""
        c = self.config
        return c.lr if c.lr_decay == 1.0 else decayed(c.lr, c.lr_decay, self.steps_done, self.horizon)

    def train_step(self, real: Array, eps: Array | None = None) -> dict[str, Array]:
        """One Adam update of both networks on −ELBO of ``real: (B, data_dim)``; returns device metrics.

        ``eps: (B, latent_dim)`` is the reparameterisation noise (drawn from the model's generator
        when omitted). Metrics are 0-d arrays, batch means in nats per sample: ``neg_elbo`` =
        ``recon`` + ``kl``. On ``cupy-graph`` the step is recorded once and replayed.
        """
        if self.backend.records_steps:
            metrics = self._recorded(eps is None)(real, eps)
        else:
            metrics = self.device_step(real, eps)
        self.step += 1
        return metrics

    def device_step(self, real: Array, eps: Array | None = None) -> dict[str, Array]:
        """The device work of :meth:`train_step`, without the host's step count: what a CUDA graph records."""
        eps = self.noise(real.shape[0]) if eps is None else eps
        lr = self.learning_rate()
        metrics = self.gradients(real, eps)
        self.opt_enc.step(lr)
        self.opt_dec.step(lr)
        self._count_device_step()
        return metrics

    def gradients(self, x: Array, eps: Array) -> dict[str, Array]:
        """Both networks' gradients of −ELBO on ``x`` with noise ``eps`` (no update); returns the loss terms.

        Forward: ``h = enc(x)``, ``z = μ + σ·ε``, ``out = dec(z)``. Backward: the reconstruction
        loss's gradient through the decoder to ``dz``, through the reparameterisation (plus the KL
        term's own gradient) to ``dh``, and through the encoder.
        """
        self.enc.train()
        self.dec.train()
        self.enc.zero_grad()
        self.dec.zero_grad()
        recon, kl, grad = self._losses(x, eps)
        dz = self.dec.backward(grad)
        self.enc.backward(self.latent.backward(dz), need_dx=False)
        return {"neg_elbo": recon + kl, "recon": recon, "kl": kl}

    def _losses(self, x: Array, eps: Array) -> tuple[Array, Array, Array]:
        """(reconstruction loss, KL, d(reconstruction)/d(decoder output)) of one forward pass."""
        z, kl = self.latent.forward(self.enc.forward(x), eps)
        out = self.dec.forward(z)
        if self.config.data_kind == "image":
            recon, grad = bernoulli_nll(out, x, self.recon_work)
        else:
            recon, grad = gaussian_nll(out, x, self.config.x_std)
        return recon, kl, grad

    def _host_values(self) -> tuple:
        c = self.config  # the values a live model's config may change between steps (a resume does)
        return (c.lr, c.lr_decay, c.betas, c.x_std)

    def _reused_buffers(self) -> list:
        return [*super()._reused_buffers(), *self.latent.work.arrays.values(), *self.recon_work.arrays.values()]

    # -- data space <-> model space -----------------------------------------------------------

    def to_model_space(self, x: Array) -> Array:
        """Data as the loss sees it: images in [0, 1] (Bernoulli targets), points as they are."""
        return x

    def from_model_space(self, out: Array) -> Array:
        """The decoder's output as data: the Bernoulli means ``σ(logits)`` for images, the mean for points."""
        return sigmoid(out, self.xp) if self.config.data_kind == "image" else out

    # -- using a trained model ---------------------------------------------------------------

    def _decode(self, z: Array) -> np.ndarray:
        self.dec.eval()
        y = self.from_model_space(self.dec.forward(z))
        self.dec.train()
        return to_numpy(y).astype(np.float32).reshape((z.shape[0], *self.config.data_shape))

    def sample(self, n: int, z: np.ndarray | None = None) -> np.ndarray:
        """``n`` samples decoded from ``z ~ N(0, I)``, a host float32 array of shape ``(n, *data_shape)``.

        Images are the decoder's Bernoulli means, in [0, 1]; points are in the data's units.
        ``z`` optionally fixes the latents; otherwise they come from the sampling generator,
        whose draws never shift the training noise.
        """
        n = count(n, "number of samples")
        self.check_rows(n, f"sample({n})", ("dec",), self.config.data_dim)
        if z is None:
            zz = self.sample_rng.normal((n, self.config.latent_dim), self.dtype)
        else:
            zz = self.backend.asarray(latents(z, n, self.config.latent_dim), dtype=self.dtype)
        return self._decode(zz)

    def _batches(self, x: np.ndarray, batch: int):
        flat = np.asarray(x).reshape(len(x), -1)
        for i in range(0, len(flat), batch):
            chunk = self.backend.asarray(flat[i : i + batch])
            yield i, unit_floats(self.xp, chunk, self.dtype)

    def _check_request(self, n: int, batch: Any, what: str) -> None:
        """Refuse a ``batch`` that is no count, or ``n`` samples whose results (and noise) and a chunk's
        passes through both networks would not fit in memory: before any is allocated."""
        chunk = min(n, count(batch, "batch", 1))
        c, itemsize = self.config, np.dtype(self.config.dtype).itemsize
        nets = [net.layers for net in self.nets.values()]
        nbytes = 4 * n * (2 * c.data_dim + c.latent_dim) + itemsize * activation_values(nets, chunk)
        check_fits(nbytes, f"{what} of {n} samples in batches of {chunk}", MemoryRequestError)

    def reconstruct(self, x: np.ndarray, batch: int = 1000) -> np.ndarray:
        """Decoded posterior means ``dec(μ(x))`` of ``x`` (uint8 images, floats in [0, 1], or points).

        Returns a host float32 array shaped like one sample per row: ``(N, *data_shape)``.
        """
        self._check_request(len(x), batch, "reconstruct")
        self.enc.eval()
        parts = [self._decode(self.latent.split(self.enc.forward(chunk))[0]) for _, chunk in self._batches(x, batch)]
        self.enc.train()
        return np.concatenate(parts) if parts else np.zeros((0, *self.config.data_shape), np.float32)

    def elbo(self, x: np.ndarray, seed: int = 0, batch: int = 1000) -> dict[str, float]:
        """The negative ELBO of ``x`` in nats per sample, with its two terms: ``neg_elbo``, ``recon``, ``kl``.

        One reparameterised sample per row, from noise seeded by ``seed`` and drawn on the host,
        so the estimate does not depend on the backend; ``x`` as for :meth:`reconstruct`.
        """
        self._check_request(len(x), batch, "elbo")
        eps = np.random.default_rng(seed).standard_normal((len(x), self.config.latent_dim)).astype(np.float32)
        totals = np.zeros(2)
        self.enc.eval()
        self.dec.eval()
        for i, chunk in self._batches(x, batch):
            recon, kl, _ = self._losses(chunk, self.backend.asarray(eps[i : i + batch], dtype=self.dtype))
            totals += np.array([float(recon), float(kl)]) * chunk.shape[0]
        self.enc.train()
        self.dec.train()
        recon, kl = totals / max(len(x), 1)
        return {"neg_elbo": float(recon + kl), "recon": float(recon), "kl": float(kl), "elbo_n": len(x)}
