"""Layers with hand-written backpropagation.

The contract, the same for every layer:

* ``forward(x)`` returns ``y`` and caches what ``backward`` needs.
* ``backward(dy)`` returns ``dx = dL/dx`` and *adds* ``dL/dparam`` into the
  layer's gradient arrays -- or, right after the network's ``start_gradients``
  (``grads_stale`` set), *writes* it there, which saves zeroing the buffer and
  one pass over it. It never updates weights (the optimizer does that) and
  never writes into ``dy``.
* A layer keeps only its latest forward's caches, in buffers it reuses from
  step to step, so each ``backward`` belongs to the ``forward`` just before
  it: run them in alternation (forward A, backward A, forward B, backward B).
* Parameters and gradients are views into the owning network's flat buffers,
  handed over by :meth:`Layer.bind`; a layer never allocates its own.
* Every constructor argument is stored as an attribute of the same name, so
  that :meth:`Layer.spec` can describe the layer and :func:`layer_from_spec`
  rebuild it (checkpoints, averaged copies). Subclasses, the user's own
  included, are found by their class name.

``backward(dy, need_dx=False)`` skips the input gradient (the first layer of
a network has no use for it) and ``need_dparams=False`` skips the parameter
gradients (the generator's update needs dL/dx through the discriminator, not
the discriminator's own gradients).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from .backend import Array, Ops, Random, Workspace

_LAYER_TYPES: dict[str, type[Layer]] = {}


class Layer:
    """Base class: a parameter-free, state-free identity."""

    training: bool = True
    writes_first: bool = False  # backward can write a stale gradient buffer instead of adding to it
    grads_stale: bool = False  # the gradient arrays hold old values: write, don't add (see start_gradients)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _LAYER_TYPES[cls.__name__] = cls  # so that layer_from_spec finds every layer type by name

    def bind(self, xp: Any, rng: Random) -> None:
        """Receive the array namespace and the network's random generator.

        ``ops`` and ``work`` let a layer keep its cached intermediates in arrays reused from step
        to step (see :class:`~tinygan.backend.Workspace`); what it returns is always a new array.
        """
        self.xp = xp
        self.rng = rng
        self.ops = Ops(xp, rng.backend.matmul)
        self.work = Workspace(xp)

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


class Dense(Layer):
    """Affine map ``y = x W + b`` with ``x: (N, n_in)``, ``W: (n_in, n_out)``.

    Backward: ``dW = xᵀ dy``, ``db = Σ_rows dy``, ``dx = dy Wᵀ``.
    Initialisation: ``"he"`` (std √(2 / ((1 + leak²) n_in)), for ReLU-family
    activations) or ``"glorot"`` (std √(2 / (n_in + n_out)), for tanh, sigmoid
    or a logit output).
    """

    def __init__(self, n_in: int, n_out: int, init: str = "glorot", leak: float = 0.0) -> None:
        if init not in ("he", "glorot"):
            raise ValueError(f"Dense init must be 'he' or 'glorot', got {init!r}")
        self.n_in, self.n_out, self.init, self.leak = n_in, n_out, init, leak

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.n_in, self.n_out), "b": (self.n_out,)}

    def init_params(self, params: dict[str, Array]) -> None:
        if self.init == "he":
            std = math.sqrt(2.0 / ((1.0 + self.leak**2) * self.n_in))
        else:
            std = math.sqrt(2.0 / (self.n_in + self.n_out))
        w = params["W"]
        w[...] = self.rng.normal(w.shape, w.dtype)
        w *= std
        params["b"][...] = 0

    def forward(self, x: Array) -> Array:
        self.x = x
        y = self.ops.matmul(x, self.params["W"])
        y += self.params["b"]
        return y

    writes_first = True

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if need_dparams:
            self.add_gradient("W", lambda out: self.ops.matmul(self.x.T, dy, out=out))
            self.add_gradient("b", lambda out: self.ops.sum(dy, axis=0, out=out))
        return self.ops.matmul(dy, self.params["W"].T) if need_dx else None


class ReLU(Layer):
    """``y = max(x, 0)``; backward passes ``dy`` where ``x > 0``."""

    def forward(self, x: Array) -> Array:
        self.mask = x > 0
        return self.xp.where(self.mask, x, 0.0)

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        return self.xp.where(self.mask, dy, 0.0) if need_dx else None


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0``, else ``slope·x``; backward scales ``dy`` the same way."""

    def __init__(self, slope: float = 0.2) -> None:
        self.slope = slope

    def forward(self, x: Array) -> Array:
        ops = self.ops
        # dy/dx as a multiplier, 1 where x > 0 and slope elsewhere, made by arithmetic on a 0/1
        # mask: a multiply is many times faster than a masked select (``where``) on a CPU, and
        # 1·(1 − slope) + slope rounds to exactly 1, so y is exactly x there.
        factor = ops.positive_mask(x, out=self.work.get("factor", x.shape, x.dtype))
        factor *= 1 - self.slope
        factor += self.slope
        self.factor = factor
        return ops.multiply(x, factor)

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        return self.ops.multiply(dy, self.factor) if need_dx else None


