"""Procedurally drawn handwriting-like digits: an MNIST stand-in that needs no download.

Each digit has a few stroke templates; every image bends one with a smooth random warp and
a random affine map (slant, rotation, scale), centres it like MNIST and rasterises the
strokes with anti-aliased edges. Everything is drawn from one seeded generator, so a seed
gives the same images every time.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

# Digits are drawn from stroke templates in a unit box: y runs from -0.5 (top) to +0.5
# (bottom), x is centred on 0. Rendering maps a template height of 1 to about 20 pixels,
# like MNIST's 20x20 digit box inside the 28x28 frame.

_IMG = 28
_DIGIT_BOX = 20.0
_MAX_SEG = 0.07  # template units per rasterised segment (about 1.5 px)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> np.ndarray:
    """Elliptic arc from angle a0 to a1 (degrees, counter-clockwise as seen on screen)."""
    t = np.radians(np.linspace(a0, a1, max(8, int(abs(a1 - a0) / 6))))
    return np.stack([cx + rx * np.cos(t), cy - ry * np.sin(t)], axis=1)


def _bezier(*ctrl: tuple[float, float]) -> np.ndarray:
    """Bezier curve with the given control points (any degree), by de Casteljau."""
    t = np.linspace(0.0, 1.0, 16)[:, None, None]
    pts = np.broadcast_to(np.array(ctrl, dtype=np.float64), (len(t), len(ctrl), 2))
    while pts.shape[1] > 1:
        pts = pts[:, :-1] * (1 - t) + pts[:, 1:] * t
    return pts[:, 0]


def _poly(*pts: tuple[float, float]) -> np.ndarray:
    return np.array(pts, dtype=np.float64)


def _join(*parts: np.ndarray) -> np.ndarray:
    """Concatenate pieces into one continuous stroke."""
    return np.concatenate(parts, axis=0)


def _figure_eight(top_w: float, bottom_w: float) -> np.ndarray:
    """A single-stroke 8 that crosses itself in the middle, like a handwritten one."""
    t = np.linspace(0.0, 2 * np.pi, 90)
    width = np.where(np.cos(t) > 0, top_w, bottom_w)
    x = width * np.sin(2 * t)
    y = -0.5 * np.cos(t) + 0.04 * np.sin(t)
    return np.stack([x, y], axis=1)


def _digit_templates() -> dict[int, list[tuple[float, list[np.ndarray]]]]:
    """Per digit: list of (weight, strokes) variants; each stroke is a polyline."""
    zero = _arc(0.0, 0.0, 0.30, 0.5, 100, 460)  # a little past 360 degrees: pen overlap
    one = _poly((0.02, -0.5), (-0.02, 0.5))
    one_flag = _poly((-0.14, -0.32), (0.03, -0.5), (0.0, 0.5))
    one_base = _poly((-0.14, 0.5), (0.16, 0.5))
    two = _join(_arc(0.0, -0.24, 0.27, 0.26, 160, -20), _poly((-0.28, 0.5), (0.3, 0.5)))
    three = _join(_arc(0.0, -0.25, 0.25, 0.25, 150, -95), _arc(0.0, 0.24, 0.28, 0.26, 95, -150))
    four_open = [_poly((-0.22, -0.5), (-0.26, 0.1), (0.3, 0.1)), _poly((0.15, -0.5), (0.13, 0.5))]
    four_closed = _poly((0.13, 0.5), (0.14, -0.5), (-0.3, 0.12), (0.3, 0.12))
    five_bar = _poly((0.27, -0.5), (-0.18, -0.5))
    five_body = _join(_poly((-0.18, -0.5), (-0.22, -0.06)), _arc(0.0, 0.2, 0.28, 0.29, 125, -150))
    six_neck = _bezier((0.2, -0.5), (-0.12, -0.32), (-0.3, -0.02), (-0.28, 0.22))
    six = _join(six_neck, _arc(0.0, 0.22, 0.28, 0.27, 180, 520))
    seven = _poly((-0.28, -0.5), (0.3, -0.5), (-0.04, 0.5))
    seven_bar = _poly((-0.02, 0.02), (0.26, 0.02))
    nine_loop = _arc(0.0, -0.24, 0.25, 0.25, 10, 370)
    nine = _join(nine_loop, _poly((0.25, -0.2), (0.2, 0.5)))
    nine_hook = _join(nine_loop, _bezier((0.25, -0.2), (0.24, 0.3), (0.1, 0.5), (-0.1, 0.45)))
    return {
        0: [(1.0, [zero])],
        1: [(0.6, [one]), (0.3, [one_flag]), (0.1, [one_flag, one_base])],
        2: [(1.0, [two])],
        3: [(1.0, [three])],
        4: [(0.6, four_open), (0.4, [four_closed])],
        5: [(1.0, [five_bar, five_body])],
        6: [(1.0, [six])],
        7: [(0.7, [seven]), (0.3, [seven, seven_bar])],
        8: [(1.0, [_figure_eight(0.22, 0.28)])],
        9: [(0.7, [nine]), (0.3, [nine_hook])],
    }


def _resample(stroke: np.ndarray, max_seg: float) -> np.ndarray:
    """Resample a polyline at equal arc-length steps no longer than ``max_seg``."""
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(1, math.ceil(cum[-1] / max_seg))
    s = np.linspace(0.0, cum[-1], n + 1)
    return np.stack([np.interp(s, cum, stroke[:, 0]), np.interp(s, cum, stroke[:, 1])], axis=1)


@cache
def _template_segments() -> dict[int, list[tuple[float, np.ndarray, np.ndarray]]]:
    """Per digit: list of (weight, vertices (P, 2), segment index pairs (S, 2))."""
    out: dict[int, list[tuple[float, np.ndarray, np.ndarray]]] = {}
    for digit, variants in _digit_templates().items():
        out[digit] = []
        total = sum(w for w, _ in variants)
        for weight, strokes in variants:
            verts, pairs, base = [], [], 0
            for stroke in strokes:
                pts = _resample(stroke, _MAX_SEG)
                idx = np.arange(base, base + len(pts) - 1)
                pairs.append(np.stack([idx, idx + 1], axis=1))
                verts.append(pts)
                base += len(pts)
            out[digit].append((weight / total, np.concatenate(verts), np.concatenate(pairs)))
    return out


def _jitter_vertices(verts: np.ndarray, rng: np.random.Generator, m: int) -> np.ndarray:
    """Place m copies of template vertices in pixel space with handwriting-like jitter.

    A smooth random warp (sum of low-frequency sines) bends strokes, then a random affine
    map (rotation, slant, scale, aspect) follows. Coordinates are pixels relative to the
    template origin; ``_centre`` then moves each copy into the frame.
    """
    v = np.broadcast_to(verts, (m, *verts.shape)).copy()
    for _ in range(2):
        freq = rng.uniform(-1.6, 1.6, size=(m, 2, 2))  # cycles per unit: (image, out, in)
        phase = rng.uniform(0, 2 * np.pi, size=(m, 1, 2))
        amp = rng.uniform(0.0, 0.035, size=(m, 1, 2))
        arg = 2 * np.pi * np.einsum("mpk,mck->mpc", v, freq) + phase
        v += amp * np.sin(arg)
    angle = np.radians(rng.uniform(-12, 12, m))
    slant = rng.uniform(-0.15, 0.35, m)  # positive: top leans right, as most handwriting
    scale = _DIGIT_BOX * rng.uniform(0.82, 1.05, m)
    aspect = rng.uniform(0.8, 1.2, m)
    cos, sin = np.cos(angle), np.sin(angle)
    # x' = x * aspect - slant * y, then rotate, then scale.
    sx = v[..., 0] * aspect[:, None] - slant[:, None] * v[..., 1]
    sy = v[..., 1]
    px = scale[:, None] * (cos[:, None] * sx - sin[:, None] * sy)
    py = scale[:, None] * (sin[:, None] * sx + cos[:, None] * sy)
    return np.stack([px, py], axis=-1)


def _centre(pts: np.ndarray, pairs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift each copy so its length-weighted stroke centroid lands near the image centre.

    MNIST centres digits by pixel centre of mass; the stroke centroid is a cheap stand-in.
    """
    a, b = pts[:, pairs[:, 0]], pts[:, pairs[:, 1]]
    length = np.linalg.norm(b - a, axis=-1, keepdims=True)
    centroid = ((a + b) / 2 * length).sum(axis=1) / np.maximum(length.sum(axis=1), 1e-9)
    target = (_IMG - 1) / 2 + rng.uniform(-0.7, 0.7, size=(len(pts), 2))
    return pts + (target - centroid)[:, None, :]


