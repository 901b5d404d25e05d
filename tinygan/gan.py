"""The GAN: two networks, their optimizers, one training step, sampling, saving.

Objective (Goodfellow et al., 2014). The discriminator D ascends

    V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))],

i.e. it minimises the binary cross-entropy of "real" on data and "fake" on
generated samples. The generator would descend the same V, but
``log(1 − D(G(z)))`` is flat exactly when D confidently rejects G's samples
(early in training), so G instead minimises the non-saturating loss
``−E_z[log D(G(z))]``: same fixed point, strong gradients when G is bad.
D outputs a logit ``a``; ``D(x) = σ(a)`` is folded into the stable
BCE-with-logits loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .backend import Array, Backend, Ops, Workspace, get_backend, to_numpy
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .layers import BatchNorm, Dense, Layer, layer_from_spec, sigmoid
from .losses import bce_with_logits
from .network import Sequential, mlp
from .optim import Adam


@dataclass
class GANConfig:
    """Everything needed to rebuild a GAN: architecture, optimisation and the data's shape.

    ``data_shape`` is one sample's shape, e.g. ``(28, 28)`` or ``(2,)``.
    ``g_output`` is ``"tanh"`` (model space [−1, 1]), ``"sigmoid"`` ([0, 1]) or
    ``None`` (unbounded, for 2-D points). ``real_label`` below 1 is one-sided
    label smoothing; ``pack`` > 1 lets D judge ``pack`` samples at once (PacGAN).
    ``maxout_pieces`` is the number of linear pieces per unit of a ``"maxout"`` activation.
    ``g_ema`` > 0 keeps an exponential moving average of G's weights with that decay and
    samples from it (Yazıcı et al., 2019): it averages out the oscillation of adversarial
    training at the cost of one pass over G's parameters per step. ``lr_decay`` < 1 decays
    both learning rates exponentially over a run, to ``lr_decay`` times their start at the end.
    """

    data_shape: tuple[int, ...] = (28, 28)
    data_kind: str = "image"
    latent_dim: int = 100
    g_hidden: list[int] = field(default_factory=lambda: [128, 256, 512, 1024])
    g_activation: str = "leaky_relu"
    g_batchnorm: list[bool] | bool = field(default_factory=lambda: [False, True, True, True])
    g_output: str | None = "tanh"
    d_hidden: list[int] = field(default_factory=lambda: [512, 256])
    d_activation: str = "leaky_relu"
    d_batchnorm: list[bool] | bool = False
    d_dropout: float = 0.0
    leak: float = 0.2
    maxout_pieces: int = 5
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_label: float = 1.0
    g_ema: float = 0.0
    lr_decay: float = 1.0
    pack: int = 1
    batch_size: int = 64
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for net in ("g", "d"):
            flags, hidden = getattr(self, f"{net}_batchnorm"), getattr(self, f"{net}_hidden")
            if not isinstance(flags, bool) and len(flags) != len(hidden):
                raise ValueError(
                    f"{net}_batchnorm has {len(flags)} flags for {len(hidden)} hidden layers; "
                    f"set {net}_batchnorm too (yes, no, or one flag per hidden layer)"
                )

    @property
    def data_dim(self) -> int:
        return math.prod(self.data_shape)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GANConfig:
        if not isinstance(data, dict):
            raise ValueError(f"GAN config must be a mapping of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown GAN config keys: {', '.join(map(repr, unknown))}")
        data = dict(data)
        data["data_shape"] = tuple(data.get("data_shape", (28, 28)))
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        return cls(**data)


def _reference(**_: Any) -> dict[str, Any]:
    # PyTorch-GAN's implementations/gan/gan.py (with a normal BatchNorm eps).
    return {}


def _article(**_: Any) -> dict[str, Any]:
    return {
        "g_activation": "relu",
        "g_batchnorm": False,
        "g_output": "sigmoid",
        "d_hidden": [1024, 512, 256],
        "d_activation": "relu",
    }


def _default(**_: Any) -> dict[str, Any]:
    # The reference recipe plus dropout in D and sampling from an average of G's weights:
    # Fréchet distance 11.2 -> 5.1 on Fashion-MNIST at 5 epochs (README, "Choosing the default").
    return {"d_dropout": 0.3, "g_ema": 0.999}


def _points(**_: Any) -> dict[str, Any]:
    # The PacGAN / VEEGAN synthetic experiments use G 4×400 ReLU + BatchNorm, D 3×200 maxout, Adam
    # lr 1e-4 / β₁ 0.8 for 400,000 steps. For runs of ~10,000 steps (benchmarks/bench_modes.py) we
    # measured: their G width finds more modes (grid without packing: 17 of 25 with 4×400, 12 with
    # 4×128), though fewer grid samples land near a mode at this length (25% vs 57%); no BatchNorm
    # (82% vs 64% high-quality ring samples with 4×128); ReLU in D (it learns the narrow bumps faster
    # than leaky ReLU; maxout costs 2× and did not help at this length); and a large Adam step
    # (2e-3, β₁ 0.5) decayed 1000× over the run: at a constant rate samples keep jittering around
    # the modes.
    return {
        "latent_dim": 2,
        "g_hidden": [400, 400, 400, 400],
        "g_activation": "relu",
        "g_batchnorm": False,
        "g_output": None,
        "d_hidden": [200, 200, 200],
        "d_activation": "relu",
        "lr_g": 2e-3,
        "lr_d": 2e-3,
        "lr_decay": 1e-3,
        "betas": (0.5, 0.999),
        "batch_size": 100,
    }


PRESETS: dict[str, Callable[..., dict[str, Any]]] = {
    "default": _default,
    "reference": _reference,
    "article": _article,
    "points": _points,
}


def preset_config(name: str, data_shape: tuple[int, ...], data_kind: str = "image", **overrides: Any) -> GANConfig:
    """The :class:`GANConfig` of preset ``name`` for data of ``data_shape``.

    For 2-D points (``data_kind="points"``) the image presets fall back to ``"points"``.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}: expected one of {', '.join(PRESETS)}")
    if data_kind == "points" and name != "points":
        name = "points"
    settings = {"data_shape": tuple(data_shape), "data_kind": data_kind, **PRESETS[name]()}
    settings.update(overrides)
    return GANConfig(**settings)


