"""The layer contract (see :mod:`tinygan.engine.layers`): the base class, and rebuilding layers from a description."""

from __future__ import annotations

import inspect
from typing import Any

from ...backend import Array, Ops, Random, Workspace, kernels_for
from ...backend.pool import block_pool

_LAYER_TYPES: dict[str, type[Layer]] = {}


class Layer:
    """Base class: a parameter-free, state-free identity."""

    training: bool = True
    writes_first: bool = False  # backward can write a stale gradient buffer instead of adding to it
    grads_stale: bool = False  # the gradient arrays hold old values: write, don't add (see start_gradients)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _LAYER_TYPES[cls.__name__] = cls  # so that layer_from_spec finds every layer type by name
        if "backward" in cls.__dict__ and "writes_first" not in cls.__dict__:
            cls.writes_first = False  # a backward of its own adds, unless its class says it can write

    def bind(self, xp: Any, rng: Random) -> None:
        """Receive the array namespace and the network's random generator.

        ``ops`` and ``work`` let a layer keep its cached intermediates in arrays reused from step
        to step (see :class:`~tinygan.backend.Workspace`); what it returns is always a new array.
        """
        self.xp = xp
        self.rng = rng
        self.ops = Ops(xp, rng.backend.matmul)
        self.work = Workspace(xp)
        self.kernels = kernels_for(xp)  # fused GPU kernels for multi-pass formulas (None off CuPy)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the trainable parameters, in a fixed order."""
        return {}

    def init_params(self, params: dict[str, Array]) -> None:
        """Fill freshly bound parameter views with their initial values."""

    def set_params(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Adopt views into the network's flat parameter and gradient buffers."""
        self.params, self.grads = params, grads

    def buffers(self) -> dict[str, Array]:
        """Non-trained state saved with the model (BatchNorm running statistics)."""
        return {}

    def add_gradient(self, name: str, compute: Any) -> None:
        """``grads[name] += compute(out)``, or ``grads[name] = compute(out)`` while the buffer is stale.

        ``compute(out)`` returns the gradient, written into ``out`` where the namespace allows: straight
        into the gradient buffer when it is stale, else into reused scratch space that is then added.
        """
        grad = self.grads[name]
        if self.grads_stale:
            value = compute(grad if self.ops.native else None)
            if value is not grad:
                grad[...] = value
        else:
            grad += compute(self.work.get(f"d{name}", grad.shape, grad.dtype))

    def by_rows(self, fn: Any, x: Array) -> None:
        """``fn(lo, hi)`` over blocks of ``x``'s rows, on every core (NumPy and CuPy: out= slices).

        For elementwise work only -- each element meets the same operations whatever the blocks --
        so the result is the same, bit for bit, as one call over all the rows.
        """
        n = x.shape[0]
        block_pool().run(fn, n, x.size // n if n else 1)

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """The layer's type and constructor arguments, as JSON-able data that rebuilds it."""
        init = type(self).__init__
        params = [] if init is object.__init__ else list(inspect.signature(init).parameters.values())[1:]
        names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        missing = [name for name in names if not hasattr(self, name)]
        if missing or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            raise TypeError(
                f"layer {type(self).__name__} cannot describe itself: store each constructor argument "
                f"as an attribute of the same name ({', '.join(missing) or 'no *args/**kwargs'})"
            )
        return {"type": type(self).__name__, **{name: getattr(self, name) for name in names}}


def layer_from_spec(spec: dict[str, Any]) -> Layer:
    """Rebuild a layer from :meth:`Layer.spec` output.

    Any subclass of :class:`Layer` defined (imported) before the call is found by its name.
    """
    args = dict(spec)
    kind = args.pop("type", None)
    if kind not in _LAYER_TYPES:
        raise ValueError(
            f"unknown layer type {kind!r}: expected one of {', '.join(_LAYER_TYPES)} "
            "(import the module that defines a custom layer before loading)"
        )
    return _LAYER_TYPES[kind](**args)


def clone_layer(layer: Layer) -> Layer:
    """A fresh, unbound layer built with the same constructor arguments as ``layer``."""
    return layer_from_spec(layer.spec())
