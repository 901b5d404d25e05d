"""Where a NumPy training step spends its time: each layer type's forward and backward, Adam, the rest.

    python benchmarks/profile_step.py --model default --batch-sizes 64,256 --steps 100

Each part's time is its own (exclusive): a timed call's time less that of the timed calls
inside it. "Python and the rest" is the step's time less every timed part: the glue in
``GAN.device_step``, the loss's few small array operations, packing, and the interpreter.
The timers cost a few microseconds per step, so the total is the plain step's time
within noise; `bench_step.py` is the benchmark, this script only splits it up.

Last, the same step with every layer 4 units wide at batch 2: its arrays are so small that
its time is the step's Python and per-call dispatch, which a step of any size pays too.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections import defaultdict
from typing import Any

from _runners import DATA_SHAPE, make_tinygan_runner, set_threads, threads

from tinygan.averaging import AveragedNetwork
from tinygan.config import preset_config
from tinygan.critic import Critic
from tinygan.gan import GAN
from tinygan.layers import Layer
from tinygan.network import Sequential
from tinygan.optim import Adam


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
    profile.wrap(GAN, "noise", "random normals for z")
    profile.wrap(Critic, "gradients", "D's loss and its gradient")
    profile.wrap(GAN, "generator_gradients", "G's loss and its gradient")


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
    """Median time of the ``model`` step with every hidden layer and the latent 4 wide, at batch 2."""
    config = preset_config(model, DATA_SHAPE)
    narrow = {"latent_dim": 4, "g_hidden": [4] * len(config.g_hidden), "d_hidden": [4] * len(config.d_hidden)}
    runner, _ = make_tinygan_runner("numpy", model, 2, overrides=narrow)
    runner.run(warmup)
    return statistics.median(runner.run(steps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--batch-sizes", default="64,256")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="BLAS and pool threads (default: all cores)")
    args = ap.parse_args()
    if args.threads:
        set_threads(args.threads)
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
