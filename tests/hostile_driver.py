"""Hostile command lines and API calls, drawn by hypothesis, run in this process (started by
``tests/interfaces/test_hostile_property.py`` under an address-space cap), each checked for a clear answer.

Every example runs in a fresh ``work/`` folder of a sandbox holding a finished run; everything else in
the sandbox (data files, checkpoints) must come out unchanged. A command line must exit 0, or exit 2
with one error line naming the culprit; an API call must return, or raise a documented error (a
``ValueError`` -- ``DataError``, ``CheckpointError``, ``MemoryRequestError`` -- or ``DivergenceError``)
with a one-line message. Neither may print a traceback, escape a control character to the terminal,
or run out of memory unmeasured (NumPy's raw ``MemoryError``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygan import GAN, VAE, DivergenceError, load_dataset
from tinygan.data import sources
from tinygan.interfaces import cli
from tinygan.interfaces.api import load_model
from tinygan.interfaces.options import build_parser

# -- values: sizes from 0 to absurd, non-finite and wrong-typed numbers, odd text --------------------

HUGE_INTS = st.sampled_from([0, 1, 2, 3, 7, 64, 2**31, 2**40, 10**7, 10**12, 10**18, 2**63, 10**30])
ODD_TEXT = st.sampled_from(["", " ", "nan", "inf", "-inf", "1e308", "-1", "0", "2.5", "1,2", "1,,2", "²", "٣",
                            "a\x00b", "b\x1b[31mred", "\u202eevil", "yes", "no", "true", "None", "%s", "{}",
                            "\ud800", "x" * 300, "..", "-", "--steps"])
NUMBERS = st.one_of(HUGE_INTS, HUGE_INTS.map(lambda v: -v), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([np.int64(10), np.float32(0.5), np.uint8(3), True, False]))
ANY = st.one_of(NUMBERS, ODD_TEXT, st.none(), st.lists(HUGE_INTS, max_size=3),
                st.sampled_from([[], (), {}, object(), np.zeros(3), "digits"]))
OPTION_TEXT = st.one_of(HUGE_INTS.map(str), HUGE_INTS.map(lambda v: str(-v)), ODD_TEXT,
                        st.lists(HUGE_INTS.map(str), min_size=1, max_size=3).map(",".join),
                        st.sampled_from(["numpy", "cupy", "cupy-graph", "vae", "points", "hinge", "wgan-gp",
                                         "projection", "concat", "leaky_relu", "maxout", "yes,no", "0.9,0.999"]))

# Paths a command may be given, relative to the sandbox; each run writes only under work/.
DATA = ["digits", "ring", "grid", "inputs/odd.npz", "inputs/points.npy", "inputs/gan.npz", "inputs/missing.npz",
        "inputs", "inputs/bad_names.npz"]
CHECKPOINTS = ["work/run", "work/run/checkpoint.npz", "inputs/vae.npz", "inputs/gan.npz", "inputs/odd.npz",
               "inputs/missing.npz", "inputs"]
OUTS = st.sampled_from(["x.png", "x.npy", "x.txt", "x", "sub/x.png", "x.png/", ".png", "run/samples.png"])


def _options(command: str) -> list[tuple[str, int]]:
    """(option, number of values) of ``command``'s real parser."""
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return [(a.option_strings[0], 0 if a.nargs == 0 else 1) for a in sub._actions
            if a.option_strings and a.option_strings[0] != "-h"]


FORCED = {"--out", "--resume", "--steps", "--epochs", "--n-train", "--eval-every", "--no-eval", "--checkpoint",
          "--dataset", "--reconstruct", "--data-dir"}


@st.composite
def command_lines(draw) -> list[str]:
    """A command line of any command with options drawn from its parser, the long-running ones fixed."""
    command = draw(st.sampled_from(["train", "train", "sample", "sample", "eval"]))
    argv = [command]
    options = [o for o in _options(command) if o[0] not in FORCED]
    for option, nargs in draw(st.lists(st.sampled_from(options), max_size=3)):
        argv += [option] + ([draw(OPTION_TEXT)] if nargs else [])
    if command == "train":
        if draw(st.booleans()):
            argv += ["--resume", "work/run"]
        else:
            argv += ["--dataset", draw(st.one_of(st.sampled_from(DATA), ODD_TEXT)), "--out", "work/new"]
        argv += ["--steps", draw(st.sampled_from(["2", "3"])), "--n-train", "64", "--no-eval"]
    else:
        argv += ["--checkpoint", draw(st.one_of(st.sampled_from(CHECKPOINTS), ODD_TEXT))]
        if command == "sample":
            argv += ["--out", "work/" + draw(OUTS)]
            if draw(st.integers(0, 3)) == 0:
                argv += ["--reconstruct", draw(st.one_of(st.sampled_from(DATA), ODD_TEXT))]
    return argv