STANDING_STAT_BATCHES, STANDING_STAT_BATCH = 20, 500


class GAN:
    """A generator ``G: z → x`` and a discriminator ``D: x → logit``, trained adversarially.

    Build from a preset with :meth:`from_preset`, or from a :class:`GANConfig`, optionally with
    explicit layer lists: ``GAN(config, generator=[Dense(…), …], discriminator=[…])`` (the
    generator maps ``latent_dim → data_dim`` in the range of ``config.g_output``; the
    discriminator maps ``pack·data_dim → 1`` logit). ``backend`` is ``"numpy"``, ``"cupy"`` or
    ``None`` (``$TINYGAN_BACKEND``); ``seed`` fixes initialisation, noise and data order.
    Train with :meth:`fit`, draw with :meth:`sample`, persist with :meth:`save` / :meth:`load`.
    """

    def __init__(
        self,
        config: GANConfig,
        backend: str | Backend | None = None,
        seed: int = 0,
        generator: list[Layer] | None = None,
        discriminator: list[Layer] | None = None,
    ) -> None:
        if config.batch_size % config.pack:
            raise ValueError(f"batch size {config.batch_size} is not a multiple of pack {config.pack}")
        self.config = config
        self.backend = get_backend(backend)
        self.seed = seed
        self.rng = self.backend.rng(seed)
        self.sample_rng = self.backend.rng(seed + 7919)  # its own stream: sampling never shifts training
        c = config
        g_layers = generator or mlp(
            [c.latent_dim, *c.g_hidden, c.data_dim], c.g_activation, c.g_output, c.g_batchnorm,
            leak=c.leak, bn_momentum=c.bn_momentum, bn_eps=c.bn_eps, pieces=c.maxout_pieces,
        )
        d_layers = discriminator or mlp(
            [c.data_dim * c.pack, *c.d_hidden, 1], c.d_activation, None, c.d_batchnorm, c.d_dropout,
            leak=c.leak, bn_momentum=c.bn_momentum, bn_eps=c.bn_eps, pieces=c.maxout_pieces,
        )
        _check_io(g_layers, c.latent_dim, c.data_dim, "generator")
        _check_io(d_layers, c.data_dim * c.pack, 1, "discriminator")
        self.G = Sequential(g_layers, self.backend, c.dtype, rng=self.rng)
        self.D = Sequential(d_layers, self.backend, c.dtype, rng=self.rng)
        self.opt_g = Adam(self.G.params, self.G.grads, c.lr_g, c.betas)
        self.opt_d = Adam(self.D.params, self.D.grads, c.lr_d, c.betas)
        self.xp = self.backend.xp
        self.float = self.backend.dtype(c.dtype)
        self.G_avg: Sequential | None = None  # G with averaged weights, sampled from when g_ema > 0
        if c.g_ema:
            avg_layers = [layer_from_spec(layer.spec()) for layer in self.G.layers]
            self.G_avg = Sequential(avg_layers, self.backend, c.dtype, rng=self.backend.rng(seed))
            self.G_avg.params[...] = self.G.params
            self._ema_buffer = Workspace(self.xp).get("ema", self.G.params.shape, self.G.params.dtype)
        self.ops = Ops(self.xp)
        self._avg_stats_step = -1  # the step at which G_avg's BatchNorm statistics were measured
        self.dataset_name: str | None = None  # what it was trained on, kept in checkpoints for `eval`
        self.step = 0  # training steps taken
        self.data_state: dict[str, Any] = {}  # where training is in the data (see trainer.Batches)

    @classmethod
    def from_preset(
        cls,
        name: str = "default",
        data_shape: tuple[int, ...] = (28, 28),
        backend: str | Backend | None = None,
        seed: int = 0,
        data_kind: str | None = None,
        **overrides: Any,
    ) -> GAN:
        """A GAN from preset ``name`` (default, reference, article, points) for samples of ``data_shape``.

        ``data_kind`` defaults to ``"points"`` for 1-D samples of size 2 and ``"image"`` otherwise;
        ``overrides`` set any :class:`GANConfig` field.
        """
        if data_kind is None:
            data_kind = "points" if tuple(data_shape) == (2,) else "image"
        return cls(preset_config(name, tuple(data_shape), data_kind, **overrides), backend, seed)

    # -- the training step ------------------------------------------------------------------

    def noise(self, n: int) -> Array:
        """Latent vectors ``z ~ N(0, I)`` of shape ``(n, latent_dim)``, drawn on the device."""
        return self.rng.normal((n, self.config.latent_dim), self.float)

    def _pack(self, x: Array) -> Array:
        n, m = x.shape[0], self.config.pack
        return x if m == 1 else self.xp.reshape(x, (n // m, m * x.shape[1]))

    def train_step(self, real: Array, z: Array) -> dict[str, Array]:
        """One D update on ``real`` and ``G(z)``, then one G update; returns device-side metrics.

        ``real: (B, data_dim)`` in model space (see :meth:`to_model_space`), ``z: (B, latent_dim)``.
        Metrics are 0-d arrays (read them at log intervals, not every step, on a GPU):
        ``d_loss = −V`` on this batch, ``g_loss`` (non-saturating), ``d_real`` = mean D(x),
        ``d_fake`` = mean D(G(z)) before the D update.
        """
        G, D, xp = self.G, self.D, self.xp
        G.train()
        D.train()
        fake = G.forward(z)

        # D ascends V: minimise BCE(D(x), real_label) + BCE(D(G(z)), 0). G's output is a constant here.
        D.zero_grad()
        logit_real = D.forward(self._pack(real))
        loss_real, grad = bce_with_logits(logit_real, self.config.real_label)
        D.backward(grad, need_dx=False)
        logit_fake = D.forward(self._pack(fake))
        loss_fake, grad = bce_with_logits(logit_fake, 0.0)
        D.backward(grad, need_dx=False)
        self.opt_d.step()

        # G descends −log D(G(z)) through the updated D; D's gradients are not needed, so not computed.
        G.zero_grad()
        loss_g, grad = bce_with_logits(D.forward(self._pack(fake)), 1.0)
        grad_fake = D.backward(grad, need_dparams=False)
        G.backward(xp.reshape(grad_fake, fake.shape), need_dx=False)
        self.opt_g.step()
        self.step += 1
        if self.G_avg is not None:
            self._update_average()

        return {
            "d_loss": loss_real + loss_fake,
            "g_loss": loss_g,
            "d_real": xp.mean(sigmoid(logit_real, xp)),
            "d_fake": xp.mean(sigmoid(logit_fake, xp)),
        }

    def _update_average(self) -> None:
        """``avg += w·(θ − avg)`` with ``w = (1 − d) / (1 − dᵗ)`` after step ``t``, through one reused buffer.

        This is the bias-corrected moving average, as Adam corrects its moments: the mean of the
        iterates θ₁ … θₜ weighted by dᵗ⁻ⁱ (w = 1 at t = 1, then w → 1 − d). A plain
        ``avg += (1 − d)(θ − avg)`` started at θ₀ would keep dᵗ of its mass on the initial weights.
        """
        d = self.config.g_ema
        weight = (1.0 - d) / (1.0 - d**self.step)
        diff = self.ops.subtract(self.G.params, self.G_avg.params, out=self._ema_buffer)
        diff *= weight
        self.G_avg.params += diff

    def check_finite(self) -> None:
        """Raise :class:`~tinygan.trainer.DivergenceError` if any parameter is NaN or infinite."""
        from .trainer import DivergenceError

        for name, net in (("generator", self.G), ("discriminator", self.D)):
            if not bool(self.xp.all(self.xp.isfinite(net.params))):
                raise DivergenceError(f"training diverged at step {self.step}: {name} parameters are not finite")

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

    def sample(self, n: int, z: np.ndarray | None = None) -> np.ndarray:
        """``n`` generated samples as a host float32 array of shape ``(n, *data_shape)``.

        Images are in [0, 1]; points are in the data's own units. The generator runs in
        evaluation mode (BatchNorm's running statistics). ``z`` optionally fixes the latents.
        """
        if n < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}")
        if z is None:
            zz = self.sample_rng.normal((n, self.config.latent_dim), self.float)
        else:
            zz = self.backend.asarray(z, dtype=self.float)
        generator = self.G if self.G_avg is None else self._averaged_generator()
        generator.eval()
        y = self.from_model_space(generator.forward(zz))
        self.G.train()
        return to_numpy(y).astype(np.float32).reshape((n, *self.config.data_shape))

    def _load_average(self, state: dict[str, np.ndarray]) -> None:
        params = state["params"]
        if tuple(params.shape) != tuple(self.G_avg.params.shape):
            raise ValueError(f"'G_avg/params' has shape {params.shape}, expected {tuple(self.G_avg.params.shape)}")
        self.G_avg.params[...] = self.backend.asarray(params, dtype=self.G_avg.params.dtype)
        self._avg_stats_step = -1

    def _averaged_generator(self) -> Sequential:
        """G with averaged weights, its BatchNorm statistics measured on itself.

        The live G's running statistics describe the live weights, not their average, so the
        averaged network gets its own ("standing statistics", Brock et al., 2019): the mean over
        a few batches of its own activations, from a fixed seed so that sampling is repeatable.
        """
        bns = [layer for layer in self.G_avg.layers if isinstance(layer, BatchNorm)]
        if bns and self._avg_stats_step != self.step:
            rng = self.backend.rng(self.seed)
            momenta = [bn.momentum for bn in bns]
            self.G_avg.train()
            for i in range(STANDING_STAT_BATCHES):
                for bn in bns:
                    bn.momentum = 1.0 / (i + 1)  # running value = plain mean of the batches so far
                self.G_avg.forward(rng.normal((STANDING_STAT_BATCH, self.config.latent_dim), self.float))
            for bn, m in zip(bns, momenta, strict=True):
                bn.momentum = m
            self._avg_stats_step = self.step
        return self.G_avg

    def fit(self, x: np.ndarray, **kwargs: Any) -> list[dict[str, float]]:
        """Train on ``x``; see :func:`tinygan.trainer.fit` for the arguments. Returns the metric history."""
        from .trainer import fit

        return fit(self, x, **kwargs)

    # -- saving and loading ------------------------------------------------------------------

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array needed to resume: both networks, both optimizers, the data position."""
        arrays = {f"G/{k}": v for k, v in self.G.state_dict().items()}
        arrays.update({f"D/{k}": v for k, v in self.D.state_dict().items()})
        arrays.update({f"opt_g/{k}": v for k, v in self.opt_g.state_dict().items()})
        arrays.update({f"opt_d/{k}": v for k, v in self.opt_d.state_dict().items()})
        if self.G_avg is not None:  # its BatchNorm statistics are derived from these, so not saved
            arrays["G_avg/params"] = to_numpy(self.G_avg.params).copy()
        if "perm" in self.data_state:
            arrays["data/perm"] = to_numpy(self.data_state["perm"])
        return arrays

    def save(self, path: str, extra_meta: dict[str, Any] | None = None) -> None:
        """Write a checkpoint (atomically) that :meth:`load` restores, training state included.

        Missing parent folders are created.
        """
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "config": self.config.to_json(),
            "generator": [layer.spec() for layer in self.G.layers],
            "discriminator": [layer.spec() for layer in self.D.layers],
            "seed": self.seed,
            "step": self.step,
            "dataset": self.dataset_name,
            "backend": self.backend.name,
            "rng": self.rng.get_state(),
            "data": {k: v for k, v in self.data_state.items() if k != "perm"},
            **(extra_meta or {}),
        }
        arrays = self.state_arrays()
        for name, a in arrays.items():  # a diverged model must never replace the last good checkpoint
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                from .trainer import DivergenceError

                raise DivergenceError(
                    f"training diverged at step {self.step}: {name} is not finite (not saved to {path})"
                )
        save_checkpoint(path, arrays, meta)

    @classmethod
    def load(cls, path: str, backend: str | Backend | None = None) -> GAN:
        """Rebuild a GAN from a checkpoint written by :meth:`save`, ready to sample or to train on."""
        arrays, meta = load_checkpoint(path)
        try:
            config = GANConfig.from_json(meta["config"])
            g_layers = [layer_from_spec(spec) for spec in meta["generator"]]
            d_layers = [layer_from_spec(spec) for spec in meta["discriminator"]]
            sizes = {"G": _n_params(g_layers), "D": _n_params(d_layers)}
        except Exception as e:  # the description comes from a file: any failure means it is unusable
            raise CheckpointError(f"checkpoint {path}: invalid model configuration ({e})") from None
        for prefix, wanted in sizes.items():  # checked before allocating what the metadata asks for
            held = sum(a.size for k, a in arrays.items() if k.startswith(prefix + "/"))
            if wanted > held:
                raise CheckpointError(
                    f"checkpoint {path}: does not fit this model ({prefix} needs {wanted} parameters, "
                    f"the file holds {held} values for it)"
                )
        try:
            gan = cls(config, backend, int(meta.get("seed", 0)), g_layers, d_layers)
        except Exception as e:
            raise CheckpointError(f"checkpoint {path}: invalid model configuration ({e})") from None
        gan.load_state(arrays, meta, path)
        return gan

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: str = "checkpoint") -> None:
        """Restore networks, optimizers, step, random state and data position from checkpoint contents."""
        parts = {
            "G": self.G.load_state_dict,
            "D": self.D.load_state_dict,
            "opt_g": self.opt_g.load_state_dict,
            "opt_d": self.opt_d.load_state_dict,
        }
        if self.G_avg is not None:
            parts["G_avg"] = self._load_average
        odd = [k for k, v in arrays.items() if np.asarray(v).dtype.kind not in "biuf"]
        if odd:
            raise CheckpointError(f"checkpoint {path}: array {odd[0]!r} is not numeric")
        step, data, rng = meta.get("step", 0), meta.get("data", {}), meta.get("rng", {})
        perm = arrays.get("data/perm")
        problem = _training_state_problem(step, data, rng, perm)
        if problem:
            raise CheckpointError(f"checkpoint {path}: invalid training state ({problem})")
        try:
            for prefix, load in parts.items():
                load({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix + "/")})
        except (KeyError, ValueError, TypeError, IndexError, OverflowError) as e:
            raise CheckpointError(f"checkpoint {path}: does not fit this model ({e})") from None
        try:
            self.rng.set_state(rng, fallback_seed=self.seed * 1_000_003 + int(step))
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise CheckpointError(f"checkpoint {path}: invalid random-generator state ({e})") from None
        self.step = step
        name = meta.get("dataset")
        self.dataset_name = name if isinstance(name, str) else None
        self.data_state = {"pos": data.get("pos", 0), "epoch": data.get("epoch", 0)}
        if perm is not None:
            self.data_state["perm"] = self.backend.asarray(perm.astype(np.int64))



def _check_io(layers: list[Layer], n_in: int, n_out: int, name: str) -> None:
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    if not dense or dense[0].n_in != n_in or dense[-1].n_out != n_out:
        got = f"{dense[0].n_in} → {dense[-1].n_out}" if dense else "no Dense layer"
        raise ValueError(f"{name} must map {n_in} → {n_out} features, got {got}")


def _n_params(layers: list[Layer]) -> int:
    return sum(math.prod(shape) for layer in layers for shape in layer.param_shapes().values())


def _training_state_problem(step: Any, data: Any, rng: Any, perm: np.ndarray | None) -> str | None:
    """What is wrong with a checkpoint's step, data position and random state, or ``None``."""
    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if not count(step):
        return f"step {step!r} is not a count"
    if not isinstance(data, dict) or not all(count(data.get(k, 0)) for k in ("pos", "epoch")):
        return f"data position {data!r} is not a pair of counts"
    if not isinstance(rng, dict):
        return "random-generator state is not a mapping"
    if perm is not None:
        if perm.ndim != 1 or perm.dtype.kind not in "iu":
            return f"data order has shape {perm.shape} and dtype {perm.dtype}, expected a 1-D integer array"
        if not np.array_equal(np.sort(perm), np.arange(perm.shape[0])):
            return "data order is not a permutation"
        if data.get("pos", 0) > perm.shape[0]:
            return f"data position {data.get('pos')} lies past the end of the data order"
    return None