class Maxout(Layer):
    """Maxout (Goodfellow et al., 2013): ``y_j = max_k x_{j,k}`` over ``pieces`` consecutive inputs.

    ``x: (N, F·pieces)`` → ``y: (N, F)``; put a Dense of ``F·pieces`` outputs in front of it. Each
    unit is then a convex piecewise-linear function of the layer input with ``pieces`` pieces.
    Backward routes ``dy_j`` to the winning piece only: ``dx_{j,k} = dy_j · [k = argmax_k x_{j,k}]``.
    """

    def __init__(self, pieces: int = 5) -> None:
        if pieces < 1:
            raise ValueError(f"Maxout pieces must be >= 1, got {pieces}")
        self.pieces = pieces

    def forward(self, x: Array) -> Array:
        xp = self.xp
        n, width = x.shape
        if width % self.pieces:
            raise ValueError(f"Maxout({self.pieces}) needs a multiple of {self.pieces} inputs, got {width}")
        grouped = xp.reshape(x, (n, width // self.pieces, self.pieces))
        # One-hot of the winner (the first one on ties, as argmax picks), kept for backward.
        winner = xp.argmax(grouped, axis=2)
        self.onehot = xp.astype(winner[..., None] == xp.arange(self.pieces), x.dtype)
        return xp.max(grouped, axis=2)

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if not need_dx:
            return None
        dx = self.onehot * dy[..., None]
        return self.xp.reshape(dx, (dy.shape[0], dy.shape[1] * self.pieces))


class Tanh(Layer):
    """``y = tanh x``; ``dx = dy (1 − y²)``."""

    def forward(self, x: Array) -> Array:
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if not need_dx:
            return None
        dx = self.ops.multiply(self.y, self.y)  # y², then 1 − y², then dy·(1 − y²), all in dx
        dx = self.ops.subtract(1.0, dx, out=dx)
        dx *= dy
        return dx


def sigmoid(x: Array, xp: Any) -> Array:
    """Logistic function in its tanh form, σ(x) = ½ tanh(x/2) + ½: no exp, so no overflow."""
    return 0.5 * xp.tanh(0.5 * x) + 0.5


class Sigmoid(Layer):
    """``y = σ(x)``; ``dx = dy · y (1 − y)``."""

    def forward(self, x: Array) -> Array:
        self.y = sigmoid(x, self.xp)
        return self.y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        return dy * self.y * (1.0 - self.y) if need_dx else None


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability ``p`` and scale the rest by 1/(1−p).

    Backward applies the same mask: ``dx = dy · mask``. In evaluation mode it is the identity.
    """

    def __init__(self, p: float = 0.3) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Array) -> Array:
        if not self.training or self.p == 0.0:
            self.mask = None
            return x
        u = self.rng.uniform(x.shape, x.dtype, out=self.work.get("mask", x.shape, x.dtype))
        self.mask = self.ops.at_least_mask(u, self.p, out=u)  # keep (1) where u ≥ p, in place of u
        self.mask *= 1.0 / (1.0 - self.p)
        return self.ops.multiply(x, self.mask)

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if not need_dx:
            return None
        return dy if self.mask is None else dy * self.mask


class BatchNorm(Layer):
    """Batch normalisation over features of ``x: (N, F)``.

    Training: ``x̂ = (x − μ_B) / √(σ²_B + ε)``, ``y = γ x̂ + β`` with the batch's
    mean and (biased) variance; running statistics are updated with
    ``momentum``. Evaluation: the running statistics replace the batch's.

    Backward in training mode, through μ_B and σ²_B as well as x:
    ``dγ = Σ dy·x̂``, ``dβ = Σ dy``,
    ``dx = γ / (N √(σ²_B + ε)) · (N dy − Σ dy − x̂ Σ dy·x̂)``.
    """

    def __init__(self, n_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        self.n_features, self.momentum, self.eps = n_features, momentum, eps

    writes_first = True

    def bind(self, xp: Any, rng: Random) -> None:
        super().bind(xp, rng)
        self.running_mean: Array | None = None  # allocated with the network's dtype in init_params
        self.running_var: Array | None = None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"gamma": (self.n_features,), "beta": (self.n_features,)}

    def init_params(self, params: dict[str, Array]) -> None:
        params["gamma"][...] = 1
        params["beta"][...] = 0
        dtype = params["gamma"].dtype
        self.running_mean = self.xp.zeros((self.n_features,), dtype=dtype)
        self.running_var = self.xp.ones((self.n_features,), dtype=dtype)

    def buffers(self) -> dict[str, Array]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, x: Array) -> Array:
        xp, ops = self.xp, self.ops
        y = None
        if self.training:
            mean = xp.mean(x, axis=0)
            xc = ops.subtract(x, mean, out=self.work.get("xhat", x.shape, x.dtype))
            y = ops.multiply(xc, xc)  # the output array, holding (x − μ)² until y is computed
            var = xp.mean(y, axis=0)
            m, n = self.momentum, x.shape[0]
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += m * var * (n / max(n - 1, 1))  # unbiased, as PyTorch keeps it
        else:
            mean, var = self.running_mean, self.running_var
            xc = ops.subtract(x, mean, out=self.work.get("xhat", x.shape, x.dtype))
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)
        xc *= self.inv_std
        self.xhat = xc
        y = ops.multiply(xc, self.params["gamma"], out=y)
        y += self.params["beta"]
        return y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        xp, ops = self.xp, self.ops
        tmp = self.work.get("tmp", dy.shape, dy.dtype)
        sum_dy = xp.sum(dy, axis=0)
        sum_dy_xhat = xp.sum(ops.multiply(dy, self.xhat, out=tmp), axis=0)
        if need_dparams:
            self.add_gradient("gamma", lambda out: sum_dy_xhat)
            self.add_gradient("beta", lambda out: sum_dy)
        if not need_dx:
            return None
        scale = self.params["gamma"] * self.inv_std
        if not self.training:  # running statistics are constants: the layer is affine
            return dy * scale
        n = dy.shape[0]
        dx = dy * n  # the formula above, term by term, in one new array
        dx -= sum_dy
        dx -= ops.multiply(self.xhat, sum_dy_xhat, out=tmp)
        dx *= scale / n
        return dx
