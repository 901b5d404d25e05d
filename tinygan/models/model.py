"""What every tinygan model shares: networks with their optimizers, step counters, and its state.

A model (:class:`~tinygan.models.gan.GANModel`, :class:`~tinygan.models.vae.VAEModel`) names its networks
(``G``, ``D``), each with
the constructor argument that takes its layers and the Adam optimizer that trains it. From those
names this module saves and restores everything a checkpoint holds of a model -- parameters,
BatchNorm statistics, optimizer moments and step counts, averaged weights, the random state and
the step -- and rebuilds a model from a file, checking it before allocating what it asks for.

The step is counted twice: ``step`` on the host, for bookkeeping (log intervals, checkpoint
names), and ``steps_done`` as a 0-d array on the device, the only count a kernel ever sees.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, ClassVar

import numpy as np

from ..backend import Backend, get_backend
from ..backend.cuda import RecordedStep
from ..engine.layers import Conv2d, ConvTranspose2d, Dense, Flatten, Layer, ProjectionHead, Reshape, layer_from_spec
from ..engine.network import Sequential, count_params
from ..engine.optim import Adam
from ..io.errors import DivergenceError, MemoryRequestError
from ..io.memory import check_fits, shortfall
from .arguments import count, plain, shape
from .averaging import AveragedNetwork


def decayed(lr: float, decay: float, done: Any, total: Any) -> Any:
    """``lr · decay^(done / total)``: the learning rate after ``done`` of ``total`` steps.

    Works on host numbers and on 0-d device arrays alike.
    """
    return lr * decay ** (done / total)


class Model:
    """Base class: a config, networks named in :attr:`NETWORKS`, their optimizers, counters and state.

    Subclasses set ``kind`` (the checkpoint's model name), ``config_class``, ``NETWORKS``
    (network name → the constructor argument that takes its layers), ``PROGRESS``, ``RECONSTRUCTS``,
    ``PARAM_COPIES`` and ``SIZE_FIELDS`` (what a memory check counts and names), build ``self.nets`` and
    ``self.optimizers`` with the same names, and may set ``self.averaged`` (network name →
    :class:`~tinygan.models.averaging.AveragedNetwork`).
    """

    kind: ClassVar[str]
    config_class: ClassVar[type]
    NETWORKS: ClassVar[dict[str, str]]
    PROGRESS: ClassVar[str]  # the metrics of a progress line, as a format string over a metric record
    RECONSTRUCTS: ClassVar[bool] = False  # whether it has an encoder: ``reconstruct(x)`` and ``elbo(x)``
    # Copies of each parameter training holds: value, gradient, Adam's two moments (and an average, its buffer).
    PARAM_COPIES: ClassVar[int] = 4
    # Config fields that decide how much memory a model takes, named when it cannot have it.
    SIZE_FIELDS: ClassVar[tuple[str, ...]] = ("latent_dim", "batch_size")

    def __init__(self, config: Any, backend: str | Backend | None, seed: int) -> None:
        seed = count(seed, "seed")  # NumPy's integers too: the seed is saved as JSON
        self.config = config
        self.backend = get_backend(backend)
        self.xp = xp = self.backend.xp
        self.dtype = self.backend.dtype(config.dtype)
        self.seed = seed
        self.rng = self.backend.rng(seed)
        self.sample_rng = self.backend.rng(seed + 7919)  # its own stream: sampling never shifts training
        self.nets: dict[str, Sequential] = {}
        self.optimizers: dict[str, Adam] = {}
        self.averaged: dict[str, AveragedNetwork] = {}
        self.dataset_name: str | None = None  # what it was trained on, kept in checkpoints for `eval`
        self.step = 0  # training steps taken, on the host: for bookkeeping, never passed to a kernel
        self.steps_done = xp.zeros((), dtype=xp.float64)  # the same count, on the device
        self.horizon = xp.ones((), dtype=xp.float64)  # steps in the run, for a learning-rate decay

    def check_memory(self, nets: list[list[Layer]]) -> None:
        """Raise :class:`~tinygan.io.errors.MemoryRequestError` (a ``ValueError``) naming the config's sizes
        when training networks of ``nets`` (layer lists, not yet built) with the config's batch would take
        more memory than the process can have: checked before anything is allocated."""
        c = self.config
        params = sum(count_params(layers) for layers in nets)
        nbytes = np.dtype(c.dtype).itemsize * (self.PARAM_COPIES * params + activation_values(nets, c.batch_size))
        problem = shortfall(nbytes)
        if problem:
            error = MemoryRequestError(f"{self.kind.upper()} config ({_sizes(c, self.SIZE_FIELDS)}): a model of "
                                       f"{params:,} parameters: {problem}")
            error.request = f"a model of {params:,} parameters: {problem}"  # for callers that name the sizes
            raise error

    def check_rows(self, n: int, asked_by: str, nets: tuple[str, ...] | None = None, per_row: int = 0) -> None:
        """Raise :class:`~tinygan.io.errors.MemoryRequestError` when passing ``n`` rows through the built
        networks ``nets`` (by name; all by default), ``per_row`` values more each, would take more memory
        than the process can have; ``asked_by`` names the request."""
        layers = [net.layers for name, net in self.nets.items() if nets is None or name in nets]
        nbytes = np.dtype(self.config.dtype).itemsize * n * (activation_values(layers, 1) + per_row)
        check_fits(nbytes, asked_by, MemoryRequestError)

    @classmethod
    def from_preset(
        cls,
        name: str | None = None,
        data_shape: tuple[int, ...] = (28, 28),
        backend: str | Backend | None = None,
        seed: int = 0,
        data_kind: str | None = None,
        **overrides: Any,
    ) -> Any:
        """A model from preset ``name`` (the family's first by default: ``default`` for a GAN, ``vae``
        for a VAE) for samples of ``data_shape``; ``overrides`` set any field of its config.

        ``data_kind`` defaults to ``"points"`` for 1-D samples of size 2, which use the family's
        preset for points, and ``"image"`` otherwise.
        """
        presets = cls.config_class.PRESETS
        data_shape, overrides = shape(data_shape), {k: plain(v) for k, v in overrides.items()}  # np.int64 → int
        if data_kind is None:
            data_kind = "points" if data_shape == (2,) else "image"
        config = cls.config_class.from_preset(name or next(iter(presets)), data_shape, data_kind, **overrides)
        return cls(config, backend, seed)

    def _network(self, layers: list[Layer]) -> Sequential:
        for layer in layers:
            layer.spec()  # a layer that cannot describe itself could not be averaged or saved: say so now
        return Sequential(layers, self.backend, self.config.dtype, rng=self.rng)

    @property
    def n_params(self) -> int:
        """Trainable values of all networks together."""
        return sum(net.n_params for net in self.nets.values())

    def set_horizon(self, total_steps: int) -> None:
        """The run's length in steps, over which a learning-rate decay runs."""
        self.horizon[...] = max(int(total_steps), 1)

    def _count_device_step(self) -> None:
        """The device's part of finishing a step: the step count there, and the averaged weights."""
        self.steps_done += 1
        for average in self.averaged.values():
            average.update(self.steps_done)

    def _recorded(self, draws_noise: bool) -> RecordedStep:
        """The recorded version of :meth:`device_step` (one per input signature), built on first use.

        Its key holds what reaches kernels as host values -- the config's learning rates and
        targets -- and the random generator's identity (a resume replaces it).
        """
        steps = self.__dict__.setdefault("_recordings", {})
        if draws_noise not in steps:
            steps[draws_noise] = RecordedStep(
                self.device_step, graphs=self.backend.records_steps,
                key=lambda: (self._host_values(), id(self.rng._gen)),
                keep=self._reused_buffers,
            )
        return steps[draws_noise]

    def _host_values(self) -> Any:
        """The config's values that reach kernels as host numbers (all of it, unless a model says less)."""
        return json.dumps(self.config.to_json(), sort_keys=True)

    def _reused_buffers(self) -> list:
        """Arrays a step reuses from step to step (layer workspaces), which a recording must keep alive."""
        nets = [*self.nets.values(), *(average.net for average in self.averaged.values())]
        return [a for net in nets for layer in net.layers for a in layer.work.arrays.values()]

    def describe(self, net: str) -> str:
        """A network's name in messages (``generator`` for ``G``)."""
        return self.NETWORKS.get(net, net)

    # -- state: what a checkpoint holds of the model -----------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, metadata) from which :meth:`from_state` rebuilds this model, training state included.

        Raises :class:`~tinygan.io.errors.DivergenceError` if a value is not finite: a diverged
        model must never replace the last good checkpoint.
        """
        arrays = {}
        for name, net in self.nets.items():
            arrays.update({f"{name}/{k}": v for k, v in net.state_dict().items()})
            arrays.update({f"opt_{name.lower()}/{k}": v for k, v in self.optimizers[name].state_dict().items()})
        for name, average in self.averaged.items():
            arrays.update({f"{name}_avg/{k}": v for k, v in average.state_dict().items()})
        for key, a in arrays.items():
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise DivergenceError(f"training diverged at step {self.step}: {key} is not finite")
        meta = {
            "model": self.kind,
            "config": self.config.to_json(),
            **{arg: [layer.spec() for layer in self.nets[name].layers] for name, arg in self.NETWORKS.items()},
            "seed": self.seed,
            "step": self.step,
            "dataset": self.dataset_name,
            "backend": self.backend.name,
            "rng": self.rng.get_state(),
        }
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], backend: str | Backend | None = None):
        """Rebuild a model from :meth:`state` output; raises ``ValueError`` saying what does not fit."""
        try:
            config = cls.config_class.from_json(meta.get("config"))
            layers = {name: [layer_from_spec(spec) for spec in _specs(meta, arg)] for name, arg in cls.NETWORKS.items()}
            seed = meta.get("seed", 0)
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise ValueError(f"seed {seed!r} is not a non-negative integer")
        except Exception as e:  # the description comes from a file: any failure means it is unusable
            raise ValueError(f"invalid model configuration ({e})") from None
        for name, net_layers in layers.items():  # before allocating what the file asks for
            wanted = count_params(net_layers)
            held = sum(a.size for k, a in arrays.items() if k.startswith(name + "/"))
            if wanted > held:
                raise ValueError(
                    f"does not fit this model ({name} needs {wanted} parameters, the file holds {held} values for it)"
                )
        try:
            model = cls(config, backend, seed, **{cls.NETWORKS[name]: v for name, v in layers.items()})
        except MemoryRequestError:
            raise  # a model this machine cannot hold, not a bad description
        except (TypeError, ValueError) as e:
            raise ValueError(f"invalid model configuration ({e})") from None
        model.restore(arrays, meta)
        return model

    @classmethod
    def state_allowance(cls, meta: dict[str, Any]) -> int:
        """Bytes that the arrays of the model ``meta`` describes take at most (0 if it describes none).

        Parameters, their two Adam moments, an average and buffers (at most one value per
        parameter) in float64: what a checkpoint's compressed arrays may inflate to.
        """
        try:
            values = sum(count_params([layer_from_spec(s) for s in _specs(meta, arg)]) for arg in cls.NETWORKS.values())
        except Exception:  # an unusable description is reported by from_state, with its reason
            return 0
        return 8 * (5 * values + 1024 * len(cls.NETWORKS))

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Load networks, optimizers, step and random state from :meth:`state` output into this model.

        Raises ``ValueError`` saying what is wrong: an invalid training state, or arrays that do
        not fit this model.
        """
        step, rng = meta.get("step", 0), meta.get("rng", {})
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"invalid training state (step {step!r} is not a count)")
        if not isinstance(rng, dict):
            raise ValueError("invalid training state (random-generator state is not a mapping)")
        odd = [k for k, v in arrays.items() if np.asarray(v).dtype.kind not in "biuf"]
        if odd:
            raise ValueError(f"array {odd[0]!r} is not numeric")
        # A save refuses non-finite values, so a file holding one was damaged or forged: never a good state.
        bad = [k for k, v in arrays.items() if np.asarray(v).dtype.kind == "f" and not np.isfinite(v).all()]
        if bad:
            raise ValueError(f"array {bad[0]!r} holds NaN or infinite values (a diverged state, not a good checkpoint)")
        parts = {}
        for name, net in self.nets.items():
            parts[name], parts[f"opt_{name.lower()}"] = net.load_state_dict, self.optimizers[name].load_state_dict
        parts.update({f"{name}_avg": average.load_state_dict for name, average in self.averaged.items()})
        try:
            for prefix, load in parts.items():
                load({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix + "/")})
        except (KeyError, ValueError, TypeError, IndexError, OverflowError) as e:
            raise ValueError(f"does not fit this model ({e})") from None
        try:
            self.rng.set_state(rng, fallback_seed=self.seed * 1_000_003 + step)
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise ValueError(f"invalid random-generator state ({e})") from None
        self.step = step
        self.steps_done[...] = step
        name = meta.get("dataset")
        self.dataset_name = name if isinstance(name, str) else None


