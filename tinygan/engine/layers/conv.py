"""Convolutions with hand-written backward: ``Conv2d`` and its adjoint, ``ConvTranspose2d``.

**Layout: channels last.** Activations are ``(N, H, W, C)`` (NHWC); a Dense output is reshaped to
it with :class:`~tinygan.engine.layers.Reshape`, and :class:`~tinygan.engine.layers.Flatten` turns it back into
``(N, H·W·C)`` rows in (h, w, c) order. Channels last is chosen for speed: a tap's pixels are runs
of ``C`` contiguous values, so gathering patches copies whole channel vectors; the product of the
patches ``(N·Ho·Wo, k·k·C_in)`` with the weight matrix is already the NHWC output ``(N·Ho·Wo,
C_out)``, with no transpose before or after; the bias broadcasts over the last axis; and batch
normalisation over channels is the existing BatchNorm on the ``(N·H·W, C)`` view. With NCHW, every
layer would transpose its GEMM's output (and its gradient) once more.

**One formula.** With ``P = im2col(x)`` the patches (see :mod:`.taps`) and ``W`` the
``(k·k·C_in, C_out)`` weight matrix, rows in (tap row, tap column, input channel) order:

    y = P W + b,    dW = Pᵀ dy,    db = Σ_rows dy,    dx = col2im(dy Wᵀ).

The transposed convolution's forward *is* that input gradient, ``y = col2im(x Wᵀ) + b``, and its
backward is the convolution's forward: ``dx = im2col(dy) W``, ``dW = im2col(dy)ᵀ x``. Both layers
are built from the same three products below (:meth:`_Conv._correlate`, :meth:`_Conv._transpose`,
:meth:`_Conv._weight_product`), each one GEMM per chunk of images on the backend's BLAS.
"""

from __future__ import annotations

import math
from typing import Any

from ...backend import Array, Random
from ...backend.pool import block_pool
from .base import Layer
from .taps import Taps, output_size


