"""The convolutional GANs (``dcgan``, ``dcgan-compact``) on tiny images: their layers, a step, gradients
against finite differences, exact resume, the variants that compose with them and the options they refuse."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_close_grad, conditioning, numerical_grad

from tinygan import GAN, GANConfig
from tinygan.engine.layers import BatchNorm, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, ProjectionHead, Reshape
from tinygan.engine.logit_losses import bce_with_logits
from tinygan.engine.spectral import SpectralNorm

TINY = {"data_shape": (8, 8), "conv_channels": [2, 3], "conv_dense": 5, "latent_dim": 3, "batch_size": 8}


def tiny(preset: str = "dcgan-compact", seed: int = 1, **overrides) -> GAN:
    settings = dict(TINY)
    if preset == "dcgan-compact":
        settings.pop("conv_dense")
    return GAN.from_preset(preset, backend="numpy", seed=seed, **{**settings, **overrides})


def images(n: int = 24, shape: tuple[int, ...] = (8, 8), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


@pytest.mark.parametrize("preset", ["dcgan", "dcgan-compact"])
def test_the_28_by_28_forms_have_the_papers_layers_and_sizes(preset):
    gan = GAN.from_preset(preset, data_shape=(28, 28))
    kinds = [type(layer) for layer in gan.G.layers]
    assert kinds.count(ConvTranspose2d) == 2 and kinds[-1] is Flatten and Reshape in kinds
    assert [type(layer) for layer in gan.D.layers].count(Conv2d) == 2 and isinstance(gan.D.layers[0], Reshape)
    assert gan.G.layers[kinds.index(Reshape)].shape == (7, 7, 128)
    params = {"dcgan": 13_238_274, "dcgan-compact": 917_122}[preset]  # about 13.2 M and 0.9 M (Lucic et al.)
    assert gan.n_params == params
    assert gan.sample(3).shape == (3, 28, 28)


@pytest.mark.parametrize("preset", ["dcgan", "dcgan-compact"])
def test_a_few_steps_train_both_players_on_colour_images(preset):
    gan = tiny(preset, data_shape=(8, 12, 3))
    before = gan.G.params.copy(), gan.D.params.copy()
    records = gan.fit(images(24, (8, 12, 3)), steps=4, log_every=2)
    assert len(records) == 2 and all(np.isfinite(records[-1]["d_loss"]) for _ in [0])
    assert not np.array_equal(before[0], gan.G.params) and not np.array_equal(before[1], gan.D.params)
    samples = gan.sample(5)
    assert samples.shape == (5, 8, 12, 3) and samples.min() >= 0 and samples.max() <= 1


@pytest.mark.parametrize("preset", ["dcgan", "dcgan-compact"])
def test_generator_gradient_through_the_convolutional_discriminator(preset):
    """dL/dθ_G of L = BCE(D(G(z)), 1) as the step computes it, against central differences in float64:
    BatchNorm over dense features and over channels in both networks, convolutions and their transposes."""
    for seed in range(20):
        gan = tiny(preset, seed=seed, dtype="float64", g_ema_decay=0.0)
        rng = np.random.default_rng(seed)
        for net in (gan.G, gan.D):
            net.params[...] = rng.standard_normal(net.n_params) * 0.5
        z = rng.standard_normal((8, 3))
        (d_kink, d_var), (g_kink, g_var) = conditioning(gan.D, gan.G.forward(z)), conditioning(gan.G, z)
        if min(d_kink, g_kink) > 1e-4 and min(d_var, g_var) > 1e-3:  # away from kinks and flat BatchNorm columns
            break
    else:
        pytest.skip("no seed away from kinks")

    def loss(params: np.ndarray) -> float:
        gan.G.params[...] = params
        return float(bce_with_logits(gan.D.forward(gan.G.forward(z)), 1.0)[0])

    p0 = gan.G.params.copy()
    numeric = numerical_grad(loss, p0)
    gan.G.params[...] = p0
    gan.generator_gradients(gan.G.forward(z))
    assert_close_grad(gan.G.grads.copy(), numeric, f"{preset} generator gradient through D")


def test_discriminator_gradient_with_a_projection_head():
    gan = tiny("dcgan", seed=3, dtype="float64", n_classes=3, g_ema_decay=0.0)
    rng = np.random.default_rng(3)
    gan.D.params[...] = rng.standard_normal(gan.D.n_params) * 0.5
    x = rng.standard_normal((8, 64))
    labels = np.arange(8) % 3
    d_in = gan._discriminator_input(x, labels)
    assert conditioning(gan.D, d_in)[1] > 1e-2

    def loss(params: np.ndarray) -> float:
        gan.D.params[...] = params
        return float(bce_with_logits(gan.D.forward(d_in), 1.0)[0])

    p0 = gan.D.params.copy()
    numeric = numerical_grad(loss, p0)
    gan.D.params[...] = p0
    gan.D.start_gradients()
    _, grad = bce_with_logits(gan.D.forward(d_in), 1.0)
    gan.D.backward(grad, need_dx=False)
    assert_close_grad(gan.D.grads.copy(), numeric, "projection dcgan discriminator gradient")


@pytest.mark.parametrize("preset", ["dcgan", "dcgan-compact"])
def test_save_load_and_resume_are_exact(tmp_path, preset):
    x = images(28)
    whole = tiny(preset, seed=3, g_ema_decay=0.9)
    whole.fit(x, steps=9, log_every=3)
    part = tiny(preset, seed=3, g_ema_decay=0.9)
    part.fit(x, steps=4, log_every=3)
    part.save(str(tmp_path / "c.npz"))
    resumed = GAN.load(str(tmp_path / "c.npz"))
    assert resumed.config.architecture == preset
    resumed.fit(x, steps=9, log_every=3)
    for k, v in whole.state()[0].items():
        assert np.array_equal(resumed.state()[0][k], v), k
    z = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(resumed.sample(4, z=z), whole.sample(4, z=z))


def test_the_averaged_generator_measures_its_own_channel_statistics():
    gan = tiny(g_ema_decay=0.5)
    gan.fit(images(), steps=3, log_every=3)
    gan.sample(4)
    bns = [layer for layer in gan.G_avg.net.layers if isinstance(layer, BatchNorm2d)]
    live = [layer for layer in gan.G.layers if isinstance(layer, BatchNorm2d)]
    assert bns and not np.array_equal(bns[0].running_mean, live[0].running_mean)


def test_the_penalised_and_spectral_variants_have_no_batchnorm_in_d():
    for variant in ({"loss": "wgan-gp", "n_critic": 2}, {"r1_gamma": 1.0}, {"d_spectral_norm": True, "loss": "hinge"}):
        gan = tiny("dcgan", d_batchnorm=False, **variant)
        assert not any(isinstance(layer, BatchNorm) for layer in gan.D.layers)
        records = gan.fit(images(32), steps=2, log_every=1)
        assert np.isfinite(records[-1]["d_loss"])
        if variant.get("d_spectral_norm"):
            assert sum(isinstance(layer, SpectralNorm) for layer in gan.D.layers) == 4  # two convolutions, two dense
    with pytest.raises(ValueError, match=r"^GAN config d_batchnorm = True: a gradient penalty \(loss wgan-gp"):
        tiny("dcgan", loss="wgan-gp")
    with pytest.raises(ValueError, match=r"d_spectral_norm = True: the spectrally normalised dcgan has no BatchNorm"):
        tiny("dcgan", d_spectral_norm=True)


def test_the_conditional_dcgan_projects_d_features_and_draws_a_class():
    gan = tiny("dcgan-compact", n_classes=3)
    assert isinstance(gan.D.layers[-1], ProjectionHead) and gan.D.layers[-1].n_in == 3 * 2 * 2
    assert gan.G.layers[0].n_in == 3 + 3  # z and the one-hot
    gan.fit(images(24), y=np.arange(24) % 3, steps=2, log_every=1)
    assert gan.sample(4, labels=2).shape == (4, 8, 8)
    with pytest.raises(ValueError, match="conditioning = 'concat': the dcgan-compact discriminator takes images"):
        tiny("dcgan-compact", n_classes=3, conditioning="concat")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"g_hidden": [32]}, r"^GAN config g_hidden = \[32\]: shapes the mlp architecture only, not dcgan"),
    ({"maxout_pieces": 2}, "maxout_pieces = 2: shapes the mlp architecture only"),
    ({"pack": 2}, "^GAN config pack = 2: packing joins samples as rows"),
    ({"data_shape": (10, 8)}, "need H and W divisible by 4, got 10×8"),
    ({"data_shape": (8,)}, r"convolutions take images of shape \(H, W\) or \(H, W, C\)"),
    ({"conv_channels": [2, 3, 4]}, "conv_channels = .*two channel counts"),
])
def test_what_a_convolutional_gan_refuses_is_said_in_one_line(overrides, message):
    with pytest.raises(ValueError, match=message) as info:
        tiny("dcgan", **overrides)
    assert "\n" not in str(info.value)


def test_the_mlp_presets_refuse_convolution_sizes_and_keep_their_layers():
    with pytest.raises(ValueError, match="conv_channels = .*sizes a convolutional architecture"):
        GANConfig(conv_channels=[8, 8])
    gan = GAN.from_preset("default", data_shape=(28, 28))
    assert gan.config.architecture == "mlp" and not any(isinstance(layer, Conv2d) for layer in gan.D.layers)


# -- the command line -------------------------------------------------------------------------------

CLI_TINY = ["--n-train", "64", "--batch-size", "16", "--conv-channels", "2,3", "--latent-dim", "4", "--no-eval"]


@pytest.mark.usefixtures("numpy_one_blas_thread")
def test_train_sample_and_resume_from_the_command_line(tmp_path):
    from tinygan.interfaces import cli

    data = tmp_path / "x.npy"
    np.save(data, images(64, (12, 8)))
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", str(data), "--model", "dcgan-compact", *CLI_TINY, "--steps", "2",
                     "--out", str(run)]) == 0
    assert cli.main(["train", "--resume", str(run), "--steps", "3"]) == 0
    gan = GAN.load(str(run / "checkpoint.npz"))
    assert gan.step == 3 and gan.config.architecture == "dcgan-compact" and gan.config.conv_channels == [2, 3]
    assert cli.main(["sample", "--checkpoint", str(run), "-n", "2", "--interpolate", "3",
                     "--out", str(tmp_path / "walk.npy")]) == 0
    assert np.load(tmp_path / "walk.npy").shape == (2, 3, 12, 8)


@pytest.mark.parametrize(("argv", "said"), [
    (["--model", "dcgan", "--g-hidden", "128,256,512,1024"],
     "--g-hidden: an option of the mlp architecture, not one of --model dcgan"),
    (["--model", "dcgan-compact", "--maxout-pieces", "3"],
     "--maxout-pieces: an option of the mlp architecture, not one of --model dcgan-compact"),
    (["--model", "dcgan-compact", "--conv-dense", "64"],
     "--conv-dense: an option of the dcgan architecture, not one of --model dcgan-compact"),
    (["--conv-channels", "8,8"], "--conv-channels: an option of the dcgan architecture, not one of --model default"),
    (["--model", "dcgan", "--pack", "2"], "--pack 2: packing joins samples as rows"),
    (["--model", "dcgan", "--r1-gamma", "1"], "model options: GAN config d_batchnorm = True: a gradient penalty"),
])
def test_options_a_convolutional_gan_does_not_take_are_refused_in_one_line(capsys, tmp_path, argv, said):
    from tinygan.interfaces import cli

    code = cli.main(["train", *argv, "--steps", "1", "--out", str(tmp_path / "run")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_ERROR and len(lines) == 1
    assert lines[0].startswith(f"tinygan train: error: {said}"), lines[0]
    assert not (tmp_path / "run").exists()


def test_help_says_which_options_the_dcgan_presets_take(capsys):
    from tinygan.interfaces import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "generator hidden sizes, e.g. 128,256,512,1024 (MLP presets only)" in text
    assert "dcgan presets and vae-conv: channels of D's (the encoder's) two convolutions" in text


@pytest.mark.usefixtures("numpy_one_blas_thread")
def test_a_conditional_dcgan_from_the_command_line_draws_the_class_asked_for(tmp_path):
    from tinygan.interfaces import cli

    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "digits", "--model", "dcgan-compact", "--conditional", *CLI_TINY,
                     "--steps", "2", "--out", str(run)]) == 0
    gan = GAN.load(str(run / "checkpoint.npz"))
    assert gan.config.n_classes == 10 and isinstance(gan.D.layers[-1], ProjectionHead)
    assert cli.main(["sample", "--checkpoint", str(run), "--class", "3,5", "-n", "4",
                     "--out", str(tmp_path / "two.npy")]) == 0
    assert np.load(tmp_path / "two.npy").shape == (4, 28, 28)
