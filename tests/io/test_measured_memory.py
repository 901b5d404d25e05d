"""Every size a user controls is measured before it is allocated, against every limit the process runs
under, and from the Python API as from the command line: a request that cannot be met is one line
(exit 2 on the command line, :class:`~tinygan.io.errors.MemoryRequestError`, a ``ValueError``, in Python).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from capped import run_capped

from tinygan import GAN, VAE
from tinygan.io import memory
from tinygan.io.errors import MemoryRequestError

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")


def one_line_error(result, command: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tinygan {command}: error: "), result.stderr
    return lines[0]


def test_the_address_space_limit_counts(monkeypatch):
    """``ulimit -v`` caps what the process may still map: the cap less what it maps now."""
    mapped = memory._mapped_bytes()
    assert mapped > 0
    cap = mapped + 10**9
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: (cap, cap))
    available = memory.available_bytes()
    assert available is not None and available <= 10**9
    with pytest.raises(ValueError, match=r"^-n 5: needs about 2.0 GB of memory, more than the .* available$"):
        memory.check_fits(2e9, "-n 5", ValueError)


def test_under_ulimit_v_a_model_too_large_is_refused_in_one_line(tmp_path):
    """Under a 2 GB cap a model of about 4 GB (which the machine's memory would hold) is refused as a
    request, not as NumPy's raw "Unable to allocate"."""
    result = run_capped("train", "--g-hidden", "12000,12000", "--n-train", "256", "--no-eval", "--steps", "1",
                        "--out", str(tmp_path / "run"), cwd=tmp_path)
    line = one_line_error(result, "train")
    assert "--g-hidden 12000,12000: a model of " in line and "available" in line, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: GAN.from_preset("default", data_shape=(28, 28), n_classes=10**7), r"n_classes 10000000"),
        (lambda: GAN.from_preset("default", (28, 28), latent_dim=10**10), r"latent_dim 10000000000"),
        (lambda: GAN.from_preset("default", (28, 28), g_hidden=[10**6, 10**6], g_batchnorm=False),
         r"g_hidden \[1000000, 1000000\]"),
        (lambda: GAN.from_preset("default", (28, 28), batch_size=10**9), r"batch_size 1000000000"),
        (lambda: VAE.from_preset("vae", (28, 28), dec_hidden=[10**6, 10**6]), r"dec_hidden \[1000000, 1000000\]"),
    ],
    ids=["classes", "latent", "widths", "batch", "vae-widths"],
)
def test_the_api_measures_a_model_before_building_it(build, named):
    tic = time.perf_counter()
    with pytest.raises(MemoryRequestError, match=rf"^(GAN|VAE) config \({named}\): a model of [\d,]+ parameters: "
                                                 r"needs about .* of memory, more than the .* available$"):
        build()
    assert time.perf_counter() - tic < 1.0, "refused before anything is allocated"
    assert issubclass(MemoryRequestError, ValueError) and issubclass(MemoryRequestError, MemoryError)


def test_the_api_measures_a_class_count_under_a_cap(tmp_path):
    """Where the cap is tighter than the machine: the measured refusal, not NumPy's MemoryError."""
    code = ("from tinygan import GAN\n"
            "try:\n    GAN.from_preset('default', data_shape=(28, 28), n_classes=2 * 10**6)\n"
            "except ValueError as e:\n    print(type(e).__name__, e)\n")
    result = run_capped("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MemoryRequestError GAN config (n_classes 2000000): a model of "), result.stdout


@pytest.fixture(scope="module")
def small():
    gan = GAN.from_preset("default", (8, 8), g_hidden=[16], d_hidden=[16], g_batchnorm=False, latent_dim=4)
    vae = VAE.from_preset("vae", (8, 8), enc_hidden=[16], dec_hidden=[16], latent_dim=2)
    return gan, vae


def test_the_api_measures_sample_counts_and_batches(small):
    gan, vae = small
    x = np.zeros((64, 8, 8), np.uint8)
    for call, named in [
        (lambda: gan.sample(10**13), r"sample\(10000000000000\)"),
        (lambda: vae.sample(10**13), r"sample\(10000000000000\)"),
        (lambda: gan.fit(x, steps=1, batch_size=10**12), r"batch_size 1000000000000"),
        (lambda: vae.reconstruct(x, batch=10**12), None),  # a batch larger than the data is the data
    ]:
        if named is None:
            assert call().shape == (64, 8, 8)
            continue
        with pytest.raises(MemoryRequestError, match=rf"^{named}: needs about .* more than the .* available$"):
            call()
    assert gan.step == 0


# ================================================================ sample --reconstruct obeys the sample limits


@pytest.fixture(scope="module")
def vae_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("vae") / "vae.npz"
    VAE.from_preset("vae", (28, 28), enc_hidden=[16], dec_hidden=[16], latent_dim=2).save(str(path))
    return path


