"""The objectives from the command line: options, one-line errors, step counts with n_critic, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinygan import GAN
from tinygan.engine.spectral import SpectralDense
from tinygan.interfaces import cli

TINY = ["--dataset", "digits", "--n-train", "256", "--batch-size", "32", "--g-hidden", "32", "--d-hidden", "32",
        "--latent-dim", "8", "--no-eval"]
CRITIC = ["--loss", "wgan-gp", "--n-critic", "2", "--d-spectral-norm", "yes", "--r1-gamma", "0.5", "--betas", "0,0.9"]

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")


@pytest.mark.parametrize(("argv", "named"), [
    (["--loss", "nope"], "argument --loss: expected one of bce, hinge, lsgan, wgan, wgan-gp, got 'nope'"),
    (["--n-critic", "0"], "argument --n-critic: expected a positive integer, got 0"),
    (["--r1-gamma", "-1"], "argument --r1-gamma: expected a number >= 0, got -1"),
    (["--gp-weight", "0"], "argument --gp-weight: expected a positive number, got 0"),
    (["--wgan-clip", "inf"], "argument --wgan-clip: expected a number >= 0, got inf"),
    (["--d-spectral-norm", "maybe"], "argument --d-spectral-norm: expected yes or no, got 'maybe'"),
    (["--betas", "0.5"], "argument --betas: expected two numbers in [0, 1) like 0.5,0.999, got '0.5'"),
])
def test_invalid_objective_options_are_named(capsys, argv, named):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", *argv])
    assert info.value.code == 2
    assert f"tinygan train: error: {named}" in capsys.readouterr().err


def test_a_penalty_with_batchnorm_in_d_is_one_line_naming_the_option(capsys, tmp_path):
    code = cli.main(["train", *TINY, "--r1-gamma", "1", "--d-batchnorm", "yes", "--out", str(tmp_path / "run")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_ERROR
    assert lines[-1].startswith("tinygan train: error: model options: GAN config d_batchnorm = True: a gradient "
                                "penalty (loss wgan-gp or r1_gamma > 0) needs the gradient of D's input gradient")
    assert not (tmp_path / "run").exists()


def test_objective_options_reach_the_model_and_epochs_count_g_updates(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, *CRITIC, "--epochs", "1", "--log-every", "1", "--out", str(run)]) == 0
    gan = GAN.load(str(run / "checkpoint.npz"))
    c = gan.config
    assert (c.loss, c.n_critic, c.d_spectral_norm, c.r1_gamma, c.betas) == ("wgan-gp", 2, True, 0.5, (0.0, 0.9))
    assert isinstance(gan.D.layers[0], SpectralDense)
    assert gan.step == 256 // (32 * 2)  # an epoch of D batches: 2 per G update
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all("d_penalty" in r for r in records)


def test_a_resumed_run_with_every_critic_option_ends_as_an_uninterrupted_one(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli.main(["train", *TINY, *CRITIC, "--steps", "6", "--out", str(straight)]) == 0
    assert cli.main(["train", *TINY, *CRITIC, "--steps", "3", "--out", str(split)]) == 0
    assert cli.main(["train", "--resume", str(split), "--steps", "6"]) == 0
    a, b = (GAN.load(str(run / "checkpoint.npz")).state()[0] for run in (straight, split))
    assert sorted(a) == sorted(b) and any(key.endswith(".u") for key in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
