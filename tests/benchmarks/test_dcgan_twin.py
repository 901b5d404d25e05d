"""The PyTorch twin of the convolutional GANs and VAE (benchmarks/_torch_peer.py): built from tinygan's own
layers, it is the same model -- same weights in, same losses and weights out, in float64."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from twins import assert_same_steps

from tinygan import GAN, VAE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")

TINY = {"data_shape": (8, 8), "conv_channels": [2, 3], "latent_dim": 3, "batch_size": 8, "dtype": "float64"}



@pytest.mark.parametrize("preset", ["dcgan", "dcgan-compact"])
def test_the_torch_twin_of_a_dcgan_is_the_same_model(preset):
    from _torch_peer import TorchGAN

    extra = {"conv_dense": 5} if preset == "dcgan" else {}
    gan = GAN.from_preset(preset, backend="numpy", seed=2, g_ema_decay=0.9, **TINY, **extra)
    peer = TorchGAN(gan)
    peer.load_from_tinygan(gan)
    assert_same_steps(gan, peer, (8, 64), (8, 3), ("d_loss", "g_loss", "d_real", "d_fake"))
    for net, tnet in ((gan.G, peer.G), (gan.D, peer.D)):
        ours = np.concatenate([t.numpy().ravel() for t in TorchGAN._torch_order(peer, gan, net)])
        theirs = np.concatenate([p.detach().numpy().ravel() for p in tnet.parameters()])
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-9)


def test_the_torch_twin_of_the_convolutional_vae_is_the_same_model():
    from _torch_peer import TorchGAN, TorchVAE

    vae = VAE.from_preset("vae-conv", backend="numpy", seed=2, **TINY)
    peer = TorchVAE(vae)
    peer.load_from_tinygan(vae)
    assert_same_steps(vae, peer, (8, 64), (8, 3), ("neg_elbo",), low=0.0)
    for net, tnet in ((vae.enc, peer.enc), (vae.dec, peer.dec)):
        ours = np.concatenate([t.numpy().ravel() for t in TorchGAN._torch_order(peer, vae, net)])
        theirs = np.concatenate([p.detach().numpy().ravel() for p in tnet.parameters()])
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-9)
