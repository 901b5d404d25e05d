"""The public API: the README's example runs as written, names are documented, layers stay layered."""

import re
from pathlib import Path

import numpy as np
import pytest

import tinygan

ROOT = Path(__file__).resolve().parents[2]


def _readme_section_code(title: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", section, flags=re.S | re.M)
    return ["\n".join(line[len(indent):] for line in body.splitlines()) for indent, body in blocks]


def test_readme_api_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _readme_section_code("Python API")
    assert len(blocks) >= 2, "the README's API section lost its examples"
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "run" / "checkpoint.npz").is_file()
    assert namespace["images"].shape == (64, 28, 28)
    assert namespace["images"].dtype == np.float32
    assert 0.0 <= namespace["images"].min() and namespace["images"].max() <= 1.0
    assert isinstance(namespace["gan"], tinygan.GAN)


def test_every_public_name_is_documented():
    for name in tinygan.__all__:
        obj = getattr(tinygan, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), f"tinygan.{name} has no docstring"
    for method in ("from_preset", "fit", "sample", "save", "load", "train_step"):
        assert getattr(tinygan.GAN, method).__doc__, f"GAN.{method} has no docstring"


def test_api_rejects_bad_arrays():
    gan = tinygan.GAN.from_preset(
        "reference", data_shape=(4, 4), g_hidden=[8], d_hidden=[8], latent_dim=2, g_batchnorm=False
    )
    with pytest.raises(tinygan.DataError, match=r"shape \(N, 4, 4\)"):
        gan.fit(np.zeros((10, 5), np.uint8), steps=1)
    with pytest.raises(tinygan.DataError, match="NaN"):
        gan.fit(np.full((100, 16), np.nan, np.float32), steps=1)
    with pytest.raises(tinygan.DataError, match=r"\[0, 1\]"):
        gan.fit(np.full((100, 16), 2.0, np.float32), steps=1)
    with pytest.raises(tinygan.DataError, match="dtype"):
        gan.fit(np.zeros((100, 16), np.int32), steps=1)
    with pytest.raises(tinygan.DataError, match="NumPy array"):
        gan.fit([[0.0] * 16], steps=1)


def test_error_types_live_in_errors():
    from tinygan.io import errors

    assert tinygan.DataError is errors.DataError
    assert tinygan.CheckpointError is errors.CheckpointError
    assert tinygan.DivergenceError is errors.DivergenceError
    assert str(errors.CheckpointError("a\nb\rc")) == "a\\nb\\rc"  # one line


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    small = tinygan.GAN.from_preset(
        "reference", data_shape=(4, 4), g_hidden=[8], d_hidden=[8], latent_dim=2, g_batchnorm=False
    )
    small.save(str(tmp_path / "a.npz"))
    other = tinygan.GAN.from_preset(
        "reference", data_shape=(4, 4), g_hidden=[16], d_hidden=[8], latent_dim=2, g_batchnorm=False
    )
    arrays, meta = tinygan.io.checkpoint.load_checkpoint(tmp_path / "a.npz")
    with pytest.raises(ValueError, match="does not fit this model"):
        other.restore(arrays, meta)


def test_explicit_layer_lists_round_trip(tmp_path):
    config = tinygan.GANConfig(data_shape=(2,), data_kind="points", latent_dim=3, g_output=None, batch_size=8)
    gen = [tinygan.Dense(3, 16, "he"), tinygan.ReLU(), tinygan.Dense(16, 2)]
    disc = [tinygan.Dense(2, 16, "he", 0.2), tinygan.LeakyReLU(0.2), tinygan.Dense(16, 1)]
    gan = tinygan.GAN(config, seed=1, generator=gen, discriminator=disc)
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    gan.fit(x, steps=5, log_every=5)
    gan.save(str(tmp_path / "c.npz"))
    again = tinygan.GAN.load(str(tmp_path / "c.npz"))
    z = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(again.sample(4, z=z), gan.sample(4, z=z))
    with pytest.raises(ValueError, match="generator must map 3 → 2"):
        tinygan.GAN(config, generator=[tinygan.Dense(3, 5)], discriminator=disc)


def test_preset_override_with_mismatched_batchnorm_flags_is_explained():
    with pytest.raises(ValueError, match="g_batchnorm has 4 flags for 1 hidden layers"):
        tinygan.GAN.from_preset("reference", data_shape=(4, 4), g_hidden=[8])
