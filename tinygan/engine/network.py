"""The network container: layers chained forward and backward over one flat parameter buffer.

All parameters of a network live in one contiguous 1-D array, and all their
gradients in another of the same size; each layer holds reshaped views into
them. Zeroing gradients is one fill, and an optimizer step is a handful of
vectorised operations over a single array, on any backend -- the idea behind
"multi-tensor" fused optimizers, with no list of tensors to loop over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import Array, Backend, Random, get_backend, to_numpy
from .layers import BatchNorm, Dense, Dropout, Layer, LeakyReLU, Maxout, ReLU, Sigmoid, Tanh


class Sequential:
    """Layers applied in order; ``backward`` runs them in reverse.

    ``params`` and ``grads`` are the flat buffers (length ``n_params``) of dtype
    ``dtype`` on ``backend``. ``seed`` seeds the network's generator, used for
    initialisation and dropout masks.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        backend: str | Backend | None = None,
        dtype: str = "float32",
        seed: int | None = 0,
        rng: Random | None = None,
    ) -> None:
        self.backend = get_backend(backend)
        self.layers = list(layers)
        self.dtype = dtype
        xp = self.backend.xp
        self.rng = rng or self.backend.rng(seed)
        shapes = [layer.param_shapes() for layer in self.layers]
        self.n_params = count_params(self.layers)
        self.params = xp.zeros((self.n_params,), dtype=self.backend.dtype(dtype))
        self.grads = xp.zeros((self.n_params,), dtype=self.backend.dtype(dtype))
        offset = 0
        for layer, layer_shapes in zip(self.layers, shapes, strict=True):
            params, grads = {}, {}
            for name, shape in layer_shapes.items():
                size = math.prod(shape)
                params[name] = xp.reshape(self.params[offset : offset + size], shape)
                grads[name] = xp.reshape(self.grads[offset : offset + size], shape)
                offset += size
            layer.bind(xp, self.rng)
            layer.set_params(params, grads)
            layer.init_params(params)

    def forward(self, x: Array) -> Array:
        """Run ``x: (N, n_in)`` through every layer; returns ``(N, n_out)``."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        """Backpropagate ``dy = dL/d(output)``; accumulates parameter gradients and returns dL/d(input).

        ``need_dx=False`` skips the input gradient of the first layer;
        ``need_dparams=False`` leaves ``grads`` untouched (gradient flows through only).
        """
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            dy = layer.backward(dy, need_dx=need_dx or i > 0, need_dparams=need_dparams)
            if need_dparams:
                layer.grads_stale = False  # written now: the next backward adds
        return dy

    def zero_grad(self) -> None:
        """Reset every gradient to zero (one fill of the flat buffer)."""
        self.grads[...] = 0
        for layer in self.layers:
            layer.grads_stale = False

    def start_gradients(self) -> None:
        """Begin new gradients without zeroing: the next backward writes them, later ones add.

        Saves a fill of the whole buffer and one pass over each gradient. Layers that can only add
        (``writes_first`` false, as a user's layer may be) get their part zeroed instead. Until that
        backward, ``grads`` holds old values.
        """
        for layer in self.layers:
            if layer.writes_first:
                layer.grads_stale = True
            else:
                for grad in getattr(layer, "grads", {}).values():
                    grad[...] = 0

    def train(self, mode: bool = True) -> Sequential:
        """Training mode: BatchNorm uses batch statistics, Dropout drops."""
        for layer in self.layers:
            layer.training = mode
        return self

    def eval(self) -> Sequential:
        """Evaluation mode: BatchNorm uses running statistics, Dropout is the identity."""
        return self.train(False)

    def named_arrays(self) -> dict[str, Array]:
        """Live views of every parameter and buffer, named ``"<layer index>.<name>"``."""
        named = {}
        for i, layer in enumerate(self.layers):
            for name, a in {**getattr(layer, "params", {}), **layer.buffers()}.items():
                named[f"{i}.{name}"] = a
        return named

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers as host NumPy arrays."""
        return {k: self.backend.to_numpy(a).copy() for k, a in self.named_arrays().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays from :meth:`state_dict` output into this network; names and shapes must match."""
        own = self.named_arrays()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"state does not match the network: missing {missing or 'none'}, "
                f"unexpected {unexpected or 'none'}"
            )
        for k, a in own.items():
            value = to_numpy(state[k])
            if tuple(value.shape) != tuple(a.shape):
                raise ValueError(f"state '{k}' has shape {tuple(value.shape)}, network expects {tuple(a.shape)}")
            a[...] = self.backend.asarray(value, dtype=a.dtype)


def count_params(layers: Sequence[Layer]) -> int:
    """Number of trainable values in ``layers`` (without building them)."""
    return sum(math.prod(shape) for layer in layers for shape in layer.param_shapes().values())


def mlp(
    sizes: Sequence[int],
    activation: str = "leaky_relu",
    out_activation: str | None = None,
    batchnorm: Sequence[bool] | bool = False,
    dropout: float = 0.0,
    leak: float = 0.2,
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    pieces: int = 5,
) -> list[Layer]:
    """Layers of a multi-layer perceptron ``sizes[0] → … → sizes[-1]``.

    Each hidden block is Dense → [BatchNorm] → activation → [Dropout];
    ``batchnorm`` is one flag for all hidden blocks or one per block. The
    output block is Dense → ``out_activation`` (``None`` for raw logits).
    Dense layers get He initialisation before ReLU-family activations and maxout, and
    Glorot otherwise. With ``activation="maxout"`` a hidden block of width F has a Dense
    of ``F·pieces`` outputs feeding ``Maxout(pieces)``.
    """
    n_hidden = len(sizes) - 2
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least an input and an output size, got {list(sizes)}")
    flags = [batchnorm] * n_hidden if isinstance(batchnorm, bool) else list(batchnorm)
    if len(flags) != n_hidden:
        raise ValueError(f"batchnorm needs {n_hidden} flags (one per hidden layer), got {len(flags)}")
    layers: list[Layer] = []
    width = pieces if activation == "maxout" else 1  # a maxout unit takes `pieces` Dense outputs
    for i in range(n_hidden):
        init = "he" if activation in ("relu", "leaky_relu", "maxout") else "glorot"
        layers.append(Dense(sizes[i], sizes[i + 1] * width, init, leak if activation == "leaky_relu" else 0.0))
        if flags[i]:
            layers.append(BatchNorm(sizes[i + 1] * width, momentum=bn_momentum, eps=bn_eps))
        layers.append(make_activation(activation, leak, pieces))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(sizes[-2], sizes[-1], "glorot"))
    if out_activation:
        layers.append(make_activation(out_activation, leak))
    return layers


def make_activation(name: str, leak: float = 0.2, pieces: int = 5) -> Layer:
    """An activation layer by name: relu, leaky_relu, maxout, tanh or sigmoid."""
    factories = {
        "relu": ReLU,
        "leaky_relu": lambda: LeakyReLU(leak),
        "maxout": lambda: Maxout(pieces),
        "tanh": Tanh,
        "sigmoid": Sigmoid,
    }
    if name not in factories:
        raise ValueError(f"unknown activation {name!r}: expected one of {', '.join(factories)}")
    return factories[name]()
