"""The PyTorch twin of the convolutional GANs and VAE (benchmarks/_torch_peer.py): built from tinygan's own
layers, it is the same model -- same weights in, same losses and weights out, in float64."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygan import GAN, VAE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")

TINY = {"data_shape": (8, 8), "conv_channels": [2, 3], "latent_dim": 3, "batch_size": 8, "dtype": "float64"}



@pytest.mark.parametrize("preset", ["dcgan", "dcgan-compact"])
def test_the_torch_twin_of_a_dcgan_is_the_same_model(preset):
    import torch
    from _torch_peer import TorchGAN

    extra = {"conv_dense": 5} if preset == "dcgan" else {}
    gan = GAN.from_preset(preset, backend="numpy", seed=2, g_ema_decay=0.9, **TINY, **extra)
    peer = TorchGAN(gan)
    peer.load_from_tinygan(gan)
    rng = np.random.default_rng(0)
    for _ in range(3):
        real, z = rng.uniform(-1, 1, (8, 64)), rng.standard_normal((8, 3))
        ours = gan.train_step(real, z)
        theirs = peer.train_step(torch.from_numpy(real), torch.from_numpy(z))
        for k in ("d_loss", "g_loss", "d_real", "d_fake"):
            assert float(theirs[k]) == pytest.approx(float(ours[k]), rel=1e-9), k
    for net, tnet in ((gan.G, peer.G), (gan.D, peer.D)):
        ours = np.concatenate([t.numpy().ravel() for t in TorchGAN._torch_order(peer, gan, net)])
        theirs = np.concatenate([p.detach().numpy().ravel() for p in tnet.parameters()])
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-9)


def test_the_torch_twin_of_the_convolutional_vae_is_the_same_model():
    import torch
    from _torch_peer import TorchGAN, TorchVAE

    vae = VAE.from_preset("vae-conv", backend="numpy", seed=2, **TINY)
    peer = TorchVAE(vae)
    peer.load_from_tinygan(vae)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, eps = rng.random((8, 64)), rng.standard_normal((8, 3))
        ours = vae.train_step(x, eps)
        theirs = peer.train_step(torch.from_numpy(x), torch.from_numpy(eps))
        assert float(theirs["neg_elbo"]) == pytest.approx(float(ours["neg_elbo"]), rel=1e-9)
    for net, tnet in ((vae.enc, peer.enc), (vae.dec, peer.dec)):
        ours = np.concatenate([t.numpy().ravel() for t in TorchGAN._torch_order(peer, vae, net)])
        theirs = np.concatenate([p.detach().numpy().ravel() for p in tnet.parameters()])
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-9)
