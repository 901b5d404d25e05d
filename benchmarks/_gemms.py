"""The matrix products of one tinygan training step: what the step's GEMM floor times and counts.

A step cannot be faster than its matrix products alone, so ``bench_step.py`` times exactly the
GEMMs that ``GAN.train_step`` performs (same shapes, same transposed operands) into preallocated
outputs, and counts their FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinygan import GAN
from tinygan.layers import Dense


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


def _dense_layers(net: Any) -> list[tuple[int, Dense]]:
    return [(i, layer) for i, layer in enumerate(net.layers) if isinstance(layer, Dense)]


def _forward(net: Any, rows: int, tag: str) -> list[Gemm]:
    return [Gemm(f"{tag} fwd {d.n_in}x{d.n_out}", rows, d.n_out, d.n_in, "nn") for _, d in _dense_layers(net)]


def _backward(net: Any, rows: int, tag: str, need_dx: bool, need_dparams: bool) -> list[Gemm]:
    """The GEMMs of ``Sequential.backward(dy, need_dx, need_dparams)`` for ``rows`` rows."""
    out = []
    for i, d in reversed(_dense_layers(net)):
        if need_dparams:
            out.append(Gemm(f"{tag} dW {d.n_in}x{d.n_out}", d.n_in, d.n_out, rows, "tn"))
        if need_dx or i > 0:  # Sequential skips only the first layer's input gradient
            out.append(Gemm(f"{tag} dx {d.n_in}x{d.n_out}", rows, d.n_in, d.n_out, "nt"))
    return out


def step_gemms(gan: GAN, batch: int) -> list[Gemm]:
    """Exactly the matrix products ``gan.train_step`` performs for a batch of ``batch`` samples.

    G forward once; D forward on real, backward without D's first-layer input gradient; the same
    on fake; then D forward on fake again and backward through D without D's weight gradients;
    G backward without G's first-layer input gradient.
    """
    rows_d = batch // gan.config.pack
    G, D = gan.G, gan.D
    return [
        *_forward(G, batch, "G"),
        *_forward(D, rows_d, "D(real)"),
        *_backward(D, rows_d, "D(real)", need_dx=False, need_dparams=True),
        *_forward(D, rows_d, "D(fake)"),
        *_backward(D, rows_d, "D(fake)", need_dx=False, need_dparams=True),
        *_forward(D, rows_d, "D(G(z))"),
        *_backward(D, rows_d, "D(G(z))", need_dx=True, need_dparams=False),
        *_backward(G, batch, "G", need_dx=False, need_dparams=True),
    ]


def step_flops(gan: GAN, batch: int) -> int:
    """FLOPs of the step's GEMMs, ``Σ 2·M·N·K``."""
    return sum(g.flops for g in step_gemms(gan, batch))
