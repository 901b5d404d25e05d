"""The convolutional VAE (``vae-conv``): its layers, the −ELBO's gradient through convolutions, exact resume,
reconstructions, and the options it refuses."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad

from tinygan import VAE
from tinygan.engine.layers import BatchNorm, Conv2d, ConvTranspose2d

TINY = {"data_shape": (8, 8), "conv_channels": [2, 3], "latent_dim": 3, "batch_size": 8}


def tiny(seed: int = 1, **overrides) -> VAE:
    return VAE.from_preset("vae-conv", backend="numpy", seed=seed, **{**TINY, **overrides})


def images(n: int = 24, shape: tuple[int, ...] = (8, 8)) -> np.ndarray:
    return np.random.default_rng(0).random((n, *shape)).astype(np.float32)


def test_the_encoder_and_decoder_mirror_the_compact_dcgan_without_batchnorm():
    vae = VAE.from_preset("vae-conv", data_shape=(28, 28))
    assert [type(layer) for layer in vae.enc.layers].count(Conv2d) == 2
    assert [type(layer) for layer in vae.dec.layers].count(ConvTranspose2d) == 2
    assert not any(isinstance(layer, BatchNorm) for net in (vae.enc, vae.dec) for layer in net.layers)
    assert vae.enc.layers[-1].n_out == 2 * 20


def test_the_elbo_gradient_through_the_convolutions():
    vae = tiny(seed=2, dtype="float64")
    rng = np.random.default_rng(2)
    for net in (vae.enc, vae.dec):
        net.params[...] = 0.5 * rng.standard_normal(net.n_params)
    x, eps = rng.random((4, 64)), rng.standard_normal((4, 3))
    vae.gradients(x, eps)
    analytic = {name: net.grads.copy() for name, net in vae.nets.items()}
    for name, net in vae.nets.items():
        p0 = net.params.copy()

        def loss(p, net=net):
            net.params[...] = p
            recon, kl, _ = vae._losses(x, eps)
            return float(recon) + float(kl)

        numeric = numerical_grad(loss, p0)
        net.params[...] = p0
        assert_close_grad(analytic[name], numeric, f"−ELBO gradient of the convolutional {vae.describe(name)}")


def test_training_lowers_the_elbo_and_resume_is_exact(tmp_path):
    x = images(32)
    whole = tiny(seed=3, lr=3e-3)
    before = whole.elbo(x)["neg_elbo"]
    whole.fit(x, steps=12, log_every=4)
    assert whole.elbo(x)["neg_elbo"] < before
    part = tiny(seed=3, lr=3e-3)
    part.fit(x, steps=5, log_every=4)
    part.save(str(tmp_path / "v.npz"))
    resumed = VAE.load(str(tmp_path / "v.npz"))
    resumed.fit(x, steps=12, log_every=4)
    for k, v in whole.state()[0].items():
        assert np.array_equal(resumed.state()[0][k], v), k
    assert resumed.reconstruct(x[:3]).shape == (3, 8, 8) and resumed.sample(2).shape == (2, 8, 8)


def test_mlp_sizes_are_refused_and_said_in_one_line():
    with pytest.raises(ValueError, match=r"^VAE config enc_hidden = \[16\]: shapes the mlp architecture only"):
        tiny(enc_hidden=[16])
    with pytest.raises(ValueError, match="need H and W divisible by 4, got 6×8"):
        tiny(data_shape=(6, 8))


@pytest.mark.usefixtures("numpy_one_blas_thread")
def test_the_command_line_refuses_mlp_options_for_vae_conv(capsys, tmp_path):
    from tinygan.interfaces import cli

    code = cli.main(["train", "--model", "vae-conv", "--dec-hidden", "64", "--out", str(tmp_path / "run")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_ERROR
    said = "--dec-hidden: an option of the mlp architecture, not one of --model vae-conv"
    assert lines == [f"tinygan train: error: {said}"]
