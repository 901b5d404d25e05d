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
    assert "--g-hidden 12000,12000 (a model of " in line and "available" in line, line
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
