"""What a VAE is made of: :class:`VAEConfig`, and the named presets that fill it in.

Plain data validated where it is made, like :class:`~tinygan.models.config.GANConfig`: a value of the
wrong type or out of range raises a one-line ``ValueError`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from .architectures import VAE_ARCHITECTURES, VAE_MLP_ONLY, check_architecture
from .config import ACTIVATIONS, DATA_KINDS, DTYPES, ModelConfig
from .settings import BETAS, COUNT, FRACTION, POSITIVE, SHAPE, SIZES, one_of, setting


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
    ARCHITECTURE_SETTINGS: ClassVar[dict[str, tuple[str, ...]]] = {"mlp": VAE_MLP_ONLY, "conv": ("conv_channels",)}
    RESUMABLE: ClassVar[tuple[str, ...]] = ("lr",)
    LEARNING_RATES: ClassVar[tuple[str, ...]] = ("lr",)

    data_shape: tuple[int, ...] = setting((28, 28), SHAPE)
    data_kind: str = setting("image", one_of(DATA_KINDS))
    architecture: str = setting("mlp", one_of(VAE_ARCHITECTURES))
    latent_dim: int = setting(20, COUNT, "size of the latent vector z")
    enc_hidden: list[int] = setting([512, 256], SIZES, "VAE encoder hidden sizes, e.g. 512,256 (vae only)")
    dec_hidden: list[int] = setting([256, 512], SIZES, "VAE decoder hidden sizes, e.g. 256,512 (vae only)")
    conv_channels: list[int] = setting([64, 128], SIZES)
    activation: str = setting("leaky_relu", one_of(ACTIVATIONS))
    leak: float = setting(0.2, FRACTION)
    x_std: float = setting(0.1, POSITIVE)
    lr: float = setting(1e-3, POSITIVE, "VAE Adam learning rate (both networks)")
    betas: tuple[float, float] = setting((0.9, 0.999), BETAS, "Adam's β₁,β₂ for both networks, e.g. 0.5,0.999")
    lr_decay: float = setting(1.0, POSITIVE,
                              "both learning rates decay exponentially to this fraction by the last step")
    batch_size: int = setting(64, COUNT, "batch size [default: the preset's, 64]")
    dtype: str = setting("float32", one_of(DTYPES))

    def __post_init__(self) -> None:
        self.check_fields()
        check_architecture(self, _DEFAULTS, VAE_MLP_ONLY)


_DEFAULTS = {f.name: f.default_factory() if callable(f.default_factory) else f.default for f in fields(VAEConfig)}


# Each preset names the fields it sets apart from VAEConfig's defaults (which are ``vae``).
VAE_PRESETS: dict[str, dict[str, Any]] = {
    # An MLP VAE in the spirit of Kingma & Welling (2014): two hidden layers each way, with the
    # LeakyReLU(0.2) of the GAN presets (ReLU's test -ELBO on Fashion-MNIST is ~1.8 nats lower: docs/vae.md).
    "vae": {},
    # 2-D points: a 2-D latent, a Gaussian decoder whose std is of the order of the modes' spread.
    "vae-points": {
        "latent_dim": 2,
        "enc_hidden": [128, 128],
        "dec_hidden": [128, 128],
        "x_std": 0.05,
        "batch_size": 100,
    },
    # The convolutional VAE: an encoder like dcgan-compact's D, a decoder like its G, without BatchNorm.
    "vae-conv": {"architecture": "conv"},
}
VAEConfig.PRESETS, VAEConfig.POINTS_PRESET = VAE_PRESETS, "vae-points"
