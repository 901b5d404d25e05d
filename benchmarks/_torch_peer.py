"""The PyTorch peers of tinygan's GAN and VAE: the same model, loss, update order and optimizer, eager mode.

The torch networks are translated layer by layer from the networks tinygan itself builds for a
:class:`~tinygan.models.gan.GANConfig` (``GAN(config).G.layers`` / ``.D.layers``), so they cannot drift
from the engine: layer sizes, activations and their slope, BatchNorm placement/eps/momentum,
dropout, PacGAN packing. One-sided label smoothing and Adam's lr/betas/eps come from the config
and the engine's optimizers. The step mirrors ``GAN.train_step``:

* ``fake = G(z)`` once;
* D update: BCE-with-logits of D(real) against ``real_label`` plus D(fake.detach()) against 0,
  backward, ``torch.optim.Adam`` step (its default foreach implementation);
* G update: non-saturating BCE of D(fake) against 1 through the *updated* D, reusing the same
  ``fake``; D's parameters are frozen for this backward so, like tinygan, it computes no D
  weight gradients; then, with ``g_ema_decay`` > 0, the moving average of G's weights.

No pass computes an input gradient for a network's first layer (``real``, ``fake.detach()`` and
``z`` do not require grad), matching tinygan's GEMM count exactly.

PyTorch is a benchmark peer only; nothing in ``tinygan`` imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from tinygan import GAN, GANConfig
from tinygan.engine.layers import (
    BatchNorm,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    ReLU,
    Reshape,
    Sigmoid,
    Tanh,
)


class ToImages(nn.Module):
    """tinygan's ``Reshape((H, W, C))`` of flat rows, as torch's NCHW images: the same values, channels first."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape).permute(0, 3, 1, 2)


