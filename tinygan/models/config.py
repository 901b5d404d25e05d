"""What a GAN is made of: :class:`GANConfig`, and the named presets that fill it in.

A config is plain data (it round-trips through JSON into checkpoints and ``config.json``), so
it is validated where it is made: a value that is the wrong type or out of range raises a
one-line ``ValueError`` naming the field, whether it came from Python, the command line or a
checkpoint file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from ..engine.objectives import LOSSES
from .architectures import ARCHITECTURES, MLP_ONLY, check_architecture
from .arguments import plain
from .classes import names_problem
from .settings import (
    ANY,
    BETAS,
    CLASS_COUNT,
    COUNT,
    FLAGS,
    FRACTION,
    LABEL,
    MOMENTUM,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    SHAPE,
    SIZES,
    YES_NO,
    SettingError,
    one_of,
    setting,
)

ACTIVATIONS = ("relu", "leaky_relu", "maxout", "tanh", "sigmoid")
G_OUTPUTS = ("tanh", "sigmoid", None)
DATA_KINDS = ("image", "points")
DTYPES = ("float32", "float64")
CONDITIONINGS = ("concat", "projection")  # how D sees the class: Mirza & Osindero, Miyato & Koyama


class ModelConfig:
    """What every model's config shares: its JSON form, the flattened data size and field checks.

    A subclass is a dataclass whose fields are :func:`~tinygan.models.settings.setting` s; ``FAMILY``
    names it in messages and ``RENAMED`` maps fields' earlier names (as older checkpoints and
    config.json files hold them) to the current ones. ``RESUMABLE`` are the settings a resumed run
    may change (they shape no array), ``LEARNING_RATES`` those a diverged run should lower.
    """

    FAMILY: ClassVar[str] = "model"
    RENAMED: ClassVar[dict[str, str]] = {}
    CONDITIONS: ClassVar[bool] = False  # whether the family has a class-conditional form
    RESUMABLE: ClassVar[tuple[str, ...]] = ()
    LEARNING_RATES: ClassVar[tuple[str, ...]] = ()
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}  # name -> the fields it sets apart from the defaults
    POINTS_PRESET: ClassVar[str] = ""  # the preset every preset becomes for 2-D points
    n_classes = 0  # the number of classes of a conditional model (a field where the family has one)
    # Settings of one architecture (the preset's ``architecture``, "mlp" without one): architecture -> settings
    # that other architectures do not have.
    ARCHITECTURE_SETTINGS: ClassVar[dict[str, tuple[str, ...]]] = {}

    @property
    def data_dim(self) -> int:
        return math.prod(self.data_shape)

    @property
    def conditional(self) -> bool:
        """Whether the model generates a class it is asked for (and trains on labels)."""
        return self.n_classes > 0

    @property
    def rows_per_step(self) -> int:
        """Training samples one step consumes."""
        return self.batch_size * getattr(self, "n_critic", 1)

    def check_fields(self) -> None:
        """Python numbers where JSON or NumPy gave others, then each field's kind: a :class:`SettingError`
        naming the first bad one."""
        for f in fields(self):
            value = getattr(self, f.name)
            value = tuple(value) if isinstance(value, list) and f.metadata["kind"] in (SHAPE, BETAS) else value
            setattr(self, f.name, plain(value))
            problem = f.metadata["kind"].problem(getattr(self, f.name))
            if problem:
                raise SettingError(self.FAMILY, f.name, getattr(self, f.name), problem)

    @classmethod
    def options(cls) -> dict[str, Any]:
        """The fields a ``train`` option sets: name → field (its kind and help in ``metadata``)."""
        return {f.name: f for f in fields(cls) if f.metadata.get("help")}

    @classmethod
    def foreign_options(cls, preset: str) -> dict[str, str]:
        """The options that preset ``preset``'s architecture does not have: option -> the architecture that has it."""
        own = cls.PRESETS.get(preset, {}).get("architecture", "mlp")
        mine = cls.ARCHITECTURE_SETTINGS.get(own, ())
        return {name: arch for arch, names in cls.ARCHITECTURE_SETTINGS.items() for name in names if name not in mine}

    @classmethod
    def preset_for(cls, name: str, data_kind: str) -> str:
        """The preset that ``name`` resolves to for data of ``data_kind``: 2-D points have a preset of their own."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown {cls.FAMILY} preset {name!r}: expected one of {', '.join(cls.PRESETS)}")
        return cls.POINTS_PRESET if data_kind == "points" else name

    @classmethod
    def from_preset(cls, name: str, data_shape: tuple[int, ...], data_kind: str = "image", **overrides: Any) -> Any:
        """The config of preset ``name`` for data of ``data_shape``, with ``overrides`` of any field."""
        preset = cls.PRESETS[cls.preset_for(name, data_kind)]
        return cls(**{"data_shape": tuple(data_shape), "data_kind": data_kind, **preset, **overrides})

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
    RESUMABLE: ClassVar[tuple[str, ...]] = ("lr_g", "lr_d", "real_label")
    LEARNING_RATES: ClassVar[tuple[str, ...]] = ("lr_g", "lr_d")
    # Fields' earlier names, as checkpoints and config.json files written before the rename hold them.
    RENAMED: ClassVar[dict[str, str]] = {"g_ema": "g_ema_decay"}
    ARCHITECTURE_SETTINGS: ClassVar[dict[str, tuple[str, ...]]] = {
        "mlp": MLP_ONLY, "dcgan-compact": ("conv_channels",), "dcgan": ("conv_channels", "conv_dense")}

    data_shape: tuple[int, ...] = setting((28, 28), SHAPE)
    data_kind: str = setting("image", one_of(DATA_KINDS))
    architecture: str = setting("mlp", one_of(ARCHITECTURES))
    latent_dim: int = setting(100, COUNT, "size of the latent vector z")
    g_hidden: list[int] = setting([128, 256, 512, 1024], SIZES,
                                  "generator hidden sizes, e.g. 128,256,512,1024 (MLP presets only)")
    g_activation: str = setting("leaky_relu", one_of(ACTIVATIONS),
                                f"generator hidden activation: {', '.join(ACTIVATIONS)} (MLP presets only)")
    g_batchnorm: list[bool] | bool = setting([False, True, True, True], FLAGS,
                                             "BatchNorm in generator hidden layers: yes, no, or one per layer "
                                             "(MLP presets only)")
    g_output: str | None = setting("tanh", one_of(G_OUTPUTS))
    d_hidden: list[int] = setting([512, 256], SIZES, "discriminator hidden sizes, e.g. 512,256 (MLP presets only)")
    d_activation: str = setting("leaky_relu", one_of(ACTIVATIONS),
                                f"discriminator hidden activation: {', '.join(ACTIVATIONS)} (MLP presets only)")
    d_batchnorm: list[bool] | bool = setting(False, FLAGS,
                                             "BatchNorm in discriminator hidden layers: yes, no, or one per layer "
                                             "(dcgan presets: yes or no)")
    d_dropout: float = setting(0.3, PROBABILITY, "dropout probability after each discriminator hidden layer")
    conv_channels: list[int] = setting([64, 128], SIZES,
                                       "dcgan presets and vae-conv: channels of D's (the encoder's) two convolutions, "
                                       "the generator's in reverse, e.g. 64,128")
    conv_dense: int = setting(1024, COUNT, "dcgan preset: width of the dense layer in G and in D")
    leak: float = setting(0.2, FRACTION)
    maxout_pieces: int = setting(5, COUNT, "linear pieces per unit where an activation is maxout (MLP presets only)")
    bn_momentum: float = setting(0.1, MOMENTUM)
    bn_eps: float = setting(1e-5, POSITIVE)
    lr_g: float = setting(2e-4, POSITIVE, "generator Adam learning rate")
    lr_d: float = setting(2e-4, POSITIVE, "discriminator Adam learning rate")
    betas: tuple[float, float] = setting((0.5, 0.999), BETAS, "Adam's β₁,β₂ for both networks, e.g. 0.5,0.999")
    real_label: float = setting(1.0, LABEL, "target for real samples in D's loss (0.9 = one-sided label smoothing)")
    g_ema_decay: float = setting(0.999, PROBABILITY,
                                 "decay of the moving average of G's weights used for sampling (0 = off)")
    lr_decay: float = setting(1.0, POSITIVE,
                              "both learning rates decay exponentially to this fraction by the last step")
    pack: int = setting(1, COUNT, "PacGAN packing: D judges this many samples at once (1 = off)")
    loss: str = setting("bce", one_of(LOSSES), f"objective of the game: {', '.join(LOSSES)}")
    n_critic: int = setting(1, COUNT, "D updates per G update, each on a batch of its own")
    gp_weight: float = setting(10.0, POSITIVE, "weight λ of the WGAN-GP penalty λ(‖∇D(x̂)‖ − 1)²")
    r1_gamma: float = setting(0.0, NON_NEGATIVE, "weight γ of the R1 penalty γ/2·‖∇D(x)‖² on real data (0 = off)")
    wgan_clip: float = setting(0.01, NON_NEGATIVE, "loss wgan clips D's parameters to ± this (0 = off)")
    d_spectral_norm: bool = setting(False, YES_NO, "spectral normalisation of D's Dense layers: yes or no")
    batch_size: int = setting(64, COUNT, "batch size [default: the preset's, 64]")
    dtype: str = setting("float32", one_of(DTYPES))
    n_classes: int = setting(0, CLASS_COUNT)
    conditioning: str = setting("projection", one_of(CONDITIONINGS), (
        "with --conditional, how D sees the class: concat (one-hot beside the image) "
        "or projection (⟨embedding, features⟩ added to D's logit) [default: projection]"))
    class_names: list[str] | None = setting(None, ANY)

    def __post_init__(self) -> None:
        self.check_fields()
        check_architecture(self, _DEFAULTS, MLP_ONLY)
        for net in ("g", "d") if self.architecture == "mlp" else ():
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


_DEFAULTS = {f.name: f.default_factory() if callable(f.default_factory) else f.default for f in fields(GANConfig)}

# Settings that belong to one objective, with the value that means "not used": set apart from it under
# another objective they would be ignored, so they are refused alike.
OBJECTIVE_SETTINGS = {"real_label": ("bce", 1.0, "label smoothing"), "gp_weight": ("wgan-gp", 10.0, "the gradient "
                      "penalty's weight"), "wgan_clip": ("wgan", 0.01, "weight clipping")}


def _check_critic(c: GANConfig) -> None:
    """Settings that are valid alone but not together with the objective."""
    for name, (loss, unused, what) in OBJECTIVE_SETTINGS.items():
        if getattr(c, name) != unused and c.loss != loss:
            raise ValueError(f"GAN config {name} = {getattr(c, name)!r}: {what} belongs to the {loss} loss, "
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


# -- presets ------------------------------------------------------------------------------------
#
# Each preset names the fields it sets apart from GANConfig's defaults (which are ``default``).
# docs/studies-default.md and docs/mode-collapse.md record what was measured.

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
# The convolutional GANs of Lucic et al. (2018), "Are GANs Created Equal?" (docs/dcgan.md): their
# recipe (Adam 2e-4, β₁ 0.5, batch 64), no dropout, BatchNorm in D; the averaged G as the default's.
DCGAN = {"d_batchnorm": True, "d_dropout": 0.0}
PRESETS["dcgan"] = {"architecture": "dcgan", **DCGAN}
PRESETS["dcgan-compact"] = {"architecture": "dcgan-compact", **DCGAN}
GANConfig.PRESETS, GANConfig.POINTS_PRESET = PRESETS, "points"
