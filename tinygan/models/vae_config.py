"""What a VAE is made of: :class:`VAEConfig`, and the named presets that fill it in.

Plain data validated where it is made, like :class:`~tinygan.models.config.GANConfig`: a value of the
wrong type or out of range raises a one-line ``ValueError`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .config import (
    ACTIVATIONS,
    DATA_KINDS,
    DTYPES,
    ModelConfig,
    _betas,
    _count,
    _one_of,
    _positive,
    _shape,
    _sizes,
    _within,
)


@dataclass
class VAEConfig(ModelConfig):
    """Everything needed to rebuild a VAE: architecture, optimisation and the data's shape.

    The encoder maps ``data_dim → enc_hidden → 2·latent_dim`` (μ and log σ²), the decoder
    ``latent_dim → dec_hidden → data_dim``: logits of Bernoulli pixels for images, the mean of a
    Gaussian of standard deviation ``x_std`` for points. One learning rate ``lr`` for both networks
    (Adam with ``betas``); ``lr_decay`` < 1 decays it exponentially over a run. The defaults are
    the ``vae`` preset.
    """

    FAMILY: ClassVar[str] = "VAE"

    data_shape: tuple[int, ...] = (28, 28)
    data_kind: str = "image"
    latent_dim: int = 20
    enc_hidden: list[int] = field(default_factory=lambda: [512, 256])
    dec_hidden: list[int] = field(default_factory=lambda: [256, 512])
    activation: str = "leaky_relu"
    leak: float = 0.2
    x_std: float = 0.1
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    lr_decay: float = 1.0
    batch_size: int = 64
    dtype: str = "float32"

    def __post_init__(self) -> None:
        self.check_fields(_CHECKS)


_CHECKS = {
    "data_shape": _shape,
    "data_kind": _one_of(DATA_KINDS),
    "latent_dim": _count,
    "enc_hidden": _sizes,
    "dec_hidden": _sizes,
    "activation": _one_of(ACTIVATIONS),
    "leak": _within(0.0, 1.0, hi_open=False),
    "x_std": _positive,
    "lr": _positive,
    "betas": _betas,
    "lr_decay": _positive,
    "batch_size": _count,
    "dtype": _one_of(DTYPES),
}

# Each preset names the fields it sets apart from VAEConfig's defaults (which are ``vae``).
VAE_PRESETS: dict[str, dict[str, Any]] = {
    # An MLP VAE in the spirit of Kingma & Welling (2014): two hidden layers each way, with the
    # LeakyReLU(0.2) of the GAN presets (ReLU's test -ELBO on Fashion-MNIST is ~1.8 nats lower: README).
    "vae": {},
    # 2-D points: a 2-D latent, a Gaussian decoder whose std is of the order of the modes' spread.
    "vae-points": {
        "latent_dim": 2,
        "enc_hidden": [128, 128],
        "dec_hidden": [128, 128],
        "x_std": 0.05,
        "batch_size": 100,
    },
}


def vae_preset_config(name: str, data_shape: tuple[int, ...], data_kind: str = "image",
                      **overrides: Any) -> VAEConfig:
    """The :class:`VAEConfig` of preset ``name`` for data of ``data_shape`` (``vae-points`` for 2-D points)."""
    if name not in VAE_PRESETS:
        raise ValueError(f"unknown VAE preset {name!r}: expected one of {', '.join(VAE_PRESETS)}")
    name = vae_preset_for(name, data_kind)
    return VAEConfig(**{"data_shape": tuple(data_shape), "data_kind": data_kind, **VAE_PRESETS[name], **overrides})


def vae_preset_for(name: str, data_kind: str) -> str:
    """The preset that ``name`` resolves to for data of ``data_kind``."""
    return "vae-points" if data_kind == "points" else name