class ToRows(nn.Module):
    """tinygan's ``Flatten()`` of channels-last images: NCHW back to rows in (h, w, c) order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def _convolution(layer: Any) -> nn.Module | None:
    """The torch twin of a tinygan convolution, its transpose or its channel BatchNorm (``None`` for others)."""
    if isinstance(layer, Conv2d):
        return nn.Conv2d(layer.c_in, layer.c_out, layer.kernel, layer.stride, layer.padding)
    if isinstance(layer, ConvTranspose2d):
        return nn.ConvTranspose2d(layer.c_in, layer.c_out, layer.kernel, layer.stride, layer.padding,
                                  layer.output_padding)
    if isinstance(layer, BatchNorm2d):
        return nn.BatchNorm2d(layer.n_channels, eps=layer.eps, momentum=layer.momentum)
    if isinstance(layer, Reshape):
        return ToImages(layer.shape)
    if isinstance(layer, Flatten):
        return ToRows()
    return None


def torch_weight(layer: Any, w: np.ndarray) -> np.ndarray:
    """A tinygan weight matrix in torch's layout: Linear ``(out, in)``, Conv2d ``(c_out, c_in, k, k)``,
    ConvTranspose2d ``(c_in, c_out, k, k)``."""
    if isinstance(layer, Conv2d):
        return w.reshape(layer.kernel, layer.kernel, layer.c_in, layer.c_out).transpose(3, 2, 0, 1)
    if isinstance(layer, ConvTranspose2d):
        return w.reshape(layer.kernel, layer.kernel, layer.c_out, layer.c_in).transpose(3, 2, 0, 1)
    return w.T


def torch_layer(layer: Any) -> nn.Module:
    """The torch module computing what tinygan ``layer`` computes."""
    module = _convolution(layer)
    if module is not None:
        return module
    if isinstance(layer, Dense):
        return nn.Linear(layer.n_in, layer.n_out)
    if isinstance(layer, BatchNorm):
        # Both weigh the new batch statistic by ``momentum`` and keep an unbiased running variance.
        return nn.BatchNorm1d(layer.n_features, eps=layer.eps, momentum=layer.momentum)
    if isinstance(layer, LeakyReLU):
        return nn.LeakyReLU(layer.slope)
    if isinstance(layer, ReLU):
        return nn.ReLU()
    if isinstance(layer, Tanh):
        return nn.Tanh()
    if isinstance(layer, Sigmoid):
        return nn.Sigmoid()
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.p)
    raise TypeError(f"no torch twin for tinygan layer {type(layer).__name__}")


class TorchGAN:
    """G, D and their Adam optimizers mirroring a tinygan :class:`GAN` (float32 or float64).

    ``TorchGAN(gan)`` mirrors an existing GAN's architecture; :meth:`from_config` builds the
    tinygan GAN of a config first. Weights start from torch's own initialisation unless
    :meth:`load_from_tinygan` copies them over.
    """

    def __init__(self, gan: GAN, device: str = "cpu", seed: int = 0) -> None:
        c = self.config = gan.config
        torch.manual_seed(seed)
        dtype = getattr(torch, c.dtype)
        self.device = torch.device(device)
        self.G = nn.Sequential(*map(torch_layer, gan.G.layers)).to(self.device, dtype)
        self.D = nn.Sequential(*map(torch_layer, gan.D.layers)).to(self.device, dtype)
        self.opt_g = torch.optim.Adam(
            self.G.parameters(), lr=c.lr_g, betas=tuple(gan.opt_g.betas), eps=gan.opt_g.eps
        )
        self.opt_d = torch.optim.Adam(
            self.D.parameters(), lr=c.lr_d, betas=tuple(gan.opt_d.betas), eps=gan.opt_d.eps
        )
        self.loss = nn.BCEWithLogitsLoss()
        self.G.train()
        self.D.train()
        # ``g_ema_decay``: a moving average of G's weights, updated after every step like GAN.G_avg.
        self.ema_decay, self.t = c.g_ema_decay, 0
        self.G_avg = [p.detach().clone() for p in self.G.parameters()] if c.g_ema_decay else None

    @classmethod
    def from_config(cls, config: GANConfig, device: str = "cpu", seed: int = 0) -> TorchGAN:
        return cls(GAN(config, backend="numpy", seed=seed), device, seed)

    def load_from_tinygan(self, gan: GAN) -> None:
        """Copy a tinygan GAN's weights, BatchNorm statistics and G average (for equivalence checks)."""
        with torch.no_grad():
            for net, tnet in ((gan.G, self.G), (gan.D, self.D)):
                for ours, theirs in zip(self._torch_order(gan, net), tnet.parameters(), strict=True):
                    theirs.copy_(ours)
                for ours, theirs in zip(net.layers, tnet, strict=True):
                    if isinstance(ours, BatchNorm):
                        theirs.running_mean.copy_(self._host(gan, ours.running_mean))
                        theirs.running_var.copy_(self._host(gan, ours.running_var))
            if self.G_avg is not None and gan.G_avg is not None:
                for ours, theirs in zip(self._torch_order(gan, gan.G_avg.net), self.G_avg, strict=True):
                    theirs.copy_(ours)

    def _host(self, gan: GAN, a: Any) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(gan.backend.to_numpy(a))).to(self.device)

    def _torch_order(self, gan: GAN, net: Any) -> list[torch.Tensor]:
        """A tinygan network's parameters in the order of the torch twin's ``parameters()``."""
        out = []
        for layer in net.layers:
            if isinstance(layer, (Dense, Conv2d, ConvTranspose2d)):
                w = torch_weight(layer, gan.backend.to_numpy(layer.params["W"]))
                out += [torch.from_numpy(np.ascontiguousarray(w)).to(self.device), self._host(gan, layer.params["b"])]
            elif isinstance(layer, BatchNorm):
                out += [self._host(gan, layer.params["gamma"]), self._host(gan, layer.params["beta"])]
        return out

    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        m = self.config.pack
        return x if m == 1 else x.reshape(x.shape[0] // m, m * x.shape[1])

    def train_step(self, real: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update then one G update, as ``GAN.train_step``; returns device-side metrics."""
        fake = self.G(z)

        self.opt_d.zero_grad()
        logit_real = self.D(self._pack(real))
        logit_fake = self.D(self._pack(fake.detach()))
        loss_real = self.loss(logit_real, torch.full_like(logit_real, self.config.real_label))
        loss_fake = self.loss(logit_fake, torch.zeros_like(logit_fake))
        d_loss = loss_real + loss_fake
        d_loss.backward()
        self.opt_d.step()

        self.opt_g.zero_grad()
        self.D.requires_grad_(False)  # G's update needs dL/dx through D, not D's weight gradients
        logit_g = self.D(self._pack(fake))
        g_loss = self.loss(logit_g, torch.ones_like(logit_g))
        g_loss.backward()
        self.D.requires_grad_(True)
        self.opt_g.step()
        if self.G_avg is not None:  # avg += w·(θ − avg), w = (1 − d)/(1 − dᵗ), as tinygan does
            self.t += 1
            weight = (1.0 - self.ema_decay) / (1.0 - self.ema_decay**self.t)
            with torch.no_grad():
                torch._foreach_lerp_(self.G_avg, list(self.G.parameters()), weight)

        with torch.no_grad():
            return {
                "d_loss": d_loss.detach(),
                "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(logit_real).mean(),
                "d_fake": torch.sigmoid(logit_fake).mean(),
            }


class TorchVAE:
    """Encoder, decoder and one Adam over both, mirroring a tinygan :class:`~tinygan.models.vae.VAEModel`.

    The networks are translated layer by layer from the VAE's own (``vae.enc.layers``,
    ``vae.dec.layers``); Adam's lr, betas and eps come from its optimizers (tinygan keeps one Adam
    per network, which is the same elementwise update as one over both). The step mirrors
    ``VAE.train_step``: ``h = enc(x)``, ``μ, log σ² = h`` split in two, ``z = μ + exp(½ log σ²)·ε``,
    ``−ELBO = BCE-with-logits(dec(z), x)`` summed over pixels (or the Gaussian NLL of points) plus
    ``½ Σ (μ² + σ² − 1 − log σ²)``, both averaged over the batch; autograd does the backward.
    """

    def __init__(self, vae: Any, device: str = "cpu", seed: int = 0) -> None:
        c = self.config = vae.config
        torch.manual_seed(seed)
        self.device, self.dtype = torch.device(device), getattr(torch, c.dtype)
        self.enc = nn.Sequential(*map(torch_layer, vae.enc.layers)).to(self.device, self.dtype)
        self.dec = nn.Sequential(*map(torch_layer, vae.dec.layers)).to(self.device, self.dtype)
        params = [*self.enc.parameters(), *self.dec.parameters()]
        self.opt = torch.optim.Adam(params, lr=c.lr, betas=tuple(vae.opt_enc.betas), eps=vae.opt_enc.eps)

    def load_from_tinygan(self, vae: Any) -> None:
        """Copy a tinygan VAE's weights (for equivalence checks)."""
        with torch.no_grad():
            for net, tnet in ((vae.enc, self.enc), (vae.dec, self.dec)):
                for ours, theirs in zip(TorchGAN._torch_order(self, vae, net), tnet.parameters(), strict=True):
                    theirs.copy_(ours)

    _host = TorchGAN._host

    def losses(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction, KL) of a batch, each summed over a sample's values and averaged over the batch."""
        k, n = self.config.latent_dim, x.shape[0]
        h = self.enc(x)
        mu, logvar = h[:, :k], h[:, k:]
        out = self.dec(mu + torch.exp(0.5 * logvar) * eps)
        if self.config.data_kind == "image":
            recon = nn.functional.binary_cross_entropy_with_logits(out, x, reduction="sum") / n
        else:
            s = self.config.x_std
            d = x.shape[1]
            recon = ((out - x) ** 2).sum() / (2 * s * s * n) + d * (np.log(s) + 0.5 * np.log(2 * np.pi))
        kl = 0.5 * (mu * mu + torch.exp(logvar) - 1.0 - logvar).sum() / n
        return recon, kl

    def train_step(self, x: torch.Tensor, eps: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam update of both networks on −ELBO; returns the loss terms (detached)."""
        self.opt.zero_grad()
        recon, kl = self.losses(x, eps)
        loss = recon + kl
        loss.backward()
        self.opt.step()
        return {"neg_elbo": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def elbo(self, x: np.ndarray, seed: int = 0, batch: int = 1000) -> dict[str, float]:
        """Test-set −ELBO as ``VAE.elbo`` measures it: the same host noise, one sample per image."""
        eps = np.random.default_rng(seed).standard_normal((len(x), self.config.latent_dim)).astype(np.float32)
        flat = np.asarray(x).reshape(len(x), -1)
        totals = np.zeros(2)
        for i in range(0, len(flat), batch):
            chunk = flat[i : i + batch]
            xb = torch.from_numpy(chunk.astype(np.float32) * (1.0 / 255.0 if chunk.dtype == np.uint8 else 1.0))
            e = torch.from_numpy(eps[i : i + batch])
            recon, kl = self.losses(xb.to(self.device, self.dtype), e.to(self.device, self.dtype))
            totals += np.array([float(recon), float(kl)]) * len(chunk)
        recon, kl = totals / len(flat)
        return {"neg_elbo": float(recon + kl), "recon": float(recon), "kl": float(kl)}
