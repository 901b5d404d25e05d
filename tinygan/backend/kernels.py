"""CuPy kernels that do in one launch what the array code does in several passes.

On a GPU a small model's step is bound by kernel launches (each costs more from Python than its
arithmetic), so the engine's multi-pass elementwise formulas get one fused kernel each here. Every
kernel computes the same formula as the array code it replaces (named beside it), element by
element and in the same order; a GPU may contract a multiply and an add into one rounding, so the
results agree to rounding, not bit for bit. The array code stays the reference: it runs on NumPy
and the strict array API, and on a GPU every engine test (gradient checks included) runs through
these kernels. ``tests/backend/test_kernels.py`` also compiles each body as C++ on the CPU and compares it
with the array code.

:func:`kernels_for` returns ``None`` off CuPy: callers then run the array code.
"""

from __future__ import annotations

from typing import Any

# name: (inputs, outputs, body). Outputs passed in are updated in place; others are allocated.
SOURCES: dict[str, tuple[str, str, str]] = {
    # optim.Adam._update, with step_size = lr/(1−β₁ᵗ) and c2 = 1/√(1−β₂ᵗ) from adam_scalars
    "adam": (
        "T g, T b1, T a1, T b2, T a2, T step_size, T c2, T eps",
        "T p, T m, T v",
        "m = b1 * m + a1 * g; v = b2 * v + a2 * (g * g); p -= step_size * (m / (sqrt(v) * c2 + eps));",
    ),
    # optim.Adam.step: the step count and the two bias-correction factors, on the device
    "adam_scalars": (
        "float64 lr, float64 b1, float64 b2",
        "float64 t, T step_size, T c2",
        "t = t + 1; step_size = (T)(lr / (1.0 - pow(b1, t))); c2 = (T)(1.0 / sqrt(1.0 - pow(b2, t)));",
    ),
    # averaging.AveragedNetwork.update: avg += w·(θ − avg), w = (1 − d)/(1 − dᵗ)
    "ema": (
        "T src, float64 d, float64 t",
        "T avg",
        "T w = (T)((1.0 - d) / (1.0 - pow(d, t))); avg = avg + (src - avg) * w;",
    ),
    # layers.LeakyReLU.forward: the slope factor (1 where x > 0, else slope) and y = x·factor
    "leaky_relu": ("T x, T slope", "T y, T factor", "factor = x > 0 ? (T)1 : slope; y = x * factor;"),
    # layers.Dropout.forward: mask = [u ≥ p]/(1 − p), y = x·mask
    "dropout": ("T u, T x, T p, T scale", "T mask, T y", "mask = u >= p ? scale : (T)0; y = x * mask;"),
    # layers.Tanh.backward: dx = dy·(1 − y²)
    "tanh_grad": ("T dy, T y", "T dx", "dx = (1 - y * y) * dy;"),
    # layers.activations.sigmoid: σ(x) = ½ tanh(x/2) + ½
    "sigmoid": ("T x", "T y", "y = (T)0.5 * tanh((T)0.5 * x) + (T)0.5;"),
    # layers.BatchNorm.forward (training): x − μ and (x − μ)²
    "bn_center": ("T x, T mean", "T xc, T sq", "xc = x - mean; sq = xc * xc;"),
    # layers.BatchNorm.forward: running ← (1 − m)·running + m·batch statistic (unbiased variance)
    "bn_running": (
        "T mean, T var, T m, T unbias",
        "T running_mean, T running_var",
        "running_mean = running_mean * (1 - m) + m * mean; running_var = running_var * (1 - m) + m * var * unbias;",
    ),
    # layers.BatchNorm.forward: 1/√(σ² + ε), x̂ = (x − μ)/√(σ² + ε), y = γ x̂ + β
    "bn_inv_std": ("T var, T eps", "T inv_std", "inv_std = 1 / sqrt(var + eps);"),
    "bn_normalize": (
        "T xc, T inv_std, T gamma, T beta", "T xhat, T y", "xhat = xc * inv_std; y = xhat * gamma + beta;"
    ),
    # layers.BatchNorm.backward: dx = γ/(N√(σ²+ε)) · (N dy − Σdy − x̂ Σ dy·x̂)
    "bn_dx": (
        "T dy, T xhat, T sum_dy, T sum_dy_xhat, T scale, T n",
        "T dx",
        "dx = (dy * n - sum_dy - xhat * sum_dy_xhat) * (scale / n);",
    ),
    # losses.bce_with_logits: ℓ/N = (max(a, 0) − a·y + log1p(exp(−|a|)))/N and ∂ℓ/∂a / N = (σ(a) − y)/N
    "bce": (
        "T a, T target, T n",
        "T loss, T grad",
        "loss = ((a > 0 ? a : (T)0) - a * target + log1p(exp(-fabs(a)))) / n;"
        " grad = ((T)0.5 * tanh((T)0.5 * a) + (T)0.5 - target) / n;",
    ),
}


class Kernels:
    """The kernels of :data:`SOURCES`, compiled on first use, as attributes: ``kernels.adam(...)``."""

    def __init__(self, cupy: Any) -> None:
        self._cupy = cupy
        self._compiled: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in SOURCES:
            raise AttributeError(name)
        if name not in self._compiled:
            inputs, outputs, body = SOURCES[name]
            self._compiled[name] = self._cupy.ElementwiseKernel(inputs, outputs, body, f"tinygan_{name}")
        return self._compiled[name]


_KERNELS: Kernels | None = None


def kernels_for(xp: Any) -> Kernels | None:
    """The fused kernels when ``xp`` is CuPy, else ``None`` (run the array code)."""
    global _KERNELS
    if getattr(xp, "__name__", "") != "cupy":
        return None
    if _KERNELS is None:
        _KERNELS = Kernels(xp)
    return _KERNELS