class _Conv(Layer):
    """What a convolution and its transpose share: the weight matrix ``W: (k·k·c_image, c_grid)``.

    The *image* side is the larger one (a convolution's input, a transposed convolution's output),
    the *grid* side has one row per kernel position (a convolution's output, a transposed one's input).
    """

    def _check(self, init: str) -> None:
        if init not in ("he", "glorot"):
            raise ValueError(f"{type(self).__name__} init must be 'he' or 'glorot', got {init!r}")
        if self.kernel < 1 or self.stride < 1 or self.padding < 0:
            raise ValueError(f"{type(self).__name__} needs kernel >= 1, stride >= 1 and padding >= 0, got "
                             f"kernel={self.kernel}, stride={self.stride}, padding={self.padding}")

    def bind(self, xp: Any, rng: Random) -> None:
        super().bind(xp, rng)
        self.taps: Taps | None = None
        self.kept: tuple[Array, Array] | None = None  # (image, its patches) of the latest single-chunk gather

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.kernel**2 * self.c_image, self.c_grid), "b": (self.c_out,)}

    def _init_weights(self, params: dict[str, Array], fan_in: float, fan_out: float) -> None:
        if self.init == "he":
            std = math.sqrt(2.0 / ((1.0 + self.leak**2) * fan_in))
        else:
            std = math.sqrt(2.0 / (fan_in + fan_out))
        w = params["W"]
        w[...] = self.rng.normal(w.shape, w.dtype)
        w *= std
        params["b"][...] = 0

    def _matrix(self) -> Array:
        """The weight matrix the products use (a spectrally normalised layer divides it by σ)."""
        return self.params["W"]

    def _geometry(self, image: tuple[int, int], grid: tuple[int, int]) -> Taps:
        if self.taps is None or self.taps.image != image or self.taps.grid != grid:
            self.taps = Taps(self.kernel, self.stride, self.padding, image, grid)
        return self.taps

    def _chunks(self, n: int, channels: int, dtype: Any, share: float = 1.0) -> list[tuple[int, int]]:
        step = self.taps.chunk(channels, self.xp.finfo(dtype).bits // 8, share)
        return [(lo, min(n, lo + step)) for lo in range(0, n, step)]

    def _split(self, fn: Any, n: int, per_image: int) -> None:
        """``fn(lo, hi)`` over images ``0:n``, split among the block pool's threads on NumPy (copies and adds
        of whole images: the same bits however the batch is split); in one call elsewhere."""
        if self.kernels is not None or not self.ops.native or n < 2:
            fn(0, n)
            return
        parts = min(block_pool().threads, n)
        block_pool().run(lambda i, j: fn(n * i // parts, n * j // parts), parts, per_image * n // parts)

    def _patches(self, img: Array, lo: int, hi: int) -> Array:
        """im2col of images ``lo:hi``, in the reused patch buffer; the whole batch's patches are kept for backward."""
        if self.kept is not None and self.kept[0] is img and hi - lo == img.shape[0]:
            return self.kept[1]
        gh, gw = self.taps.grid
        step = self._chunks(img.shape[0], img.shape[3], img.dtype)[0][1]
        buf = self.work.get("cols", (step * gh * gw, self.kernel**2 * img.shape[3]), img.dtype)
        if buf is None:
            cols = self.taps.gather(self.xp, img[lo:hi, ...], None)
        else:
            cols = buf[: (hi - lo) * gh * gw, :]
            self._split(lambda a, b: self.taps.gather(self.xp, img[lo + a : lo + b, ...], self._images(cols, a, b)),
                        hi - lo, cols.size // (hi - lo))
        self.kept = (img, cols) if hi - lo == img.shape[0] else None
        return cols

    def _correlate(self, img: Array, w: Array) -> Array:
        """``im2col(img) W``: ``(n, H, W, c_image)`` → ``(n, Ho, Wo, c_grid)`` (a convolution without bias)."""
        xp, ops, (gh, gw) = self.xp, self.ops, self.taps.grid
        n = img.shape[0]
        y = xp.empty((n * gh * gw, w.shape[1]), dtype=img.dtype) if ops.native else None
        parts = []
        for lo, hi in self._chunks(n, img.shape[3], img.dtype):
            out = None if y is None else y[lo * gh * gw : hi * gh * gw, :]
            parts.append(ops.matmul(self._patches(img, lo, hi), w, out=out))
        y = xp.concat(parts, axis=0) if y is None else y
        return xp.reshape(y, (n, gh, gw, w.shape[1]))

    def _transpose(self, grid: Array, w: Array) -> Array:
        """``col2im(grid Wᵀ)``: ``(n, Ho, Wo, c_grid)`` → ``(n, H, W, c_image)``, the adjoint of :meth:`_correlate`.

        Its patches live only within a chunk, so they get a quarter of the patch budget.
        """
        xp, ops, (gh, gw) = self.xp, self.ops, self.taps.grid
        n, c_image = grid.shape[0], w.shape[0] // self.kernel**2
        chunks = self._chunks(n, c_image, grid.dtype, share=0.25)
        buf = self.work.get("dcols", ((chunks[0][1]) * gh * gw, w.shape[0]), grid.dtype)
        img = xp.empty((n, *self.taps.image, c_image), dtype=grid.dtype) if ops.native else None
        parts = []
        for lo, hi in chunks:
            rows = xp.reshape(grid[lo:hi, ...], ((hi - lo) * gh * gw, w.shape[1]))
            dcols = ops.matmul(rows, w.T, out=None if buf is None else buf[: (hi - lo) * gh * gw, :])
            if img is None:
                parts.append(self.taps.scatter(xp, dcols, False))
            else:
                self._split(self._scatter_images(dcols, img, lo), hi - lo, dcols.size // (hi - lo))
        return img if img is not None else parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)

    def _images(self, cols: Array, a: int, b: int) -> Array:
        """The rows of patches ``cols`` that belong to images ``a:b`` (of the images that ``cols`` holds)."""
        rows = self.taps.grid[0] * self.taps.grid[1]
        return cols[a * rows : b * rows, :]

    def _scatter_images(self, dcols: Array, img: Array, lo: int) -> Any:
        """``fn(a, b)``: col2im of images ``a:b`` of ``dcols`` into images ``lo + a : lo + b`` of ``img``."""
        return lambda a, b: self.taps.scatter(self.xp, self._images(dcols, a, b), True, img[lo + a : lo + b, ...])

    def _weight_product(self, img: Array, grid: Array, out: Array | None) -> Array:
        """``im2col(img)ᵀ grid``, summed over chunks of images: the gradient of ``⟨grid, im2col(img) W⟩`` in W."""
        xp, ops, (gh, gw) = self.xp, self.ops, self.taps.grid
        acc = None
        for lo, hi in self._chunks(img.shape[0], img.shape[3], img.dtype):
            rows = xp.reshape(grid[lo:hi, ...], ((hi - lo) * gh * gw, grid.shape[3]))
            cols = self._patches(img, lo, hi)
            if acc is None:
                acc = ops.matmul(cols.T, rows, out=out)
            elif ops.native:
                acc += ops.matmul(cols.T, rows, out=self.work.get("dW_chunk", acc.shape, acc.dtype))
            else:
                acc = acc + ops.matmul(cols.T, rows)
        return acc

    def _add_weight_gradient(self, compute: Any) -> None:
        """``dW``, as ``compute(out)`` returns it, added into (or written over) the weight gradient."""
        self.add_gradient("W", compute)

    def linear(self, x: Array) -> Array:
        """The forward pass without bias, on an input shaped like the latest forward's."""
        raise NotImplementedError

    def backward_weight_gradient(self, d_bar: Array, dy: Array) -> Array:
        """``∂⟨d_bar, backward(dy)⟩/∂W``, the input gradient's derivative in W (see :mod:`tinygan.double_backward`),
        in scratch space that the caller may overwrite."""
        raise NotImplementedError

    def _add_bias_gradient(self, dy: Array) -> None:
        rows = self.xp.reshape(dy, (-1, dy.shape[3]))
        self.add_gradient("b", lambda out: self.ops.sum(rows, axis=0, out=out))

    def _check_input(self, x: Array, channels: int) -> None:
        if x.ndim != 4 or x.shape[3] != channels:
            raise ValueError(f"{type(self).__name__} expects (N, H, W, {channels}) channels-last input, "
                             f"got shape {tuple(x.shape)}")


class Conv2d(_Conv):
    """2-D convolution (cross-correlation, as PyTorch's ``conv2d``) of ``(N, H, W, c_in)`` to ``(N, Ho, Wo, c_out)``.

    ``y[n, i, j] = b + Σ_{a,b} x_pad[n, s·i + a, s·j + b] · W[a, b]`` with ``Ho = ⌊(H + 2p − k)/s⌋ + 1``;
    as matrices ``y = P W + b`` with ``P = im2col(x)``. Backward: ``dW = Pᵀ dy``, ``db = Σ dy``,
    ``dx = col2im(dy Wᵀ)``. ``W`` is stored as the ``(k·k·c_in, c_out)`` matrix, rows in
    (tap row, tap column, input channel) order: PyTorch's ``(c_out, c_in, k, k)`` weight is
    ``W.reshape(k, k, c_in, c_out).transpose(3, 2, 0, 1)``. Initialisation as :class:`Dense`'s,
    with fan-in ``k²·c_in`` and fan-out ``k²·c_out``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0,
                 init: str = "glorot", leak: float = 0.0) -> None:
        self.c_in, self.c_out, self.kernel, self.stride, self.padding = c_in, c_out, kernel, stride, padding
        self.init, self.leak = init, leak
        self.c_image, self.c_grid = c_in, c_out
        self._check(init)

    writes_first = True  # its gradients go through add_gradient

    def init_params(self, params: dict[str, Array]) -> None:
        self._init_weights(params, self.kernel**2 * self.c_in, self.kernel**2 * self.c_out)

    def output_shape(self, h: int, w: int) -> tuple[int, int, int]:
        """``(Ho, Wo, c_out)`` for an ``h × w`` input."""
        k, s, p = self.kernel, self.stride, self.padding
        return output_size(h, k, s, p), output_size(w, k, s, p), self.c_out

    def forward(self, x: Array) -> Array:
        self._check_input(x, self.c_in)
        gh, gw, _ = self.output_shape(x.shape[1], x.shape[2])
        if gh < 1 or gw < 1:
            raise ValueError(f"Conv2d: a {x.shape[1]}x{x.shape[2]} input is smaller than the {self.kernel}x"
                             f"{self.kernel} kernel with padding {self.padding}")
        self._geometry((x.shape[1], x.shape[2]), (gh, gw))
        self.x, self.kept = x, None
        y = self._correlate(x, self._matrix())
        y += self.params["b"]
        return y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if need_dparams:
            self._add_weight_gradient(lambda out: self._weight_product(self.x, dy, out))
            self._add_bias_gradient(dy)
        return self._transpose(dy, self._matrix()) if need_dx else None

    def linear(self, x: Array) -> Array:
        """``im2col(x) W``; right after :meth:`backward_weight_gradient` of the same ``x``, its patches are reused."""
        return self._correlate(x, self._matrix())

    def backward_weight_gradient(self, d_bar: Array, dy: Array) -> Array:
        """``im2col(δ̄)ᵀ dy``: ``backward(dy) = col2im(dy Wᵀ)`` and col2im is the adjoint of im2col."""
        self.kept = None
        w = self.params["W"]
        return self._weight_product(d_bar, dy, self.work.get("dW_second", w.shape, w.dtype))


class ConvTranspose2d(_Conv):
    """Transposed convolution (PyTorch's ``conv_transpose2d``) of ``(N, H, W, c_in)`` to ``(N, Ho, Wo, c_out)``.

    ``Ho = (H − 1)·s − 2p + k + output_padding``. It is the input gradient of a ``Conv2d(c_out, c_in,
    k, s, p)`` with weight matrix ``W: (k·k·c_out, c_in)``: ``y = col2im(x Wᵀ) + b``. Its backward is
    that convolution's forward: ``dx = im2col(dy) W``, ``dW = im2col(dy)ᵀ x``, ``db = Σ dy``.
    PyTorch's ``(c_in, c_out, k, k)`` weight is ``W.reshape(k, k, c_out, c_in).transpose(3, 2, 0, 1)``.
    Initialisation as :class:`Dense`'s with fan-in ``k²·c_in / s²`` (the inputs that reach one
    output pixel) and fan-out ``k²·c_out``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0,
                 output_padding: int = 0, init: str = "glorot", leak: float = 0.0) -> None:
        self.c_in, self.c_out, self.kernel, self.stride, self.padding = c_in, c_out, kernel, stride, padding
        self.output_padding, self.init, self.leak = output_padding, init, leak
        self.c_image, self.c_grid = c_out, c_in
        self._check(init)
        if not 0 <= output_padding < stride:
            raise ValueError(f"ConvTranspose2d output_padding must be in [0, stride), got {output_padding}")

    writes_first = True  # its gradients go through add_gradient

    def init_params(self, params: dict[str, Array]) -> None:
        self._init_weights(params, self.kernel**2 * self.c_in / self.stride**2, self.kernel**2 * self.c_out)

    def output_shape(self, h: int, w: int) -> tuple[int, int, int]:
        """``(Ho, Wo, c_out)`` for an ``h × w`` input."""
        k, s, p, q = self.kernel, self.stride, self.padding, self.output_padding
        return (h - 1) * s - 2 * p + k + q, (w - 1) * s - 2 * p + k + q, self.c_out

    def forward(self, x: Array) -> Array:
        self._check_input(x, self.c_in)
        oh, ow, _ = self.output_shape(x.shape[1], x.shape[2])
        if oh < 1 or ow < 1:
            raise ValueError(f"ConvTranspose2d: padding {self.padding} leaves no output for a "
                             f"{x.shape[1]}x{x.shape[2]} input")
        self._geometry((oh, ow), (x.shape[1], x.shape[2]))
        self.x, self.kept = x, None
        y = self._transpose(x, self._matrix())
        y += self.params["b"]
        return y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        self.kept = None  # the patches of dy are gathered once, for dW and dx
        if need_dparams:
            self._add_weight_gradient(lambda out: self._weight_product(dy, self.x, out))
            self._add_bias_gradient(dy)
        return self._correlate(dy, self._matrix()) if need_dx else None

    def linear(self, x: Array) -> Array:
        return self._transpose(x, self._matrix())

    def backward_weight_gradient(self, d_bar: Array, dy: Array) -> Array:
        """``im2col(dy)ᵀ δ̄``: ``backward(dy) = im2col(dy) W``."""
        self.kept = None
        w = self.params["W"]
        return self._weight_product(dy, d_bar, self.work.get("dW_second", w.shape, w.dtype))
