"""What a GAN is made of: :class:`GANConfig`, and the named presets that fill it in.

A config is plain data (it round-trips through JSON into checkpoints and ``config.json``), so
it is validated where it is made: a value that is the wrong type or out of range raises a
one-line ``ValueError`` naming the field, whether it came from Python, the command line or a
checkpoint file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from ..engine.objectives import LOSSES
from .classes import names_problem

ACTIVATIONS = ("relu", "leaky_relu", "maxout", "tanh", "sigmoid")
G_OUTPUTS = ("tanh", "sigmoid", None)
DATA_KINDS = ("image", "points")
DTYPES = ("float32", "float64")
CONDITIONINGS = ("concat", "projection")  # how D sees the class: Mirza & Osindero, Miyato & Koyama


class ModelConfig:
    """What every model's config shares: its JSON form, the flattened data size and field checks.

    A subclass is a dataclass; ``FAMILY`` names it in messages and ``RENAMED`` maps fields'
    earlier names (as older checkpoints and config.json files hold them) to the current ones.
    """

    FAMILY: ClassVar[str] = "model"
    RENAMED: ClassVar[dict[str, str]] = {}
    CONDITIONS: ClassVar[bool] = False  # whether the family has a class-conditional form
    n_classes = 0  # the number of classes of a conditional model (a field where the family has one)

    @property
    def conditional(self) -> bool:
        """Whether the model generates a class it is asked for (and trains on labels)."""
        return self.n_classes > 0

    @property
    def data_dim(self) -> int:
        return math.prod(self.data_shape)

    def check_fields(self, checks: dict[str, Any]) -> None:
        """Tuples where JSON gave lists, then each field's own check: a ``ValueError`` naming the first bad one."""
        self.data_shape = tuple(self.data_shape) if isinstance(self.data_shape, (list, tuple)) else self.data_shape
        self.betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else self.betas
        for name, check in checks.items():
            problem = check(getattr(self, name))
            if problem:
                raise ValueError(f"{self.FAMILY} config {name} = {getattr(self, name)!r}: {problem}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Any:
        """The config described by ``data`` (a mapping from :meth:`to_json`); unknown keys are refused."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.FAMILY} config must be a mapping of settings, got {type(data).__name__}")
        data = {cls.RENAMED.get(k, k): v for k, v in data.items()}
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown {cls.FAMILY} config keys: {', '.join(map(repr, unknown))}")
        return cls(**data)


@dataclass
class GANConfig(ModelConfig):
    """Everything needed to rebuild a GAN: architecture, optimisation and the data's shape.

    The defaults are the ``default`` preset. ``data_shape`` is one sample's shape, e.g.
    ``(28, 28)`` or ``(2,)``. ``g_output`` is ``"tanh"`` (model space [−1, 1]), ``"sigmoid"``
    ([0, 1]) or ``None`` (unbounded, for 2-D points). ``real_label`` below 1 is one-sided label
    smoothing; ``pack`` > 1 lets D judge ``pack`` samples at once (PacGAN). ``maxout_pieces`` is
    the number of linear pieces per unit of a ``"maxout"`` activation. ``g_ema_decay`` > 0 keeps an
    exponential moving average of G's weights with that decay and samples from it (Yazıcı et
    al., 2019). ``lr_decay`` < 1 decays both learning rates exponentially over a run, to
    ``lr_decay`` times their start at the end. ``lr_g``/``lr_d`` are the one source of the
    learning rates: the optimizers read them at every step.

    ``n_classes`` > 0 makes the GAN class-conditional (:mod:`tinygan.models.conditioning`): G gets the class
    with its latent, D judges an image with its class, in the ``conditioning`` form ``"concat"`` or
    ``"projection"``; ``class_names`` (one per class, or ``None`` for ``"0"``, ``"1"``, …) name them.

    ``loss`` is the objective (:mod:`tinygan.engine.objectives`); D takes ``n_critic`` updates, each on a
    batch of its own, per G update. ``wgan`` clips D's parameters to ``±wgan_clip``; ``wgan-gp``
    penalises ``gp_weight·(‖∇ₓD‖ − 1)²``; ``r1_gamma`` > 0 adds ``r1_gamma/2·‖∇ₓD(x)‖²`` on data,
    with any loss. ``d_spectral_norm`` divides D's weights by their largest singular value.
    """

    FAMILY: ClassVar[str] = "GAN"
    CONDITIONS: ClassVar[bool] = True
    # Fields' earlier names, as checkpoints and config.json files written before the rename hold them.
    RENAMED: ClassVar[dict[str, str]] = {"g_ema": "g_ema_decay"}

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
    d_dropout: float = 0.3
    leak: float = 0.2
    maxout_pieces: int = 5
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_label: float = 1.0
    g_ema_decay: float = 0.999
    lr_decay: float = 1.0
    pack: int = 1
    loss: str = "bce"
    n_critic: int = 1
    gp_weight: float = 10.0
    r1_gamma: float = 0.0
    wgan_clip: float = 0.01
    d_spectral_norm: bool = False
    batch_size: int = 64
    dtype: str = "float32"
    n_classes: int = 0
    conditioning: str = "projection"
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.check_fields(_CHECKS)
        for net in ("g", "d"):
            flags, hidden = getattr(self, f"{net}_batchnorm"), getattr(self, f"{net}_hidden")
            if not isinstance(flags, bool) and len(flags) != len(hidden):
                raise ValueError(
                    f"{net}_batchnorm has {len(flags)} flags for {len(hidden)} hidden layers; "
                    f"set {net}_batchnorm too (yes, no, or one flag per hidden layer)"
                )
        if self.batch_size % self.pack:
            raise ValueError(f"batch size {self.batch_size} is not a multiple of pack {self.pack}")
        _check_critic(self)
        _check_classes(self)


def _check_critic(c: GANConfig) -> None:
    """Settings that are valid alone but not together with the objective."""
    if c.real_label != 1.0 and c.loss != "bce":
        raise ValueError(f"GAN config real_label = {c.real_label!r}: label smoothing belongs to the bce loss, "
                         f"not {c.loss}")
    if c.loss == "wgan-gp" or c.r1_gamma > 0:
        why = "a gradient penalty (loss wgan-gp or r1_gamma > 0) needs the gradient of D's input gradient"
        if c.d_batchnorm is True or (isinstance(c.d_batchnorm, list) and any(c.d_batchnorm)):
            raise ValueError(f"GAN config d_batchnorm = {c.d_batchnorm!r}: {why}, which BatchNorm's batch "
                             "statistics mix across samples; set d_batchnorm false")
        if c.d_activation in ("tanh", "sigmoid"):
            raise ValueError(f"GAN config d_activation = {c.d_activation!r}: {why}, which tinygan computes for "
                             "piecewise-linear activations only (relu, leaky_relu, maxout)")


def _check_classes(c: GANConfig) -> None:
    """Class names that fit the class count; a projection head needs features to project."""
    if c.class_names is not None:
        problem = "" if c.n_classes else "names classes of a conditional GAN; set n_classes"
        problem = problem or names_problem(c.class_names, c.n_classes)
        if problem:
            raise ValueError(f"GAN config class_names = {c.class_names!r}: {problem}")
    if c.n_classes and c.conditioning == "projection" and not c.d_hidden:
        raise ValueError("GAN config d_hidden = []: the projection discriminator projects the features of D's last "
                         "hidden layer; give D a hidden layer or use conditioning concat")


# -- validation: each field's meaning, checked where the value enters ------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> str | None:
    return None if _is_int(v) and v >= 1 else "expected a positive integer"


def _sizes(v: Any) -> str | None:
    ok = isinstance(v, list) and all(_is_int(s) and s >= 1 for s in v)
    return None if ok else "expected a list of positive layer sizes"


def _flags(v: Any) -> str | None:
    ok = isinstance(v, bool) or (isinstance(v, list) and all(isinstance(f, bool) for f in v))
    return None if ok else "expected true/false or one true/false per hidden layer"


def _within(lo: float, hi: float, lo_open: bool = False, hi_open: bool = True) -> Any:
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def check(v: Any) -> str | None:
        inside = _is_real(v) and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
        return None if inside else f"expected a number in {interval}"

    return check


def _positive(v: Any) -> str | None:
    return None if _is_real(v) and v > 0 else "expected a positive number"


def _one_of(choices: tuple) -> Any:
    return lambda v: None if v in choices else f"expected one of {', '.join(map(str, choices))}"


def _shape(v: Any) -> str | None:
    ok = isinstance(v, tuple) and len(v) >= 1 and all(_is_int(s) and s >= 1 for s in v)
    return None if ok else "expected a non-empty tuple of positive sizes"


def _betas(v: Any) -> str | None:
    ok = isinstance(v, tuple) and len(v) == 2 and all(_within(0.0, 1.0)(b) is None for b in v)
    return None if ok else "expected two numbers in [0, 1)"


_CHECKS = {
    "data_shape": _shape,
    "data_kind": _one_of(DATA_KINDS),
    "latent_dim": _count,
    "g_hidden": _sizes,
    "g_activation": _one_of(ACTIVATIONS),
    "g_batchnorm": _flags,
    "g_output": _one_of(G_OUTPUTS),
    "d_hidden": _sizes,
    "d_activation": _one_of(ACTIVATIONS),
    "d_batchnorm": _flags,
    "d_dropout": _within(0.0, 1.0),
    "leak": _within(0.0, 1.0, hi_open=False),
    "maxout_pieces": _count,
    "bn_momentum": _within(0.0, 1.0, lo_open=True, hi_open=False),
    "bn_eps": _positive,
    "lr_g": _positive,
    "lr_d": _positive,
    "betas": _betas,
    "real_label": _within(0.5, 1.0, lo_open=True, hi_open=False),
    "g_ema_decay": _within(0.0, 1.0),
    "lr_decay": _positive,
    "pack": _count,
    "loss": _one_of(LOSSES),
    "n_critic": _count,
    "gp_weight": _positive,
    "r1_gamma": _within(0.0, math.inf),
    "wgan_clip": _within(0.0, math.inf),
    "d_spectral_norm": lambda v: None if isinstance(v, bool) else "expected true or false",
    "batch_size": _count,
    "dtype": _one_of(DTYPES),
    "n_classes": lambda v: None if _is_int(v) and v >= 0 else "expected a class count >= 0 (0 = unconditional)",
    "conditioning": _one_of(CONDITIONINGS),
}


# -- presets ------------------------------------------------------------------------------------
#
# Each preset names the fields it sets apart from GANConfig's defaults (which are ``default``).
# README.md ("Choosing the default", "Mode collapse on 2-D mixtures") records what was measured.

PRESETS: dict[str, dict[str, Any]] = {
    # The reference recipe plus dropout in D and sampling from an average of G's weights.
    "default": {},
    # PyTorch-GAN's implementations/gan/gan.py (with a normal BatchNorm eps).
    "reference": {"d_dropout": 0.0, "g_ema_decay": 0.0},
    # The article's model: ReLU everywhere, a sigmoid output, no BatchNorm, a wider D.
    "article": {
        "g_activation": "relu",
        "g_batchnorm": False,
        "g_output": "sigmoid",
        "d_hidden": [1024, 512, 256],
        "d_activation": "relu",
        "d_dropout": 0.0,
        "g_ema_decay": 0.0,
    },
    # 2-D mixtures (PacGAN's synthetic experiments) at a budget of about 10,000 steps.
    "points": {
        "latent_dim": 2,
        "g_hidden": [400, 400, 400, 400],
        "g_activation": "relu",
        "g_batchnorm": False,
        "g_output": None,
        "d_hidden": [200, 200, 200],
        "d_activation": "relu",
        "d_dropout": 0.0,
        "g_ema_decay": 0.0,
        "lr_g": 2e-3,
        "lr_d": 2e-3,
        "lr_decay": 1e-3,
        "batch_size": 100,
    },
}


def preset_config(name: str, data_shape: tuple[int, ...], data_kind: str = "image", **overrides: Any) -> GANConfig:
    """The :class:`GANConfig` of preset ``name`` for data of ``data_shape``.

    For 2-D points (``data_kind="points"``) the image presets fall back to ``"points"``.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}: expected one of {', '.join(PRESETS)}")
    if data_kind == "points":
        name = "points"
    settings = {"data_shape": tuple(data_shape), "data_kind": data_kind, **PRESETS[name], **overrides}
    return GANConfig(**settings)


def preset_for(name: str, data_kind: str) -> str:
    """The preset that ``name`` resolves to for data of ``data_kind`` (2-D points use ``points``)."""
    return "points" if data_kind == "points" else name
