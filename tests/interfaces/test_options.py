"""Each model option is defined once, by its config field: the command line derives its options, their
help and their checks from the fields, and a config's refusal becomes one usage error in one place."""

from __future__ import annotations

import argparse
from dataclasses import fields

import numpy as np
import pytest

from tinygan import GAN, VAE, GANConfig, VAEConfig
from tinygan.backend import BackendError, get_backend
from tinygan.interfaces.api import MODELS, model_class
from tinygan.interfaces.options import MODEL_OPTIONS, build_parser, usage_error
from tinygan.io.errors import UsageError
from tinygan.models.settings import SettingError

# A value each kind refuses, written as a user would type it.
BAD_TEXT = {
    "a positive integer": "0", "comma-separated positive layer sizes like 256,512": "64,-1",
    "yes/no, or one yes/no per hidden layer like no,yes,yes": "maybe", "yes or no": "perhaps",
    "a positive number": "-1", "a number >= 0": "-0.5", "a number in [0, 1)": "1",
    "a number in (0.5, 1]": "0.2", "two numbers in [0, 1) like 0.5,0.999": "0.5",
}


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", *argv])


def test_the_options_are_the_fields_with_help_of_every_family():
    with_help = {f.name for config in (GANConfig, VAEConfig) for f in fields(config) if f.metadata.get("help")}
    assert set(MODEL_OPTIONS) == with_help
    assert {"lr_g", "g_hidden", "loss", "enc_hidden", "lr", "batch_size"} <= set(MODEL_OPTIONS)
    assert not {"data_shape", "n_classes", "class_names", "dtype"} & set(MODEL_OPTIONS)  # set by the data or the run


@pytest.mark.parametrize("name", sorted(MODEL_OPTIONS))
def test_each_option_reads_and_checks_as_its_field_does(name, capsys):
    """The default of the field, written as text, reads back as itself; a bad value is refused with the
    words of the field's own check."""
    field = MODEL_OPTIONS[name]
    kind, flag = field.metadata["kind"], "--" + name.replace("_", "-")
    config = next(m.config_class() for m in MODELS.values() if name in m.config_class.options())
    default = getattr(config, name)
    text = ",".join(_words(v) for v in default) if isinstance(default, (list, tuple)) else _words(default)
    assert getattr(_parse(flag, text), name) == default
    if kind.expected in BAD_TEXT:
        with pytest.raises(SystemExit):
            _parse(flag, BAD_TEXT[kind.expected])
        err = capsys.readouterr().err
        assert f"argument {flag}" in err and f": expected {kind.expected}, got " in err


def _words(value: object) -> str:
    return {True: "yes", False: "no"}.get(value, str(value)) if isinstance(value, bool) else str(value)


def test_a_field_refusal_names_the_option_a_cross_field_refusal_the_model_options():
    with pytest.raises(SettingError) as info:
        GANConfig(lr_g=-1.0)
    assert str(usage_error(info.value)) == "--lr-g -1.0: expected a positive number"
    with pytest.raises(ValueError) as info:
        GANConfig(batch_size=10, pack=3)
    assert str(usage_error(info.value)) == "model options: batch size 10 is not a multiple of pack 3"
    assert isinstance(usage_error(info.value), UsageError)


def test_numpy_scalars_are_taken_where_python_numbers_are():
    config = GANConfig(n_classes=np.int64(3), lr_g=np.float32(1e-3), g_hidden=[np.int64(8)], g_batchnorm=False,
                       d_hidden=[8])
    assert type(config.n_classes) is int and type(config.lr_g) is float and type(config.g_hidden[0]) is int
    assert GANConfig.from_json(config.to_json()) == config


def test_presets_are_looked_up_once_for_every_family():
    assert model_class("default") is GAN and model_class("vae") is VAE
    with pytest.raises(ValueError, match="unknown model preset 'nope': expected one of default, .*, vae"):
        model_class("nope")
    assert GAN.from_preset(data_shape=(2,)).config.latent_dim == GANConfig.PRESETS["points"]["latent_dim"]
    assert VAE.from_preset(data_shape=(2,)).config.latent_dim == VAEConfig.PRESETS["vae-points"]["latent_dim"]
    assert VAEConfig.preset_for("vae", "points") == "vae-points"
    assert GANConfig.preset_for("article", "image") == "article"


def test_backend_choices_are_listed_and_an_empty_one_refused(capsys):
    with pytest.raises(SystemExit):
        _parse("--backend", "")
    err = capsys.readouterr().err
    assert "argument --backend: invalid choice: ''" in err and "cupy-graph" in err
    assert "cupy-graph" in build_parser()._subparsers._group_actions[0].choices["train"].format_help()


def test_a_missing_cupy_is_named_for_the_backend_asked_for(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    with pytest.raises(BackendError, match=r"^backend 'cupy-graph' needs CuPy"):
        get_backend("cupy-graph")


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_the_seed_of_sample_and_eval_is_not_described_as_a_resumed_runs(command):
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    assert "resumed" not in parser.format_help()
