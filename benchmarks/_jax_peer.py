"""The JAX peer of a tinygan GAN: the same model, loss, update order and optimizer, the whole step jitted.

Like the PyTorch peer (``_torch_peer.py``) it is translated layer by layer from the networks
tinygan itself builds for a config, so it cannot drift: Dense, LeakyReLU/ReLU, Tanh/Sigmoid,
BatchNorm (batch statistics in training, running statistics updated with the same momentum and
the unbiased variance), inverted dropout, PacGAN packing, one-sided label smoothing, Adam with
bias correction and the bias-corrected moving average of G's weights. The step mirrors
``GAN.device_step``: ``fake = G(z)`` once; D's update on BCE of D(real) and D(fake) with G a
constant; G's update on the non-saturating BCE through the *updated* D. XLA compiles the whole
step into one program (``jax.jit``, the training state donated so it is updated in place); the
compile time is measured separately by the benchmark and excluded from the step time.

JAX is a benchmark peer only; nothing in ``tinygan`` imports this module.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tinygan import GAN
from tinygan.engine.layers import BatchNorm, Dense, Dropout, LeakyReLU, ReLU, Sigmoid, Tanh


def _layer_kinds(net: Any) -> list[tuple]:
    """(kind, settings) per tinygan layer; the parameters travel separately."""
    kinds = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            kinds.append(("dense",))
        elif isinstance(layer, BatchNorm):
            kinds.append(("batchnorm", layer.momentum, layer.eps))
        elif isinstance(layer, LeakyReLU):
            kinds.append(("leaky_relu", layer.slope))
        elif isinstance(layer, ReLU):
            kinds.append(("leaky_relu", 0.0))
        elif isinstance(layer, Tanh):
            kinds.append(("tanh",))
        elif isinstance(layer, Sigmoid):
            kinds.append(("sigmoid",))
        elif isinstance(layer, Dropout):
            kinds.append(("dropout", layer.p))
        else:
            raise TypeError(f"no JAX twin for tinygan layer {type(layer).__name__}")
    return kinds


def _params(net: Any) -> list[dict[str, jnp.ndarray]]:
    return [{k: jnp.asarray(np.asarray(v)) for k, v in getattr(layer, "params", {}).items()} for layer in net.layers]


def _stats(net: Any) -> list[dict[str, jnp.ndarray]]:
    return [{k: jnp.asarray(np.asarray(v)) for k, v in layer.buffers().items()} for layer in net.layers]


def _forward(kinds: list[tuple], params: list, stats: list, x: jnp.ndarray, key: jnp.ndarray) -> tuple:
    """Training-mode forward; returns the output and the updated BatchNorm statistics."""
    new_stats = []
    for i, (kind, p, s) in enumerate(zip(kinds, params, stats, strict=True)):
        name = kind[0]
        if name == "dense":
            x = x @ p["W"] + p["b"]
        elif name == "batchnorm":
            momentum, eps = kind[1], kind[2]
            mean, var = x.mean(axis=0), x.var(axis=0)
            n = x.shape[0]
            s = {"running_mean": (1 - momentum) * s["running_mean"] + momentum * mean,
                 "running_var": (1 - momentum) * s["running_var"] + momentum * var * (n / max(n - 1, 1))}
            x = (x - mean) / jnp.sqrt(var + eps) * p["gamma"] + p["beta"]
        elif name == "leaky_relu":
            x = jnp.where(x > 0, x, kind[1] * x)
        elif name == "tanh":
            x = jnp.tanh(x)
        elif name == "sigmoid":
            x = jax.nn.sigmoid(x)
        elif name == "dropout":
            keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1.0 - kind[1], x.shape)
            x = jnp.where(keep, x / (1.0 - kind[1]), 0.0)
        new_stats.append(s)
    return x, new_stats


def _bce(logits: jnp.ndarray, target: float) -> jnp.ndarray:
    return jnp.mean(jnp.maximum(logits, 0) - logits * target + jnp.log1p(jnp.exp(-jnp.abs(logits))))


def _adam(params: Any, grads: Any, m: Any, v: Any, t: jnp.ndarray, lr: float, b1: float, b2: float) -> tuple:
    t = t + 1
    step = lr / (1 - b1**t)
    c2 = 1 / jnp.sqrt(1 - b2**t)
    m = jax.tree_util.tree_map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
    v = jax.tree_util.tree_map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
    params = jax.tree_util.tree_map(lambda p, m_, v_: p - step * m_ / (jnp.sqrt(v_) * c2 + 1e-8), params, m, v)
    return params, m, v, t


class JaxGAN:
    """G, D, their Adam states and G's average as one pytree; ``train_step(real, z)`` runs the jitted step."""

    def __init__(self, gan: GAN, seed: int = 0) -> None:
        c = self.config = gan.config
        self.g_kinds, self.d_kinds = _layer_kinds(gan.G), _layer_kinds(gan.D)
        g, d = _params(gan.G), _params(gan.D)
        zeros = lambda tree: jax.tree_util.tree_map(jnp.zeros_like, tree)  # noqa: E731
        self.state = {
            "G": g, "D": d, "G_stats": _stats(gan.G), "D_stats": _stats(gan.D),
            "mG": zeros(g), "vG": zeros(g), "mD": zeros(d), "vD": zeros(d),
            "t": jnp.zeros((), jnp.float32), "G_avg": jax.tree_util.tree_map(jnp.copy, g) if c.g_ema_decay else None,
            "key": jax.random.PRNGKey(seed),
        }
        self._step = jax.jit(self._train_step, donate_argnums=(0,))

    @classmethod
    def from_config(cls, config: Any, seed: int = 0) -> JaxGAN:
        return cls(GAN(config, backend="numpy", seed=seed), seed)

    def _pack(self, x: jnp.ndarray) -> jnp.ndarray:
        m = self.config.pack
        return x if m == 1 else x.reshape(x.shape[0] // m, m * x.shape[1])

    def _train_step(self, state: dict, real: jnp.ndarray, z: jnp.ndarray) -> tuple[dict, dict]:
        c = self.config
        b1, b2 = c.betas
        key, k_g, k_r, k_f, k_gd = jax.random.split(state["key"], 5)
        fake, g_stats = _forward(self.g_kinds, state["G"], state["G_stats"], z, k_g)
        fake_const = jax.lax.stop_gradient(fake)

        def d_loss(d_params: list) -> tuple:
            logit_real, stats = _forward(self.d_kinds, d_params, state["D_stats"], self._pack(real), k_r)
            logit_fake, stats = _forward(self.d_kinds, d_params, stats, self._pack(fake_const), k_f)
            return _bce(logit_real, c.real_label) + _bce(logit_fake, 0.0), (stats, logit_real, logit_fake)

        (loss_d, (d_stats, logit_real, logit_fake)), grads_d = jax.value_and_grad(d_loss, has_aux=True)(state["D"])
        d, m_d, v_d, t = _adam(state["D"], grads_d, state["mD"], state["vD"], state["t"], c.lr_d, b1, b2)

        def g_loss(g_params: list) -> tuple:
            out, stats = _forward(self.g_kinds, g_params, state["G_stats"], z, k_g)
            logits, _ = _forward(self.d_kinds, d, d_stats, self._pack(out), k_gd)
            return _bce(logits, 1.0), stats

        (loss_g, _), grads_g = jax.value_and_grad(g_loss, has_aux=True)(state["G"])
        g, m_g, v_g, _ = _adam(state["G"], grads_g, state["mG"], state["vG"], state["t"], c.lr_g, b1, b2)
        avg = state["G_avg"]
        if avg is not None:
            w = (1 - c.g_ema_decay) / (1 - c.g_ema_decay**t)
            avg = jax.tree_util.tree_map(lambda a, p: a + w * (p - a), avg, g)
        new = {"G": g, "D": d, "G_stats": g_stats, "D_stats": d_stats, "mG": m_g, "vG": v_g, "mD": m_d,
               "vD": v_d, "t": t, "G_avg": avg, "key": key}
        metrics = {"d_loss": loss_d, "g_loss": loss_g, "d_real": jax.nn.sigmoid(logit_real).mean(),
                   "d_fake": jax.nn.sigmoid(logit_fake).mean()}
        return new, metrics

    def train_step(self, real: jnp.ndarray, z: jnp.ndarray) -> dict:
        self.state, metrics = self._step(self.state, real, z)
        return metrics

    def block(self, metrics: dict) -> None:
        """Wait for the step's results (JAX dispatches asynchronously)."""
        jax.block_until_ready(metrics)