def test_a_reconstruction_grid_holds_what_a_sample_grid_holds(vae_checkpoint, tmp_path, capsys):
    """-n 200000 wrote a 302 x 1,800,002 PNG at a 12.9 GB peak; a .png of reconstructions now holds at most
    the 10,000 images a sample grid holds."""
    from tinygan.interfaces import cli

    out = tmp_path / "x.png"
    code = cli.main(["sample", "--checkpoint", str(vae_checkpoint), "--reconstruct", "digits", "-n", "10001",
                     "--noise", "0.1", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("tinygan sample: error: ") and "10001" in err, err
    assert err.endswith("at most 10000 originals with their reconstructions; write a .npy file for more") or \
        err.endswith("-n 10001: a .png grid shows at most 10000 images; write a .npy file for more"), err
    assert list(tmp_path.iterdir()) == []


def test_reconstructions_are_measured_before_they_are_made(vae_checkpoint, tmp_path, capsys, monkeypatch):
    from tinygan.interfaces import cli

    monkeypatch.setattr(memory, "available_bytes", lambda: 20 * 10**6)
    out = tmp_path / "x.npy"
    code = cli.main(["sample", "--checkpoint", str(vae_checkpoint), "--reconstruct", "digits", "-n", "5000",
                     "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("tinygan sample: error: reconstruct of ") and " samples in batches of " in err, err
    assert err.endswith("of memory, more than the 20.0 MB available")
    assert list(tmp_path.iterdir()) == []


def test_the_output_check_names_the_request(tmp_path):
    from tinygan.evaluation.outputs import check_output
    from tinygan.io.errors import UsageError

    config = VAE.from_preset("vae", (28, 28), enc_hidden=[16], dec_hidden=[16], latent_dim=2).config
    with pytest.raises(UsageError, match=r"^-n 200000: a .png grid shows at most 10000 images; write a .npy file"):
        check_output(200_000, tmp_path / "x.png", config, "-n 200000")
    with pytest.raises(UsageError, match=r"^-n 10000000000000: .*x.npy would take 3.1e\+04 TB, more than the .* free"):
        check_output(10**13, tmp_path / "x.npy", config, "-n 10000000000000")
    check_output(10_000, tmp_path / "x.png", config, "-n 10000")


def test_reconstructions_stream_a_chunk_at_a_time(tmp_path):
    from tinygan.evaluation.outputs import write_reconstructions_npy
    from tinygan.evaluation.pictures import corrupt

    vae = VAE.from_preset("vae", (8, 8), enc_hidden=[16], dec_hidden=[16], latent_dim=2)
    x = (np.random.default_rng(1).random((20, 8, 8)) * 255).astype(np.uint8)
    seen = []
    reconstruct = vae.reconstruct
    vae.reconstruct = lambda part: seen.append(len(part)) or reconstruct(part)
    write_reconstructions_npy(tmp_path / "r.npy", vae, x, chunk=7)
    assert seen == [7, 7, 6]
    np.testing.assert_allclose(np.load(tmp_path / "r.npy"), reconstruct(x), rtol=1e-6, atol=1e-7)
    write_reconstructions_npy(tmp_path / "n.npy", vae, x, noise=0.3, seed=5, chunk=7)
    noisy = np.load(tmp_path / "n.npy")
    np.testing.assert_allclose(noisy[:7], reconstruct(corrupt(x[:7], 0.3, 5)), rtol=1e-6, atol=1e-7)
    assert noisy.shape == (20, 8, 8) and not np.allclose(noisy, np.load(tmp_path / "r.npy"))


def test_a_checkpoint_of_a_model_too_large_here_says_so(tmp_path, monkeypatch):
    from tinygan.interfaces.api import load_model

    path = tmp_path / "g.npz"
    GAN.from_preset("default", (8, 8), g_hidden=[16], d_hidden=[16], g_batchnorm=False).save(str(path))
    real = memory.available_bytes
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**5)  # the model reads fine, but cannot be built
    monkeypatch.setattr("tinygan.io.arrayfile.shortfall", lambda *a, **k: None)
    with pytest.raises(MemoryRequestError, match=rf"^checkpoint {path}: GAN config \(g_hidden \[16\], "
                                                 r"d_hidden \[16\]\): a model of [\d,]+ parameters: needs about"):
        load_model(str(path))
    monkeypatch.setattr(memory, "available_bytes", real)
    assert load_model(str(path)).step == 0


def test_a_start_that_takes_long_ends_at_the_first_signal():
    """While a run starts (data read and checked, a model built) a signal has no step to wait for."""
    import os
    import signal

    from tinygan.interfaces.console import StopSignal

    with StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # training: noted, the step finishes
        assert stop.received == signal.SIGTERM
    with StopSignal() as stop:
        stop.immediate = True
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes: at once
        assert stop.received == signal.SIGTERM
