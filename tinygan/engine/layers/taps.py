"""The k×k taps of a strided, padded convolution: gathering patches (im2col) and scattering them back (col2im).

A convolution pairs an *image* of ``H×W`` pixels with a *grid* of ``Ho×Wo`` kernel positions; grid
cell ``(i, j)`` and tap ``(a, b)`` of the kernel meet pixel ``(s·i + a − p, s·j + b − p)``, which is
zero padding when it falls outside the image. For one tap, the pixels met by the grid cells are a
strided slice of the image, so both directions are k² whole-array slice operations, in channels-last
(NHWC) arrays:

* :meth:`Taps.gather` ``cols[n, i, j, a, b, c] = img[n, s·i + a − p, s·j + b − p, c]`` (0 off the image),
* :meth:`Taps.scatter` its adjoint, ``img[n, s·i + a − p, s·j + b − p, c] += cols[n, i, j, a, b, c]``,
  summed over every (cell, tap) pair that meets the pixel.

Only slicing and slice assignment are used (no ``as_strided``, no ``add.at``), so the same code runs
on NumPy, CuPy (without a host synchronisation) and the strict array API.
"""

from __future__ import annotations

from typing import Any

from ...backend import Array

GATHER_BYTES = 64 * 2**20
"""Most bytes of patches a layer keeps from its forward to its backward: beyond it, a batch is processed
in chunks of images. The input gradient's patches, which live only within one chunk, get a quarter of it."""


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Grid cells along one axis: ``⌊(size + 2p − k)/s⌋ + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def tap_range(a: int, size: int, cells: int, stride: int, padding: int) -> tuple[slice, slice]:
    """``(cells met, pixels met)`` for tap ``a`` along one axis: the grid cells ``i`` with
    ``0 ≤ s·i + a − p < size``, and those pixels as a strided slice of the image."""
    lo = max(0, -((a - padding) // stride))  # ⌈(p − a)/s⌉, clamped at the first cell
    hi = min(cells, (size - 1 + padding - a) // stride + 1)
    if hi <= lo:
        return slice(0, 0), slice(0, 0)
    first = stride * lo + a - padding
    return slice(lo, hi), slice(first, first + stride * (hi - lo - 1) + 1, stride)


class Taps:
    """A convolution's geometry: an ``image`` of ``(H, W)`` pixels and a ``grid`` of ``(Ho, Wo)`` cells."""

    def __init__(self, kernel: int, stride: int, padding: int, image: tuple[int, int], grid: tuple[int, int]) -> None:
        self.kernel, self.image, self.grid = kernel, image, grid
        self.rows = [tap_range(a, image[0], grid[0], stride, padding) for a in range(kernel)]
        self.cols = [tap_range(b, image[1], grid[1], stride, padding) for b in range(kernel)]

    def chunk(self, channels: int, itemsize: int, share: float = 1.0) -> int:
        """Images per chunk, so that one chunk's patches stay within ``share`` of :data:`GATHER_BYTES`."""
        per_image = self.grid[0] * self.grid[1] * self.kernel**2 * channels * itemsize
        return max(1, int(GATHER_BYTES * share) // max(per_image, 1))

    def gather(self, xp: Any, img: Array, out: Array | None) -> Array:
        """im2col: ``(n, H, W, c)`` → patches ``(n·Ho·Wo, k·k·c)``, rows in (n, i, j) and columns in
        (a, b, c) order; written into ``out`` (that shape) where given."""
        n, c = img.shape[0], img.shape[3]
        (gh, gw), k = self.grid, self.kernel
        cols = xp.zeros((n, gh, gw, k, k, c), dtype=img.dtype) if out is None else xp.reshape(out, (n, gh, gw, k, k, c))
        for a, (ci, pi) in enumerate(self.rows):
            for b, (cj, pj) in enumerate(self.cols):
                if out is not None:  # a reused buffer: clear the cells whose pixel is padding
                    _clear_outside(cols, a, b, ci, cj)
                if ci.stop > ci.start and cj.stop > cj.start:
                    cols[:, ci, cj, a, b, :] = img[:, pi, pj, :]
        return xp.reshape(cols, (n * gh * gw, k * k * c))

    def scatter(self, xp: Any, cols: Array, native: bool, out: Array | None = None) -> Array:
        """col2im, the adjoint of :meth:`gather`: patches ``(n·Ho·Wo, k·k·c)`` → image ``(n, H, W, c)``,
        each pixel the sum of the patch entries that were gathered from it (k² strided slice-adds);
        written into ``out`` where given."""
        (gh, gw), k = self.grid, self.kernel
        c = cols.shape[1] // (k * k)
        n = cols.shape[0] // (gh * gw)
        cols = xp.reshape(cols, (n, gh, gw, k, k, c))
        if out is None:
            img = xp.zeros((n, *self.image, c), dtype=cols.dtype)
        else:
            img = out
            img[...] = 0
        for a, (ci, pi) in enumerate(self.rows):
            for b, (cj, pj) in enumerate(self.cols):
                if ci.stop > ci.start and cj.stop > cj.start:
                    _add_into(img, (slice(None), pi, pj, slice(None)), cols[:, ci, cj, a, b, :], native)
        return img


def _clear_outside(cols: Array, a: int, b: int, ci: slice, cj: slice) -> None:
    """Zero tap ``(a, b)`` of the grid cells outside ``ci × cj`` (those meeting the zero padding)."""
    gh, gw = cols.shape[1], cols.shape[2]
    if ci.stop <= ci.start or cj.stop <= cj.start:
        cols[:, :, :, a, b, :] = 0
        return
    for rows, cells in ((slice(0, ci.start), slice(None)), (slice(ci.stop, gh), slice(None)),
                        (ci, slice(0, cj.start)), (ci, slice(cj.stop, gw))):
        if rows.stop - (rows.start or 0) > 0 and (cells.stop is None or cells.stop > cells.start):
            cols[:, rows, cells, a, b, :] = 0


def _add_into(dst: Array, index: tuple, value: Array, native: bool) -> None:
    """``dst[index] += value``: in place on a view where the namespace writes through views, else by assignment."""
    if native:
        view = dst[index]
        view += value
    else:
        dst[index] = dst[index] + value
