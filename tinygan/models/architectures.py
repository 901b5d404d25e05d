"""Where a model's networks come from: the MLP stacks, or the DCGAN stacks of Lucic et al. (2018).

A config's ``architecture`` chooses. Every network maps flat rows to flat rows, so the training step
never sees the difference: a convolutional network starts with ``Reshape((H, W, C))`` (or ends its
dense part with one) and ends with ``Flatten()``, in the channels-last layout of
:mod:`tinygan.engine.layers.conv`.

``dcgan`` is the 28×28 DCGAN that "Are GANs Created Equal?" (Lucic et al., 2018) used for MNIST and
Fashion-MNIST, after InfoGAN (c₁, c₂ the ``conv_channels``, F the ``conv_dense`` width, h = H/4, w = W/4):

    G: z → FC F, BN, ReLU → FC c₂·h·w, BN, ReLU → ConvT c₂→c₁ (4×4, s2, p1), BN, ReLU → ConvT c₁→C (4×4, s2, p1) → out
    D: Conv C→c₁ (4×4, s2, p1), LReLU → Conv c₁→c₂ (4×4, s2, p1), BN, LReLU → FC F, BN, LReLU → FC 1

``dcgan-compact`` drops the two F-unit dense layers (97 % of the full form's parameters):

    G: z → FC c₂·h·w, BN, ReLU → ConvT c₂→c₁, BN, ReLU → ConvT c₁→C → out
    D: Conv C→c₁, LReLU → Conv c₁→c₂, BN, LReLU → FC 1

D's BatchNorm layers are there with ``d_batchnorm`` (the penalised and spectrally normalised variant
has none); ``d_dropout`` > 0 adds dropout after each of D's hidden activations.

The convolutional VAE (``conv``) mirrors the compact form without BatchNorm, so that each image's
−ELBO is its own: the encoder is D's convolutions and a dense layer to ``2·latent_dim`` (μ and
log σ²), the decoder is G's layers ending in logits.
"""

from __future__ import annotations

from typing import Any

from ..engine.layers import (
    BatchNorm,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    ReLU,
    Reshape,
)
from ..engine.network import make_activation, mlp
from .settings import SettingError

ARCHITECTURES = ("mlp", "dcgan", "dcgan-compact")
VAE_ARCHITECTURES = ("mlp", "conv")
CONVOLUTIONAL = ("dcgan", "dcgan-compact", "conv")
# The GAN settings that shape the MLP stacks only: a convolutional architecture refuses them.
MLP_ONLY = ("g_hidden", "g_activation", "g_batchnorm", "d_hidden", "d_activation", "maxout_pieces")
# The VAE settings that shape its MLP stacks only.
VAE_MLP_ONLY = ("enc_hidden", "dec_hidden")


def image_shape(config: Any) -> tuple[int, int, int]:
    """``(H, W, C)`` of a convolutional model's images, or ``ValueError`` saying what a convolution needs."""
    shape = tuple(config.data_shape)
    if config.data_kind != "image" or len(shape) not in (2, 3):
        raise ValueError(f"{config.FAMILY} config architecture = {config.architecture!r}: convolutions take images "
                         f"of shape (H, W) or (H, W, C), got {config.data_kind} data of shape {shape}")
    h, w, c = (*shape, 1) if len(shape) == 2 else shape
    if h % 4 or w % 4:
        raise ValueError(f"{config.FAMILY} config architecture = {config.architecture!r}: the two stride-2 "
                         f"convolutions need H and W divisible by 4, got {h}×{w}")
    return h, w, c


def _bn(config: Any, features: int, image: bool) -> Layer:
    kind = BatchNorm2d if image else BatchNorm
    return kind(features, momentum=config.bn_momentum, eps=config.bn_eps)


def generator_layers(config: Any, n_in: int) -> list[Layer]:
    """G's layers for ``config``: ``n_in`` latent (and class) inputs to ``data_dim`` outputs in ``g_output``'s range."""
    c = config
    if c.architecture == "mlp":
        return mlp([n_in, *c.g_hidden, c.data_dim], c.g_activation, c.g_output, c.g_batchnorm,
                   leak=c.leak, bn_momentum=c.bn_momentum, bn_eps=c.bn_eps, pieces=c.maxout_pieces)
    return conv_generator(c, n_in, output=c.g_output)


