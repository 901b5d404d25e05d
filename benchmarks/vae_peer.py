"""tinygan's VAE against its PyTorch twin: the same initial weights, batches and noise, then the test −ELBO.

    python benchmarks/vae_peer.py [--dataset fashion-mnist] [--epochs 5] [--seeds 0,1,2] [--json PATH]
        [--n-train N] [--n-test N] [--threads N]

For each seed, tinygan's VAE is built from the ``vae`` preset exactly as ``tinygan train --model vae
--seed S`` builds it, and the twin of ``_torch_peer.TorchVAE`` starts from a copy of its weights.
Each step draws the batch and ε from tinygan's generator in the order ``fit`` draws them (so the
tinygan side is the ``train`` run itself) and hands the same arrays to both. After the run both are
scored by ``VAE.elbo`` on the test set with the same noise: negative ELBO in nats per image, and its
reconstruction and KL terms. Float32 rounding differs between the two libraries, so the two runs
drift apart step by step; what must agree is where training leads.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _report import write_json  # noqa: E402
from _torch_peer import TorchVAE  # noqa: E402

from tinygan import VAE, load_dataset  # noqa: E402
from tinygan.training.state import DataPosition  # noqa: E402
from tinygan.training.trainer import Batches  # noqa: E402


def compare(dataset: str, epochs: float, seed: int, data_dir: str | None = None, n_train: int | None = None,
            n_test: int | None = None) -> dict:
    """Train both on ``dataset`` from the same start with the same batches and noise; their test −ELBO."""
    train = load_dataset(dataset, data_dir=data_dir, split="train", n=n_train)
    test = load_dataset(dataset, data_dir=data_dir, split="test", n=n_test)
    vae = VAE.from_preset("vae", train.sample_shape, "numpy", seed, data_kind=train.kind)
    twin = TorchVAE(vae)
    twin.load_from_tinygan(vae)
    batches = Batches(train.x.reshape(len(train), -1), DataPosition(), vae.rng, vae.config.batch_size, vae.dtype)
    steps = math.ceil(epochs * batches.steps_per_epoch)
    vae.set_horizon(steps)
    seconds = {"tinygan": 0.0, "torch": 0.0}
    for _ in range(steps):
        real, _ = batches.next()
        eps = vae.noise(real.shape[0])
        tic = time.perf_counter()
        vae.train_step(real, eps)
        toc = time.perf_counter()
        twin.train_step(torch.from_numpy(real), torch.from_numpy(eps))
        seconds["tinygan"] += toc - tic
        seconds["torch"] += time.perf_counter() - toc
    ours, theirs = vae.elbo(test.x, seed=0), twin.elbo(test.x, seed=0)
    return {
        "dataset": dataset, "seed": seed, "steps": steps,
        "tinygan": ours, "torch": theirs,
        "relative_difference": (ours["neg_elbo"] - theirs["neg_elbo"]) / theirs["neg_elbo"],
        "train_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=float, default=5.0)
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--n-test", type=int, default=None, help="score only the first N test images")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--threads", type=int, default=1, help="PyTorch intra-op threads (set BLAS threads by env)")
    p.add_argument("--json", help="also write the results as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    print("| seed | steps | tinygan −ELBO (recon + KL) | PyTorch −ELBO (recon + KL) | difference |")
    print("|---:|---:|---|---|---:|")
    for seed in [int(s) for s in args.seeds.split(",")]:
        r = compare(args.dataset, args.epochs, seed, args.data_dir, args.n_train, args.n_test)
        results.append(r)
        a, b = r["tinygan"], r["torch"]
        print(f"| {seed} | {r['steps']} | {a['neg_elbo']:.2f} ({a['recon']:.2f} + {a['kl']:.2f}) "
              f"| {b['neg_elbo']:.2f} ({b['recon']:.2f} + {b['kl']:.2f}) | {100 * r['relative_difference']:+.2f} % |",
              flush=True)
    if args.json:
        write_json(args.json, {"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
