"""The matrix products of one tinygan training step: what the step's GEMM floor times and counts.

A step cannot be faster than its matrix products alone, so ``bench_step.py`` times exactly the
GEMMs that ``GAN.train_step`` performs (same shapes, same transposed operands) into preallocated
outputs, and counts their FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinygan import GAN, VAE
from tinygan.engine.layers import Conv2d, ConvTranspose2d, Dense, ProjectionHead, Reshape
from tinygan.engine.spectral import SpectralNorm


@dataclass(frozen=True)
class Gemm:
    """One matrix product ``C (M×N) = op(A) (M×K) · op(B) (K×N)`` of a training step.

    ``layout`` says which operand is used transposed, as the engine calls it:
    ``"nn"`` forward ``x W``, ``"tn"`` weight gradient ``xᵀ dy``, ``"nt"`` input gradient ``dy Wᵀ``.
    """

    what: str
    m: int
    n: int
    k: int
    layout: str

    @property
    def flops(self) -> int:
        return 2 * self.m * self.n * self.k


@dataclass(frozen=True)
class Weighted:
    """A layer with a weight matrix ``W: (n_in, n_out)``, as its products see it: ``cells`` rows per sample
    (1 for a Dense, the grid's pixels for a convolution: ``n_in = k²·c_in``, ``n_out = c_out``). A
    transposed convolution (``W: (k²·c_out, c_in)``) is a convolution's input gradient: its forward is
    the product ``x Wᵀ`` and its input gradient the product ``im2col(dy) W``, layouts swapped."""

    index: int
    layer: Any
    cells: int
    n_in: int
    n_out: int
    transposed: bool = False

    def _along(self, rows: int, name: str, layout: str) -> Gemm:
        """``P W`` (rows of n_in into n_out, "nn") or ``dy Wᵀ`` (rows of n_out into n_in, "nt")."""
        r = rows * self.cells
        if layout == "nn":
            return Gemm(f"{name} {self.n_in}x{self.n_out}", r, self.n_out, self.n_in, "nn")
        return Gemm(f"{name} {self.n_in}x{self.n_out}", r, self.n_in, self.n_out, "nt")

    def fwd(self, rows: int, tag: str) -> Gemm:
        return self._along(rows, f"{tag} fwd", "nt" if self.transposed else "nn")

    def dx(self, rows: int, tag: str) -> Gemm:
        return self._along(rows, f"{tag} dx", "nn" if self.transposed else "nt")

    def dw(self, rows: int, tag: str, what: str = "dW") -> Gemm:
        return Gemm(f"{tag} {what} {self.n_in}x{self.n_out}", self.n_in, self.n_out, rows * self.cells, "tn")


def _dense_layers(net: Any) -> list[Weighted]:
    """The Dense layers and convolutions of ``net``, in order, with the geometry of their products."""
    out, shape = [], None
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Reshape):
            shape = layer.shape
        elif isinstance(layer, (Conv2d, ConvTranspose2d)):
            new = layer.output_shape(shape[0], shape[1])
            grid = new if isinstance(layer, Conv2d) else shape
            out.append(Weighted(i, layer, grid[0] * grid[1], layer.kernel**2 * layer.c_image, layer.c_grid,
                                isinstance(layer, ConvTranspose2d)))
            shape = new
        elif isinstance(layer, Dense):
            out.append(Weighted(i, layer, 1, layer.n_in, layer.n_out))
    return out


def _head(net: Any) -> ProjectionHead | None:
    """A projection discriminator's last layer (``None`` for other networks)."""
    return net.layers[-1] if isinstance(net.layers[-1], ProjectionHead) else None


def _head_weight_gradients(h: ProjectionHead, rows: int, tag: str) -> list[Gemm]:
    """``hᵀ da`` and ``Cᵀ (da ⊙ h)``: the head's weight gradients, in its backward and in a penalty's second order."""
    return [Gemm(f"{tag} head dW {h.n_in}", h.n_in, 1, rows, "tn"),
            Gemm(f"{tag} head dE {h.n_classes}x{h.n_in}", h.n_classes, h.n_in, rows, "tn")]


def _forward(net: Any, rows: int, tag: str) -> list[Gemm]:
    """A forward's products; a spectrally normalised layer first works out ``Wu`` (for σ = ‖Wu‖); a projection
    head adds its class vectors ``C E`` and ``h w``."""
    out = []
    for d in _dense_layers(net):
        if isinstance(d.layer, SpectralNorm):
            out.append(Gemm(f"{tag} Wu {d.n_in}x{d.n_out}", d.n_in, 1, d.n_out, "nn"))
        out.append(d.fwd(rows, tag))
    h = _head(net)
    if h is not None:
        out += [Gemm(f"{tag} head CE {h.n_classes}x{h.n_in}", rows, h.n_in, h.n_classes, "nn"),
                Gemm(f"{tag} head fwd {h.n_in}", rows, 1, h.n_in, "nn")]
    return out


def _backward(net: Any, rows: int, tag: str, need_dx: bool, need_dparams: bool) -> list[Gemm]:
    """The GEMMs of ``Sequential.backward(dy, need_dx, need_dparams)`` for ``rows`` rows."""
    out = []
    h = _head(net)
    if h is not None:  # the last layer: always followed by a Dense whose input gradient it needs
        out += [*(_head_weight_gradients(h, rows, tag) if need_dparams else []),
                Gemm(f"{tag} head dx {h.n_in}", rows, h.n_in, 1, "nt")]
    for d in reversed(_dense_layers(net)):
        if need_dparams:
            out.append(d.dw(rows, tag))
        if need_dx or d.index > 0:  # Sequential skips only the first layer's input gradient
            out.append(d.dx(rows, tag))
    return out


def _penalty(net: Any, rows: int, tag: str) -> list[Gemm]:
    """A gradient penalty: forward, backward to the input (every layer's dx, no dW), then the
    second-order sweep: ``δ̄ᵀ δ_out`` for every weight and the tangent ``δ̄ W`` for all but the last."""
    dense, h = _dense_layers(net), _head(net)
    out = [*_forward(net, rows, tag), *_backward(net, rows, tag, need_dx=True, need_dparams=False)]
    for j, d in enumerate(dense):
        out.append(d.dw(rows, tag, "d2W"))
        if j < len(dense) - 1 or h is not None:  # a tangent for every layer with a weighted layer after it
            g = d.fwd(rows, tag)
            out.append(Gemm(f"{tag} tangent {d.n_in}x{d.n_out}", g.m, g.n, g.k, g.layout))
    return out if h is None else out + _head_weight_gradients(h, rows, f"{tag} d2")


def _power_iterations(net: Any) -> list[Gemm]:
    """One power iteration per spectrally normalised layer: ``Wu`` and ``Wᵀv``."""
    out = []
    for d in _dense_layers(net):
        if isinstance(d.layer, SpectralNorm):
            out.append(Gemm(f"Wu {d.n_in}x{d.n_out}", d.n_in, 1, d.n_out, "nn"))
            out.append(Gemm(f"Wᵀv {d.n_in}x{d.n_out}", d.n_out, 1, d.n_in, "tn"))
    return out


def step_gemms(gan: GAN, batch: int) -> list[Gemm]:
    """Exactly the matrix products ``gan.train_step`` performs for a batch of ``batch`` samples.

    Per D update (``n_critic`` of them): G forward; D forward on real, backward without D's
    first-layer input gradient; the same on fake; the penalties' passes. Then D forward on fake
    again and backward through D without D's weight gradients; G backward without G's
    first-layer input gradient. Spectrally normalised layers add their matrix-vector products.
    """
    c, G, D = gan.config, gan.G, gan.D
    rows_d = batch // c.pack
    critic = [
        *_forward(G, batch, "G"),
        *_power_iterations(D),
        *_forward(D, rows_d, "D(real)"),
        *_backward(D, rows_d, "D(real)", need_dx=False, need_dparams=True),
        *_forward(D, rows_d, "D(fake)"),
        *_backward(D, rows_d, "D(fake)", need_dx=False, need_dparams=True),
        *(_penalty(D, rows_d, "GP(x̂)") if c.loss == "wgan-gp" else []),
        *(_penalty(D, rows_d, "R1(x)") if c.r1_gamma > 0 else []),
    ]
    return [
        *critic * c.n_critic,
        *_forward(D, rows_d, "D(G(z))"),
        *_backward(D, rows_d, "D(G(z))", need_dx=True, need_dparams=False),
        *_backward(G, batch, "G", need_dx=False, need_dparams=True),
    ]


def vae_step_gemms(vae: VAE, batch: int) -> list[Gemm]:
    """Exactly the matrix products ``vae.train_step`` performs for a batch of ``batch`` samples.

    Encoder and decoder forward; decoder backward with every input gradient (``dz`` feeds the
    reparameterisation); encoder backward without its first layer's input gradient.
    """
    return [
        *_forward(vae.enc, batch, "enc"),
        *_forward(vae.dec, batch, "dec"),
        *_backward(vae.dec, batch, "dec", need_dx=True, need_dparams=True),
        *_backward(vae.enc, batch, "enc", need_dx=False, need_dparams=True),
    ]


def model_gemms(model: GAN | VAE, batch: int) -> list[Gemm]:
    """The matrix products of one training step of ``model``, a GAN or a VAE."""
    return vae_step_gemms(model, batch) if isinstance(model, VAE) else step_gemms(model, batch)


def step_flops(gan: GAN, batch: int) -> int:
    """FLOPs of the step's GEMMs, ``Σ 2·M·N·K``."""
    return sum(g.flops for g in step_gemms(gan, batch))