def conv_generator(c: Any, n_in: int, batchnorm: bool = True, output: str | None = None) -> list[Layer]:
    """The DCGAN generator, ending in the ``output`` activation (also the convolutional VAE's decoder,
    without BatchNorm and with logits out)."""
    h, w, channels = image_shape(c)
    c1, c2 = c.conv_channels
    grid = c2 * (h // 4) * (w // 4)
    layers: list[Layer] = []
    width = n_in
    if c.architecture == "dcgan":
        layers += [Dense(n_in, c.conv_dense, "he"), _bn(c, c.conv_dense, False), ReLU()]
        width = c.conv_dense
    layers += [Dense(width, grid, "he"), *([_bn(c, grid, False)] if batchnorm else []), ReLU(),
               Reshape((h // 4, w // 4, c2)), ConvTranspose2d(c2, c1, 4, 2, 1, init="he"),
               *([_bn(c, c1, True)] if batchnorm else []), ReLU(),
               ConvTranspose2d(c1, channels, 4, 2, 1, init="glorot")]
    if output:
        layers.append(make_activation(output))
    return [*layers, Flatten()]


def encoder_layers(c: Any) -> list[Layer]:
    """The VAE's encoder: ``data_dim`` inputs to ``2·latent_dim`` outputs (μ and log σ²)."""
    if c.architecture == "mlp":
        return mlp([c.data_dim, *c.enc_hidden, 2 * c.latent_dim], c.activation, leak=c.leak)
    return [*conv_features(c, False), Dense(_feature_width(c), 2 * c.latent_dim, "glorot")]


def decoder_layers(c: Any) -> list[Layer]:
    """The VAE's decoder: ``latent_dim`` inputs to ``data_dim`` logits (images) or means (points)."""
    if c.architecture == "mlp":
        return mlp([c.latent_dim, *c.dec_hidden, c.data_dim], c.activation, leak=c.leak)
    return conv_generator(c, c.latent_dim, batchnorm=False)


def discriminator_layers(config: Any, n_in: int) -> list[Layer]:
    """D's layers for ``config``: ``n_in`` inputs to one logit (before a projection head or spectral norm)."""
    c = config
    if c.architecture == "mlp":
        return mlp([n_in, *c.d_hidden, 1], c.d_activation, None, c.d_batchnorm, c.d_dropout,
                   leak=c.leak, bn_momentum=c.bn_momentum, bn_eps=c.bn_eps, pieces=c.maxout_pieces)
    return [*conv_features(c, has_batchnorm(c.d_batchnorm), c.d_dropout), Dense(_feature_width(c), 1, "glorot")]


def conv_features(c: Any, batchnorm: bool, dropout: float = 0.0) -> list[Layer]:
    """The DCGAN discriminator up to its features (the last hidden activations, flat): also the VAE's encoder."""
    h, w, channels = image_shape(c)
    c1, c2 = c.conv_channels
    grid = c2 * (h // 4) * (w // 4)
    drop = [Dropout(dropout)] if dropout else []
    layers: list[Layer] = [Reshape((h, w, channels)), Conv2d(channels, c1, 4, 2, 1, "he", c.leak), LeakyReLU(c.leak),
                           *drop, Conv2d(c1, c2, 4, 2, 1, "he", c.leak)]
    layers += [_bn(c, c2, True)] if batchnorm else []
    layers += [LeakyReLU(c.leak), *drop, Flatten()]
    if c.architecture == "dcgan":
        layers += [Dense(grid, c.conv_dense, "he", c.leak), *([_bn(c, c.conv_dense, False)] if batchnorm else []),
                   LeakyReLU(c.leak), *drop]
    return layers


def _feature_width(c: Any) -> int:
    h, w, _ = image_shape(c)
    return c.conv_dense if c.architecture == "dcgan" else c.conv_channels[1] * (h // 4) * (w // 4)


def check_architecture(c: Any, defaults: dict[str, Any], mlp_only: tuple[str, ...]) -> None:
    """A convolutional config: images whose sides divide by 4, two channel counts, and no MLP-only setting changed."""
    if c.architecture not in CONVOLUTIONAL:
        for name in ("conv_channels", "conv_dense"):
            if name in defaults and getattr(c, name) != defaults[name]:
                raise SettingError(c.FAMILY, name, getattr(c, name),
                                   f"sizes a convolutional architecture (the dcgan presets), not {c.architecture}")
        return
    image_shape(c)
    if c.architecture == "dcgan-compact" and c.conv_dense != defaults["conv_dense"]:
        raise SettingError(c.FAMILY, "conv_dense", c.conv_dense,
                           "sizes the dense layers of the dcgan architecture, which dcgan-compact does not have")
    if len(c.conv_channels) != 2:  # noqa: PLR2004
        raise SettingError(c.FAMILY, "conv_channels", c.conv_channels,
                           f"the {c.architecture} architecture has two convolutions, so two channel counts like 64,128")
    for name in mlp_only:
        if getattr(c, name) != defaults[name]:
            raise SettingError(c.FAMILY, name, getattr(c, name), f"shapes the mlp architecture only, not "
                               f"{c.architecture} (its layers are fixed; conv_channels and conv_dense size them)")
    _check_gan_variant(c)


def _check_gan_variant(c: Any) -> None:
    """What a convolutional D cannot do: pack samples as rows, take a one-hot beside the image, or be
    spectrally normalised with BatchNorm."""
    if getattr(c, "pack", 1) > 1:
        raise SettingError("GAN", "pack", c.pack, f"packing joins samples as rows, which the {c.architecture} "
                           "discriminator's convolutions do not take; use pack 1")
    if getattr(c, "n_classes", 0) and c.conditioning == "concat":
        raise SettingError("GAN", "conditioning", c.conditioning, f"the {c.architecture} discriminator takes "
                           "images, not a one-hot beside them; use conditioning projection")
    if getattr(c, "d_spectral_norm", False) and has_batchnorm(c.d_batchnorm):
        raise SettingError("GAN", "d_spectral_norm", c.d_spectral_norm, f"the spectrally normalised "
                           f"{c.architecture} has no BatchNorm in D; set d_batchnorm no")


def has_batchnorm(flags: Any) -> bool:
    """Whether BatchNorm flags (one for all layers, or one per layer) ask for any."""
    return flags is True or (isinstance(flags, list) and any(flags))
