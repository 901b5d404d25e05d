"""Where a NumPy training step spends its time: each layer type's forward and backward, Adam, the rest.

    python benchmarks/profile_step.py --model default --batch-sizes 64,256 --steps 100

Each part's time is its own (exclusive): a timed call's time less that of the timed calls
inside it. "Python and the rest" is the step's time less every timed part: the glue in
``GANModel.device_step``, the loss's few small array operations, packing, and the interpreter.
The timers cost a few microseconds per step, so the total is the plain step's time
within noise; `bench_step.py` is the benchmark, this script only splits it up.

Last, the same step with every layer 4 units wide at batch 2: its arrays are so small that
its time is the step's Python and per-call dispatch, which a step of any size pays too.

``--blocks 32768,131072,0`` instead alternates the elementwise pool's block size from step to
step (0: no blocking), ``--pool-threads 1,2`` its thread count, ``--adam-traffic`` Adam with a
stand-in that only moves Adam's bytes (three passes that read and write what Adam reads and
writes, no arithmetic to speak of); each prints the median step and the median time of Adam in it.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from _runners import DATA_SHAPE, make_tinygan_runner, set_threads, threads

from tinygan.backend import pool
from tinygan.engine.elbo import GaussianLatent
from tinygan.engine.layers import Layer
from tinygan.engine.network import Sequential
from tinygan.engine.optim import Adam
from tinygan.models import vae as vae_module
from tinygan.models.averaging import AveragedNetwork
from tinygan.models.config import GANConfig
from tinygan.models.critic import Critic
from tinygan.models.gan import GANModel
from tinygan.models.vae_config import VAE_PRESETS, VAEConfig


class Profile:
    """Exclusive time per named part, summed over the steps taken while it is installed."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._children = [0.0]  # time of timed calls inside the call being timed, one entry per depth
        self._originals: list[tuple[type, str, Any]] = []

    def wrap(self, owner: type, method: str, name: str) -> None:
        original = owner.__dict__[method]

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                inner = self._children.pop()
                self.totals[name] += spent - inner
                self._children[-1] += spent

        self._originals.append((owner, method, original))
        setattr(owner, method, timed)

    def uninstall(self) -> None:
        for owner, method, original in reversed(self._originals):
            setattr(owner, method, original)
        self._originals.clear()


def layer_types() -> list[type]:
    found, todo = [], [Layer]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def install(profile: Profile) -> None:
    for cls in layer_types():
        for method in ("forward", "backward"):
            if method in cls.__dict__ and cls is not Layer:
                profile.wrap(cls, method, f"{cls.__name__} {method}")
    profile.wrap(Adam, "step", "Adam (both networks)")
    profile.wrap(AveragedNetwork, "update", "averaged G weights")
    profile.wrap(Sequential, "start_gradients", "gradient buffers' first write")
    profile.wrap(GANModel, "noise", "random normals for z")
    profile.wrap(Critic, "gradients", "D's loss and its gradient")
    profile.wrap(GANModel, "generator_gradients", "G's loss and its gradient")
    profile.wrap(vae_module, "bernoulli_nll", "VAE reconstruction loss and its gradient")
    profile.wrap(GaussianLatent, "forward", "VAE latent and KL forward")
    profile.wrap(GaussianLatent, "backward", "VAE latent and KL backward")


def profile_batch(model: str, batch: int, steps: int, warmup: int) -> tuple[float, dict[str, float]]:
    runner, _ = make_tinygan_runner("numpy", model, batch)
    runner.run(warmup)
    plain = statistics.median(runner.run(steps))
    profile = Profile()
    install(profile)
    try:
        timed = sum(runner.run(steps))
    finally:
        profile.uninstall()
    parts = {name: total / steps for name, total in profile.totals.items()}
    parts["Python and the rest"] = timed / steps - sum(parts.values())
    return plain, parts


def python_floor(model: str, steps: int, warmup: int) -> float:
    """Median time of the ``model`` step (GAN or VAE) with every hidden layer and the latent 4 wide, at batch 2."""
    if model in VAE_PRESETS:
        config = VAEConfig.from_preset(model, DATA_SHAPE)
        nets = {"enc_hidden": config.enc_hidden, "dec_hidden": config.dec_hidden}
    else:
        config = GANConfig.from_preset(model, DATA_SHAPE)
        nets = {"g_hidden": config.g_hidden, "d_hidden": config.d_hidden}
    narrow = {"latent_dim": 4} | {name: [4] * len(sizes) for name, sizes in nets.items()}
    if config.architecture != "mlp":  # the convolutions' channels and the dense width instead
        narrow = {"latent_dim": 4, "conv_channels": [4, 4]}
        narrow |= {"conv_dense": 4} if config.architecture == "dcgan" else {}
    runner, _ = make_tinygan_runner("numpy", model, 2, overrides=narrow)
    runner.run(warmup)
    return statistics.median(runner.run(steps))


