"""Digests of the trained state (every array of the checkpoint, not its JSON description) of short runs
(GAN, each objective, R1 with spectral norm, both conditional
forms, VAE, packed points): a change that should move no bit is checked by comparing them before and after.

    OPENBLAS_NUM_THREADS=1 python benchmarks/run_digests.py out.json

The digests depend on the BLAS kernel, so compare runs on one machine; docs/measurements/run-digests.md
records one machine's digests and the commits they held for.
"""

import hashlib
import json
import os
import sys
import tempfile

import numpy as np

from tinygan import GAN, VAE


def digest(model) -> str:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.npz")
        model.save(path)
        with np.load(path) as z:
            h = hashlib.sha256()
            for k in sorted(set(z.files) - {"__meta__"}):  # the state; its description may gain fields
                h.update(k.encode())
                h.update(np.ascontiguousarray(z[k]).tobytes())
        return h.hexdigest()[:16]

rng = np.random.default_rng(0)
x = (rng.random((256, 8, 8)) * 255).astype(np.uint8)
y = rng.integers(0, 3, 256)
small = dict(g_hidden=[32, 32], g_batchnorm=[False, True], d_hidden=[32], latent_dim=4, batch_size=32)
runs = {}
for loss in ["bce", "hinge", "lsgan", "wgan", "wgan-gp"]:
    extra = dict(d_dropout=0.0) if loss == "wgan-gp" else {}
    g = GAN.from_preset("default", (8, 8), seed=3, loss=loss, **small, **extra)
    g.fit(x, steps=12, log_every=4)
    runs[f"gan-{loss}"] = digest(g)
g = GAN.from_preset("default", (8, 8), seed=3, r1_gamma=1.0, d_spectral_norm=True, **small)
g.fit(x, steps=12, log_every=4)
runs["gan-r1-sn"] = digest(g)
for form in ["projection", "concat"]:
    g = GAN.from_preset("default", (8, 8), seed=3, n_classes=3, conditioning=form, **small)
    g.fit(x, steps=12, log_every=4, y=y)
    runs[f"cond-{form}"] = digest(g)
v = VAE.from_preset("vae", (8, 8), seed=3, latent_dim=3, enc_hidden=[32], dec_hidden=[32], batch_size=32)
v.fit(x, steps=12, log_every=4)
runs["vae"] = digest(v)
p = GAN.from_preset("points", (2,), seed=3, pack=2, batch_size=32)
p.fit(rng.standard_normal((256, 2)).astype(np.float32), steps=12, log_every=4)
runs["points-pack2"] = digest(p)
with open(sys.argv[1], "w") as f:
    json.dump(runs, f, indent=1)
print(json.dumps(runs, indent=1))