# -- the sandbox ------------------------------------------------------------------------------------


def make_sandbox(root: Path) -> None:
    inputs = root / "inputs"
    inputs.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 8, 8), dtype=np.uint8)
    np.savez(inputs / "odd.npz", x=x, y=np.array([3, 7, 100, 2**40] * 16))
    np.savez(inputs / "bad_names.npz", x=x, y=np.arange(64) % 2, names=np.array([b"\xff\xfe", b"ok"]))
    np.save(inputs / "points.npy", rng.standard_normal((64, 2)).astype(np.float32))
    tiny = {"g_hidden": [8], "d_hidden": [8], "g_batchnorm": False, "latent_dim": 3, "batch_size": 16}
    GAN.from_preset("default", (8, 8), n_classes=3, **tiny).save(str(inputs / "gan.npz"))
    VAE.from_preset("vae", (28, 28), enc_hidden=[8], dec_hidden=[8], latent_dim=2).save(str(inputs / "vae.npz"))
    with contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["train", "--dataset", "inputs/odd.npz", "--conditional", "--g-hidden", "8", "--d-hidden",
                         "8", "--latent-dim", "3", "--batch-size", "16", "--steps", "2", "--no-eval", "--out",
                         "finished"])
    assert code == 0


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` but ``work/``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "work"}


def fresh_work(root: Path) -> None:
    shutil.rmtree(root / "work", ignore_errors=True)
    (root / "work").mkdir()
    shutil.copytree(root / "finished", root / "work" / "run")


# -- the checks -------------------------------------------------------------------------------------

OUTCOMES: Counter = Counter()  # what the examples came to, reported at the end


def check_command(root: Path, before: dict[str, str], argv: list[str]) -> None:
    fresh_work(root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse: usage, then one error line
            code = e.code
    text = err.getvalue()
    assert "Traceback" not in text, text
    assert not any(c in text for c in "\x00\x1b\u202e"), f"a control character reached the terminal: {text!r}"
    assert "out of memory (" not in text, f"an allocation was not measured first: {text}"
    assert code in (0, 2), f"exit {code}: {text}"
    OUTCOMES[f"{argv[0]} exit {code}"] += 1
    if code == 2:
        errors = [line for line in text.splitlines() if line.startswith(f"tinygan {argv[0]}: error: ")]
        assert len(errors) == 1 and text.rstrip().endswith(errors[0]), text
    assert snapshot(root) == before, "a file outside the run folder changed"
    checkpoint = root / "work" / "run" / "checkpoint.npz"
    if checkpoint.exists():
        load_model(str(checkpoint))  # the last good checkpoint is intact


def check_call(root: Path, before: dict[str, str], call) -> None:
    fresh_work(root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            call()
            OUTCOMES["call returned"] += 1
        except (ValueError, DivergenceError) as e:
            OUTCOMES[f"call raised {type(e).__name__}"] += 1
            message = str(e)
            assert message and "\n" not in message, f"{type(e).__name__}: {message!r}"
            assert not any(c in message for c in "\x00\x1b\u202e"), f"raw control character: {message!r}"
            assert not isinstance(e, MemoryError) or "needs about" in message, message
    assert "Traceback" not in err.getvalue()
    assert snapshot(root) == before, "a file outside the run folder changed"


# -- API calls --------------------------------------------------------------------------------------

SMALL = {"g_hidden": [8], "d_hidden": [8], "g_batchnorm": False, "latent_dim": 3, "batch_size": 8}
GAN_FIELDS = ["n_classes", "latent_dim", "g_hidden", "d_hidden", "batch_size", "pack", "maxout_pieces", "lr_g",
              "n_critic", "real_label", "g_ema_decay", "class_names", "data_shape", "loss", "conditioning", "dtype"]
VAE_FIELDS = ["latent_dim", "enc_hidden", "dec_hidden", "batch_size", "lr", "x_std", "data_shape"]
ARRAYS = st.sampled_from(["images", "bytes", "0-255", "nan", "wrong", "empty", "points", "list", "object"])


def array(kind: str) -> object:
    rng = np.random.default_rng(1)
    return {"images": rng.random((16, 8, 8)).astype(np.float32),
            "bytes": rng.integers(0, 256, (16, 8, 8), dtype=np.uint8),
            "0-255": rng.random((16, 8, 8)) * 255, "nan": np.full((16, 8, 8), np.nan),
            "wrong": np.zeros((2, 27, 27)), "empty": np.zeros((0, 8, 8)), "points": rng.random((16, 2)),
            "list": [[0.5] * 64] * 16, "object": np.array([object()] * 16)}[kind]


class Call:
    """One API call on the sandbox, shown by what it calls."""

    def __init__(self, text: str, run) -> None:
        self.text, self.run = text, run

    def __repr__(self) -> str:
        return self.text


@st.composite
def api_calls(draw):
    """One API call (a :class:`Call`) with drawn arguments."""
    method = draw(st.sampled_from(["gan", "vae", "sample", "fit", "reconstruct", "elbo", "save", "load", "data"]))
    if method == "data":
        name, args = draw(st.one_of(st.sampled_from(DATA), ODD_TEXT)), draw(st.fixed_dictionaries(
            {}, optional={"n": ANY, "seed": ANY, "split": st.one_of(st.just("test"), ODD_TEXT)}))
        return Call(f"load_dataset({name!r}, **{args!r})", lambda root: load_dataset(name, download=False, **args))
    if method in ("gan", "vae"):
        fields = [*(GAN_FIELDS if method == "gan" else VAE_FIELDS), "seed"]
        overrides = dict(draw(st.lists(st.tuples(st.sampled_from(fields), ANY), max_size=3)))
        cls, preset = (GAN, "default") if method == "gan" else (VAE, "vae")
        base = SMALL if method == "gan" else {"enc_hidden": [8], "dec_hidden": [8], "latent_dim": 2}
        settings = {"data_shape": (8, 8), **base, **overrides}
        return Call(f"{cls.__name__}.from_preset({preset!r}, **{settings!r})",
                    lambda root: cls.from_preset(preset, **settings))
    if method == "sample":
        n, labels = draw(ANY), draw(st.one_of(st.none(), ANY))
        return Call(f"gan.sample({n!r}, labels={labels!r})",
                    lambda root: GAN.load(str(root / "inputs" / "gan.npz")).sample(n, labels=labels))
    if method == "fit":
        kind = draw(ARRAYS)
        args = dict(draw(st.lists(st.tuples(st.sampled_from(["steps", "batch_size", "epochs", "log_every",
                                                             "callback"]), ANY),
                                  max_size=2)))
        args.setdefault("steps", 2)
        y = draw(st.sampled_from([None, "ok", "odd", "float"]))
        labels = {None: None, "ok": np.arange(16) % 3, "odd": np.arange(16) * 10**12, "float": np.zeros(16)}[y]
        return Call(f"gan.fit({kind}, y={y}, **{args!r})",
                    lambda root: GAN.load(str(root / "inputs" / "gan.npz")).fit(array(kind), y=labels, **args))
    if method in ("reconstruct", "elbo"):
        kind, batch = draw(ARRAYS), draw(st.one_of(st.just(1000), ANY))
        return Call(f"vae.{method}({kind}, batch={batch!r})", lambda root: getattr(
            VAE.from_preset("vae", (8, 8), enc_hidden=[8], dec_hidden=[8]), method)(array(kind), batch=batch))
    if method == "save":
        where = draw(st.sampled_from(["work", "work/a.npz", "work/sub/a.npz", "work/run"]))
        return Call(f"gan.save({where!r})", lambda root: GAN.from_preset("default", (8, 8), **SMALL).save(
            str(root / where)))
    where = draw(st.one_of(st.sampled_from(CHECKPOINTS), ODD_TEXT))
    return Call(f"load_model({where!r})", lambda root: load_model(str(root / where)))


# -- the run ----------------------------------------------------------------------------------------


def main(root: str, examples: int) -> None:
    root = Path(root)
    sys.modules["cupy"] = None  # no CUDA under an address-space cap: --backend cupy is answered as without CuPy
    os.chdir(root)
    os.environ["XDG_CACHE_HOME"] = str(root / "work" / "cache")
    os.environ.pop("TINYGAN_DATA", None)
    sources._urlopen = lambda *a, **k: (_ for _ in ()).throw(OSError("offline"))  # no downloads
    make_sandbox(root)
    before = snapshot(root)
    explore = "TINYGAN_HOSTILE_EXAMPLES" in os.environ
    options = settings(max_examples=examples, deadline=None, database=None, derandomize=not explore,
                       suppress_health_check=list(HealthCheck), print_blob=True)

    @options
    @given(command_lines())
    def commands(argv):
        check_command(root, before, argv)

    @options
    @given(api_calls())
    def calls(call):
        check_call(root, before, lambda: call.run(root))

    commands()
    calls()
    print(", ".join(f"{k}: {v}" for k, v in sorted(OUTCOMES.items())))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