def _sizes(config: Any, names: tuple[str, ...]) -> str:
    """The size fields of ``config`` set apart from their defaults (all of them if none is), for a message."""
    names = tuple(name for name in names if hasattr(config, name))
    if not is_dataclass(config):
        return ", ".join(f"{name} {getattr(config, name)}" for name in names)
    defaults = {f.name: f.default_factory() if f.default_factory is not MISSING else f.default for f in fields(config)}
    changed = [name for name in names if getattr(config, name) != defaults.get(name, MISSING)]
    return ", ".join(f"{name} {getattr(config, name)}" for name in changed or names)


def activation_values(nets: list[list[Layer]], rows: int) -> int:
    """Values a training step on ``rows`` rows holds, roughly: each network's input, each Dense or convolution
    output and a projection's class scores about eight times (forward values, their gradients, BatchNorm and
    activation temporaries), and the patches a convolution gathers once."""
    values = 0
    for layers in nets:
        n_in, _, outputs = walk(layers)
        classes = sum(layer.n_classes for layer in layers if isinstance(layer, ProjectionHead))
        values += 8 * ((n_in or 0) + classes) + sum(8 * out + patches for out, patches in outputs)
    return rows * values


def walk(layers: list[Layer]) -> tuple[int | None, int | None, list[tuple[int, int]]]:
    """(input features, output features, (output values, patch values) per sample of each Dense or
    convolution) of ``layers``, from their shapes alone: ``None`` where they have no Dense or Reshape."""
    shape: tuple[int, ...] | None = None
    n_in, outputs = None, []
    for layer in layers:
        if isinstance(layer, Reshape):
            n_in, shape = n_in or math.prod(layer.shape), layer.shape
        elif isinstance(layer, (Conv2d, ConvTranspose2d)) and shape is not None and len(shape) == 3:
            out = layer.output_shape(shape[0], shape[1])
            grid = math.prod(out[:2]) if isinstance(layer, Conv2d) else math.prod(shape[:2])
            shape = out
            outputs.append((math.prod(out), grid * layer.kernel**2 * layer.c_image))
        elif isinstance(layer, Dense):
            n_in, shape = n_in or layer.n_in, (layer.n_out,)
            outputs.append((layer.n_out, 0))
        elif isinstance(layer, Flatten) and shape is not None:
            shape = (math.prod(shape),)
    return n_in, None if shape is None else math.prod(shape), outputs


def check_io(layers: list[Layer], n_in: int, n_out: int, name: str) -> None:
    """Raise ``ValueError`` unless ``layers`` map ``n_in`` to ``n_out`` features (from the first Dense or
    Reshape, through the convolutions' shapes, to the last Dense or Flatten)."""
    got_in, got_out, _ = walk(layers)
    if got_in != n_in or got_out != n_out:
        got = f"{got_in} → {got_out}" if got_in else "no Dense layer"
        raise ValueError(f"{name} must map {n_in} → {n_out} features, got {got}")


def _specs(meta: dict[str, Any], name: str) -> list[dict[str, Any]]:
    specs = meta.get(name)
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ValueError(f"{name} description is not a list of layers")
    return specs