def compare(model: str, batch: int, variants: dict[str, Callable[[], None]], restore: Callable[[], None],
            steps: int, warmup: int) -> dict[str, tuple[float, float]]:
    """{label: (median step, median Adam time within it)}: each variant is set up by its callable, the
    variants taking turns step by step so that the machine's load falls on them alike; ``restore`` ends it."""
    runner, _ = make_tinygan_runner("numpy", model, batch)
    runner.run(warmup)
    profile = Profile()
    profile.wrap(Adam, "step", "Adam")
    times: dict[str, tuple[list, list]] = {label: ([], []) for label in variants}
    labels = list(variants)
    try:
        for i in range(steps * len(labels)):
            label = labels[i % len(labels)]
            variants[label]()
            profile.totals.clear()
            times[label][0].extend(runner.run(1))
            times[label][1].append(profile.totals["Adam"])
    finally:
        profile.uninstall()
        restore()
    return {label: (statistics.median(s), statistics.median(a)) for label, (s, a) in times.items()}


def pool_variants(blocks: str | None, pool_threads: str | None) -> dict[str, Callable[[], None]]:
    """Elementwise pools of the block sizes of ``--blocks`` (0: none), or the thread counts of ``--pool-threads``."""
    if blocks:
        pools = {f"block {b or 'none'}": pool.BlockPool(pool.thread_count(), block=b or 2**62)
                 for b in (int(b) for b in blocks.split(","))}
    else:
        pools = {f"{n} pool threads": pool.BlockPool(n) for n in (int(t) for t in pool_threads.split(","))}
    return {label: functools.partial(pool.set_pool, p) for label, p in pools.items()}


def _adam_traffic_only(self: Adam, p: Any, g: Any, m: Any, v: Any, s: Any, step_size: Any, c2: Any) -> None:
    """Adam's memory traffic without its arithmetic: reads p, g, m, v and writes p, m, v once each."""
    ops = self.ops
    ops.xp.add(m, g, out=m)
    ops.xp.maximum(v, g, out=v)  # keeps v ≥ 0, so the real Adam's √v stays defined afterwards
    ops.xp.subtract(p, 0.0, out=p)


def adam_traffic_variants() -> dict[str, Callable[[], None]]:
    """Adam as it is, and a stand-in that moves the same bytes with three passes (training goes wrong: timing only)."""
    return {"Adam": functools.partial(setattr, Adam, "_update", ADAM_UPDATE),
            "its memory traffic alone": functools.partial(setattr, Adam, "_update", _adam_traffic_only)}


ADAM_UPDATE = Adam._update


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--batch-sizes", default="64,256")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="BLAS and pool threads (default: all cores)")
    ap.add_argument("--blocks", default=None, help="compare these pool block sizes instead (0: no blocking)")
    ap.add_argument("--pool-threads", default=None, help="compare these elementwise pool thread counts instead")
    ap.add_argument("--adam-traffic", action="store_true", help="compare Adam with its memory traffic alone instead")
    args = ap.parse_args()
    if args.threads:
        set_threads(args.threads)
    if args.blocks or args.pool_threads or args.adam_traffic:
        variants = adam_traffic_variants() if args.adam_traffic else pool_variants(args.blocks, args.pool_threads)
        restore = adam_traffic_variants()["Adam"] if args.adam_traffic else functools.partial(pool.set_pool, None)
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            for label, (step, adam) in compare(args.model, batch, variants, restore, args.steps, args.warmup).items():
                print(f"batch {batch}, {label}: step {step * 1e3:.2f} ms, Adam {adam * 1e3:.2f} ms")
        return
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        plain, parts = profile_batch(args.model, batch, args.steps, args.warmup)
        total = sum(parts.values())
        print(f"\n`{args.model}` model, batch {batch}, {threads()} BLAS threads: median step {plain * 1e3:.2f} ms "
              f"unprofiled, {total * 1e3:.2f} ms profiled (mean of {args.steps})\n")
        print("| part | ms per step | share |\n|---|---:|---:|")
        for name, t in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {t * 1e3:.2f} | {t / total:.0%} |")
    tiny = python_floor(args.model, args.steps, args.warmup)
    print(f"\nThe same step with every layer 4 wide, at batch 2 (Python and dispatch): {tiny * 1e3:.2f} ms (median)")


if __name__ == "__main__":
    main()
