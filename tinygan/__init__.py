"""tinygan: a from-scratch engine with hand-written backpropagation for GANs and VAEs, on NumPy or CuPy."""

from .backend import Backend, BackendError, get_backend
from .data import Dataset, load_dataset
from .engine.layers import (
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
from .engine.logit_losses import bce_with_logits, softmax_cross_entropy
from .engine.network import Sequential, mlp
from .engine.optim import SGD, Adam
from .evaluation.own_data import evaluate
from .interfaces.api import GAN, VAE
from .io.errors import CheckpointError, DataError, DivergenceError, MemoryRequestError
from .models.config import PRESETS, GANConfig
from .models.vae_config import VAE_PRESETS, VAEConfig
from .training.trainer import Progress

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
    "MemoryRequestError",
    "Progress",
    "evaluate",
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