def _rasterise(a: np.ndarray, b: np.ndarray, radius: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Anti-aliased thick segments into (m, 28, 28) float32 intensities in [0, 1].

    Each segment only touches a small fixed-size window around it, so the cost is
    O(m * segments * window) rather than O(m * segments * 784). Intensity falls off
    smoothly with the distance from the nearest segment; overlaps combine by maximum.
    """
    m, n_seg = a.shape[:2]
    reach = float(np.max(radius + soft)) + _MAX_SEG * _DIGIT_BOX * 1.3 / 2
    win = math.ceil(2 * reach) + 2
    offs = np.arange(win)
    out = np.zeros(m * _IMG * _IMG, dtype=np.float32)
    image_base = (np.arange(m) * _IMG * _IMG)[:, None, None]
    edge = (radius + soft).astype(np.float32)[:, None, None]
    inv_width = (0.5 / soft).astype(np.float32)[:, None, None]
    a, b = a.astype(np.float32), b.astype(np.float32)
    for k in range(n_seg):  # one segment per image at a time: windows never collide
        ax, ay = a[:, k, 0, None, None], a[:, k, 1, None, None]
        dx, dy = b[:, k, 0, None, None] - ax, b[:, k, 1, None, None] - ay
        # Window origin: covers the segment plus reach, clamped inside the image (pixels
        # outside the frame could not be drawn anyway).
        x0 = np.clip(np.floor(ax + dx / 2 - reach), 0, _IMG - win).astype(np.int64)
        y0 = np.clip(np.floor(ay + dy / 2 - reach), 0, _IMG - win).astype(np.int64)
        gx, gy = x0 + offs[None, None, :], y0 + offs[None, :, None]  # (m,1,win), (m,win,1)
        px, py = gx.astype(np.float32) - ax, gy.astype(np.float32) - ay
        # Position along the segment (0 at a, 1 at b) of each pixel's closest point; the
        # small (m, 1, win) / (m, win, 1) factors broadcast into one (m, win, win) array.
        inv_len2 = 1.0 / np.maximum(dx * dx + dy * dy, 1e-12)
        t = px * (dx * inv_len2) + py * (dy * inv_len2)
        np.clip(t, 0.0, 1.0, out=t)
        # Distance to that closest point, computed in place to limit temporaries.
        ex = t * dx
        np.subtract(px, ex, out=ex)
        np.square(ex, out=ex)
        t *= dy
        np.subtract(py, t, out=t)
        np.square(t, out=t)
        ex += t
        dist = np.sqrt(ex, out=ex)
        # Smoothstep from full ink at radius - soft to none at radius + soft: an
        # anti-aliased, slightly soft stroke edge.
        u = np.subtract(edge, dist, out=dist)
        u *= inv_width
        np.clip(u, 0.0, 1.0, out=u)
        val = u * u * (3.0 - 2.0 * u)
        flat = (image_base + gy * _IMG) + gx
        np.put(out, flat, np.maximum(np.take(out, flat), val))
    return out.reshape(m, _IMG, _IMG)


def _blur(img: np.ndarray) -> np.ndarray:
    """Light separable [1, 2, 1] / 4 blur, mixed in at half strength."""
    p = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    h = (p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]) / 4
    v = (h[:, :-2] + 2 * h[:, 1:-1] + h[:, 2:]) / 4
    return 0.5 * img + 0.5 * v


def _render_group(
    verts: np.ndarray, pairs: np.ndarray, rng: np.random.Generator, m: int
) -> np.ndarray:
    """Render m random variations of one template as uint8 (m, 28, 28)."""
    pts = _centre(_jitter_vertices(verts, rng, m), pairs, rng)
    radius = rng.uniform(0.75, 1.6, m)
    soft = rng.uniform(0.6, 1.0, m)
    img = _blur(_rasterise(pts[:, pairs[:, 0]], pts[:, pairs[:, 1]], radius, soft))
    # Stretch each image to the full 0..255 range, as MNIST digits are.
    peak = img.reshape(m, -1).max(axis=1)[:, None, None]
    img = img / np.maximum(peak, 1e-6)
    return np.round(img * 255).astype(np.uint8)


def make_digits(n: int, seed: int = 0, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Procedurally drawn handwriting-like digits: uint8 (n, 28, 28) and int64 labels.

    Labels are balanced (each digit n // 10 or n // 10 + 1 times) in shuffled order.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    images = np.zeros((n, _IMG, _IMG), dtype=np.uint8)
    templates = _template_segments()
    for digit in range(10):
        where = np.flatnonzero(labels == digit)
        weights = [w for w, _, _ in templates[digit]]
        choice = rng.choice(len(weights), size=len(where), p=weights)
        for v, (_, verts, pairs) in enumerate(templates[digit]):
            idx = where[choice == v]
            for start in range(0, len(idx), chunk):  # chunks bound the temporary memory
                part = idx[start : start + chunk]
                images[part] = _render_group(verts, pairs, rng, len(part))
    return images, labels
