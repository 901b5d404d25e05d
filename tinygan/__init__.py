"""tinygan: a from-scratch engine with hand-written backpropagation for GANs and VAEs, on NumPy or CuPy."""

from .api import GAN, VAE
from .backend import Backend, BackendError, get_backend
from .config import PRESETS, GANConfig
from .data import Dataset, load_dataset
from .errors import CheckpointError, DataError, DivergenceError
from .layers import (
    BatchNorm,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    Maxout,
    ReLU,
    Reshape,
    Sigmoid,
    Tanh,
)
from .losses import bce_with_logits, softmax_cross_entropy
from .network import Sequential, mlp
from .optim import SGD, Adam
from .trainer import Progress
from .vae_config import VAE_PRESETS, VAEConfig

__version__ = "0.1.0"

__all__ = [
    "GAN",
    "GANConfig",
    "PRESETS",
    "VAE",
    "VAEConfig",
    "VAE_PRESETS",
    "CheckpointError",
    "DataError",
    "Dataset",
    "DivergenceError",
    "Progress",
    "load_dataset",
    "Adam",
    "Backend",
    "BackendError",
    "BatchNorm",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "LeakyReLU",
    "Maxout",
    "ReLU",
    "Reshape",
    "SGD",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "bce_with_logits",
    "get_backend",
    "mlp",
    "softmax_cross_entropy",
]
