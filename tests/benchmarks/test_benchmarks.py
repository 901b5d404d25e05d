"""Smoke tests of the benchmark scripts (benchmarks/): schema, GEMM accounting, the PyTorch peer.

No timing assertions: these only check that the benchmarks run and count what the engine does.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from twins import assert_same_steps

from tinygan import GAN
from tinygan.backend import Ops, cupy_available, pool
from tinygan.engine.layers import Dense
from tinygan.engine.optim import Adam
from tinygan.models.config import GANConfig

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import bench_step  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (benchmark peer only)")


def _tiny_gan(**overrides):
    """latent 2 → 3 → 5 (G) and 5 → 4 → 1 (D)."""
    settings = {"latent_dim": 2, "g_hidden": [3], "g_batchnorm": [True], "d_hidden": [4], "d_dropout": 0.0}
    settings.update(overrides)
    return GAN(GANConfig.from_preset("default", (5,), data_kind="image", **settings), backend="numpy")


def test_floor_flops_match_a_hand_count():
    gan, b = _tiny_gan(), 6
    # 2·M·N·K per GEMM.  G forward: 6×2→3, 6×3→5.  D forward (×3): 6×5→4, 6×4→1.
    g_fwd = 2 * 6 * 3 * 2 + 2 * 6 * 5 * 3
    d_fwd = 2 * 6 * 4 * 5 + 2 * 6 * 1 * 4
    # D update, twice (real, fake): both weight gradients, input gradient of the second layer only.
    d_upd = (2 * 5 * 4 * 6 + 2 * 4 * 1 * 6) + 2 * 6 * 4 * 1
    # G update: input gradients of both D layers, no D weight gradients;
    # then G: both weight gradients, input gradient of the second layer only.
    d_through = 2 * 6 * 5 * 4 + 2 * 6 * 4 * 1
    g_bwd = (2 * 2 * 3 * 6 + 2 * 3 * 5 * 6) + 2 * 6 * 3 * 5
    expected = g_fwd + 3 * d_fwd + 2 * d_upd + d_through + g_bwd
    assert expected == 2508
    assert bench_step.step_flops(gan, b) == expected
    assert len(bench_step.step_gemms(gan, b)) == 2 + 6 + 2 * 3 + 2 + 3


def test_floor_counts_packed_discriminator_rows():
    gan = _tiny_gan(pack=2, batch_size=6)
    d_first = [g for g in bench_step.step_gemms(gan, 6) if g.what.startswith("D(real) fwd")][0]
    assert (d_first.m, d_first.k) == (3, 10)  # 6 samples judged in 3 packs of 2


def _record_dense_gemms(monkeypatch) -> list:
    """Every Dense matrix product from now on, as (layout, m, n, k), in the order they run."""
    seen = []
    forward, backward = Dense.forward, Dense.backward

    def rec_forward(self, x):
        seen.append(("nn", x.shape[0], self.n_out, self.n_in))
        return forward(self, x)

    def rec_backward(self, dy, need_dx=True, need_dparams=True):
        if need_dparams:
            seen.append(("tn", self.n_in, self.n_out, dy.shape[0]))
        if need_dx:
            seen.append(("nt", dy.shape[0], self.n_in, self.n_out))
        return backward(self, dy, need_dx, need_dparams)

    monkeypatch.setattr(Dense, "forward", rec_forward)
    monkeypatch.setattr(Dense, "backward", rec_backward)
    return seen


def test_step_gemms_are_the_gemms_train_step_performs(monkeypatch):
    """Record every Dense product of a real training step and compare with the accounting."""
    gan, b = _tiny_gan(g_hidden=[3, 4], g_batchnorm=[False, True], d_hidden=[4, 3], d_dropout=0.3), 6
    seen = _record_dense_gemms(monkeypatch)
    rng = np.random.default_rng(0)
    gan.train_step(rng.uniform(-1, 1, (b, 5)).astype(np.float32), rng.standard_normal((b, 2)).astype(np.float32))
    counted = [(g.layout, g.m, g.n, g.k) for g in bench_step.step_gemms(gan, b)]
    assert sorted(counted) == sorted(seen)


@pytest.mark.parametrize("overrides", [
    {"loss": "hinge"}, {"loss": "wgan-gp", "n_critic": 2}, {"r1_gamma": 1.0, "pack": 2},
    {"d_spectral_norm": True}, {"d_spectral_norm": True, "loss": "wgan-gp", "r1_gamma": 1.0},
    {"n_classes": 3, "conditioning": "concat", "r1_gamma": 1.0, "pack": 2},
    {"n_classes": 3, "conditioning": "projection"},
    {"n_classes": 3, "conditioning": "projection", "loss": "wgan-gp", "r1_gamma": 1.0, "n_critic": 2, "pack": 2},
], ids=["hinge", "wgan-gp-n-critic-2", "r1-pack", "spectral-norm", "spectral-norm-both-penalties", "concat-r1-pack",
        "projection", "projection-both-penalties-n-critic-2-pack"])
def test_step_gemms_of_each_variant_are_the_products_train_step_performs(monkeypatch, overrides):
    """Every matrix product of a step with penalties, spectral norms or several D updates, by shape."""
    gan, b = _tiny_gan(g_hidden=[3, 4], g_batchnorm=[False, True], d_hidden=[4, 3], d_dropout=0.3, batch_size=6,
                       **overrides), 6
    seen = []
    matmul = Ops.matmul

    def recording(self, a, c, out=None):
        seen.append((a.shape[0], c.shape[1], a.shape[1]))
        return matmul(self, a, c, out)

    monkeypatch.setattr(Ops, "matmul", recording)
    rng = np.random.default_rng(0)
    rows = b * gan.config.n_critic
    labels = rng.integers(0, 3, rows) if gan.config.n_classes else None
    gan.train_step(rng.uniform(-1, 1, (rows, 5)).astype(np.float32), rng.standard_normal((rows, 2)).astype(np.float32),
                   labels)
    assert sorted((g.m, g.n, g.k) for g in bench_step.step_gemms(gan, b)) == sorted(seen)


def test_variants_are_timed_beside_the_plain_step():
    assert bench_step.parse_variant("loss=wgan-gp,n_critic=5") == ("loss=wgan-gp,n_critic=5",
                                                                    {"loss": "wgan-gp", "n_critic": 5})
    with pytest.raises(argparse.ArgumentTypeError, match="GANConfig fields"):
        bench_step.parse_variant("nope=1")
    result = bench_step.run(["numpy"], [4], "reference", steps=2, warmup=1, pause=0,
                            variants=dict([bench_step.parse_variant("d_spectral_norm=true")]))
    plain, variant = result["rows"]
    assert (plain["variant"], variant["variant"]) == ("plain", "d_spectral_norm=true")
    assert plain["ratio_to_plain"] == 1.0 and variant["ratio_to_plain"] == variant["median_ms"] / plain["median_ms"]
    assert variant["n_gemms"] > plain["n_gemms"]  # its own floor, with the power iterations
    assert "| numpy | reference | d_spectral_norm=true | 4 |" in bench_step.markdown_table(result)


def test_a_conditional_variant_is_timed_with_the_classes_of_its_batch():
    result = bench_step.run(["numpy"], [4], "reference", steps=2, warmup=1, pause=0,
                            variants=dict([bench_step.parse_variant("n_classes=10,conditioning=projection")]))
    plain, variant = result["rows"]
    # the head: C E beside each of three D forwards, and dE beside dW in both D updates
    assert variant["status"] == "ok" and variant["n_gemms"] == plain["n_gemms"] + 3 + 2


def _check_schema(result, backends, batches):
    assert set(result) == {"machine", "rows"}
    json.loads(json.dumps(result))  # JSON-able as written by --json
    m = result["machine"]
    for key in ("cpu", "cores", "blas", "gpu", "numpy", "python", "tinygan"):
        assert key in m
    assert len(result["rows"]) == len(backends) * len(batches)
    for row in result["rows"]:
        for key in bench_step.ROW_KEYS:
            assert key in row
        assert row["backend"] in backends and row["batch_size"] in batches
        if row["status"] == "ok":
            assert row["min_ms"] <= row["median_ms"] <= row["max_ms"]
            assert row["floor_ms"] > 0 and row["gflops"] > 0 and row["samples_per_s"] > 0
            assert row["ratio_to_floor"] == pytest.approx(row["median_ms"] / row["floor_ms"])
        else:
            assert row["note"]  # the reason
            assert row["median_ms"] is None and row["ratio_to_torch"] is None


def test_bench_step_numpy_schema_and_table(tmp_path):
    backends, batches = ["numpy", "cupy", "cupy-graph"], [4, 8]
    result = bench_step.run(backends, batches, "reference", steps=3, warmup=1, pause=0)
    _check_schema(result, backends, batches)
    rows = {(r["backend"], r["batch_size"]): r for r in result["rows"]}
    assert rows["numpy", 8]["status"] == "ok"
    assert rows["numpy", 8]["ratio_to_torch"] is None  # PyTorch did not run
    assert rows["numpy", 8]["flops"] == bench_step.step_flops(GAN.from_preset("reference", (28, 28), "numpy"), 8)
    if not cupy_available():
        assert rows["cupy", 8]["status"] == "unavailable"
        assert rows["cupy-graph", 8]["status"] == "unavailable"
    table = bench_step.markdown_table(result)
    assert table.count("\n| numpy | reference |") == 2
    out = tmp_path / "bench.json"
    assert (
        bench_step.main(
            [
                "--backends",
                "numpy",
                "--batch-sizes",
                "4",
                "--model",
                "reference",
                "--steps",
                "2",
                "--warmup",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    _check_schema(json.loads(out.read_text()), ["numpy"], [4])


@needs_torch
def test_bench_step_with_torch_cpu():
    backends, batches = ["numpy", "torch-cpu"], [8]
    result = bench_step.run(backends, batches, "reference", steps=2, warmup=1, pause=0)
    _check_schema(result, backends, batches)
    numpy_row, torch_row = result["rows"]
    assert torch_row["status"] == "ok" and torch_row["ratio_to_torch"] == 1.0
    assert numpy_row["ratio_to_torch"] == pytest.approx(numpy_row["median_ms"] / torch_row["median_ms"])
    assert result["machine"]["torch"]


@needs_torch
@pytest.mark.parametrize(("pack", "g_ema_decay"), [(1, 0.0), (2, 0.9)])
def test_torch_peer_is_the_same_model(pack, g_ema_decay):
    """Same weights in, same losses and parameters out, for three full steps (float64, no dropout)."""
    from _torch_peer import TorchGAN

    gan = _tiny_gan(
        g_hidden=[8, 8],
        g_batchnorm=[False, True],
        d_hidden=[8, 6],
        pack=pack,
        batch_size=8,
        dtype="float64",
        real_label=0.9,
        g_ema_decay=g_ema_decay,
    )
    peer = TorchGAN(gan)
    peer.load_from_tinygan(gan)
    assert_same_steps(gan, peer, (8, 5), (8, 2), ("d_loss", "g_loss", "d_real", "d_fake"))
    for net, tnet in ((gan.G, peer.G), (gan.D, peer.D)):
        flat = np.concatenate([(p.T if p.ndim == 2 else p).detach().numpy().ravel() for p in tnet.parameters()])
        np.testing.assert_allclose(flat, net.params, rtol=0, atol=1e-9)
    if g_ema_decay:
        flat = np.concatenate([(p.T if p.ndim == 2 else p).numpy().ravel() for p in peer.G_avg])
        np.testing.assert_allclose(flat, gan.G_avg.params, rtol=0, atol=1e-9)


def test_plot_bench_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    import plot_bench

    rows = [
        {
            "backend": b,
            "model": "default",
            "batch_size": n,
            "status": "ok",
            "median_ms": t * n,
            "min_ms": t * n,
            "max_ms": 1.1 * t * n,
            "floor_ms": 0.5 * n,
            "floor_min_ms": 0.5 * n,
            "floor_max_ms": 0.5 * n,
        }
        for b, t in (("numpy", 1.0), ("torch-cpu", 2.0))
        for n in (64, 256)
    ]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"machine": {"cpu": "test"}, "rows": rows}))
    assert plot_bench.main([str(path)]) == 0
    png = path.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_modes_table_and_parallel_runs_agree(tmp_path, capsys):
    """Worker processes get one BLAS thread each, so they reproduce a one-process run made with one
    BLAS thread exactly (another thread count sums in another order and moves the last digits)."""
    import bench_modes

    args = ["--datasets", "ring", "--packs", "1,2", "--seeds", "2", "--steps", "30"]
    parallel, sequential = tmp_path / "parallel.json", tmp_path / "sequential.json"
    assert bench_modes.main([*args, "--jobs", "2", "--json", str(parallel)]) == 0
    table = capsys.readouterr().out
    assert "| ring (8) | GAN | 2 |" in table and "| ring (8) | PacGAN2 | 2 |" in table
    assert "6.3 ± 0.5" in table  # the published GAN row stands beside ours
    one_thread = {**os.environ, **dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")}
    script = str(BENCH_DIR / "bench_modes.py")
    subprocess.run([sys.executable, script, *args, "--json", str(sequential)], env=one_thread, check=True,
                   capture_output=True)  # fmt: skip
    runs = [
        [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(path.read_text())["runs"]]
        for path in (sequential, parallel)
    ]
    assert [(r["pack"], r["seed"]) for r in runs[1]] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert runs[0] == runs[1]


def test_bench_modes_measures_what_the_readme_train_command_writes(tmp_path, monkeypatch):
    """A benchmark run and ``train --dataset ring --pack 2 --batch-size 200 --seed S`` (the README's
    command) train the same model and score the same 2,500 samples, so its row is what eval.json says."""
    import bench_modes

    from tinygan.evaluation import evaluate
    from tinygan.interfaces import cli

    scored = {}

    def keep(name, metrics):
        def spy(samples, modes, std):
            scored[name] = samples
            return metrics(samples, modes, std)

        return spy

    monkeypatch.setattr(evaluate, "mode_metrics", keep("train", evaluate.mode_metrics))
    monkeypatch.setattr(bench_modes, "mode_metrics", keep("bench", bench_modes.mode_metrics))
    seed, steps, run = 3, 5, tmp_path / "run"
    command = ["train", "--dataset", "ring", "--pack", "2", "--batch-size", "200", "--seed", str(seed)]
    assert cli.main([*command, "--steps", str(steps), "--out", str(run)]) == 0
    measured = bench_modes.train_and_measure("ring", 2, seed, steps)
    written = json.loads((run / "eval.json").read_text())
    assert scored["bench"].shape == (bench_modes.N_SAMPLES, 2) == (written["n"], 2)
    np.testing.assert_array_equal(scored["bench"], scored["train"])
    assert {k: measured[k] for k in written if k != "n"} == {k: v for k, v in written.items() if k != "n"}


def test_bench_modes_settings_reach_the_model(monkeypatch, capsys):
    import bench_modes

    seen = []
    monkeypatch.setattr(bench_modes.GAN, "fit", lambda gan, x, **kw: seen.append(gan.config))
    args = ["--datasets", "grid", "--packs", "2", "--seeds", "1", "--steps", "5", "--lr-decay", "0.5"]
    settings = ["--set", "g_hidden=[7,7]", "--set", "lr_g=1e-3", "--set", "d_activation=maxout"]
    assert bench_modes.main([*args, *settings]) == 0
    (config,) = seen
    assert (config.g_hidden, config.lr_g, config.d_activation, config.lr_decay) == ([7, 7], 1e-3, "maxout", 0.5)
    assert (config.pack, config.batch_size) == (2, 200)
    assert "g_hidden = [7, 7]; lr_g = 0.001" in capsys.readouterr().out
    for bad in ("nope=1", "lr_g", "g_batchnorm=[true]"):  # unknown field, no value, 1 flag for 4 layers
        with pytest.raises(SystemExit):
            bench_modes.main(["--set", bad, "--seeds", "1", "--steps", "1"])


@pytest.mark.parametrize("peer", ["jax-cpu", "torch-compile"])
def test_compiled_peers_report_their_compile_time_apart(peer):
    """A compiled peer's first call (the compilation) is timed apart from its steps; without the
    library installed the row says so."""
    module = {"jax-cpu": "jax", "torch-compile": "torch"}[peer]
    result = bench_step.run([peer], [4], "reference", steps=2, warmup=1, pause=0)
    row = result["rows"][0]
    if importlib.util.find_spec(module) is None:
        assert row["status"] == "unavailable" and module in row["note"].lower()
        return
    assert row["status"] == "ok" and row["compile_s"] > 0 and row["n_steps"] == 2
    assert "compiled in" in bench_step.markdown_table(result)


# -- the VAE: its GEMM accounting and its PyTorch twin ------------------------------------------------


def _tiny_vae(**overrides):
    from tinygan import VAE, VAEConfig

    settings = dict(data_shape=(5,), latent_dim=2, enc_hidden=[4, 3], dec_hidden=[3], batch_size=6)
    return VAE(VAEConfig(**{**settings, **overrides}), backend="numpy", seed=1)


def test_vae_step_gemms_are_the_gemms_train_step_performs(monkeypatch):
    vae, b = _tiny_vae(), 6
    seen = _record_dense_gemms(monkeypatch)
    rng = np.random.default_rng(0)
    vae.train_step(rng.random((b, 5)).astype(np.float32), rng.standard_normal((b, 2)).astype(np.float32))
    counted = [(g.layout, g.m, g.n, g.k) for g in bench_step.model_gemms(vae, b)]
    # enc 5→4→3→4 and dec 2→3→5: 5 forwards, 5 weight gradients, input gradients of all but enc's first
    assert len(counted) == 5 + 5 + 4 and sorted(counted) == sorted(seen)


@needs_torch
def test_bench_step_times_the_vae_beside_its_twin():
    result = bench_step.run(["numpy", "torch-cpu"], [8], "vae", steps=2, warmup=1, pause=0)
    _check_schema(result, ["numpy", "torch-cpu"], [8])
    numpy_row, torch_row = result["rows"]
    assert numpy_row["model"] == "vae" and torch_row["status"] == "ok"
    from tinygan import VAE

    assert numpy_row["flops"] == sum(g.flops for g in bench_step.vae_step_gemms(VAE.from_preset("vae"), 8))


@needs_torch
@pytest.mark.parametrize("kind", ["image", "points"])
def test_torch_vae_is_the_same_model(kind):
    """Same weights and noise in, same loss terms and parameters out, for three steps (float64)."""
    import torch
    from _torch_peer import TorchVAE

    vae = _tiny_vae(data_kind=kind, dtype="float64", activation="leaky_relu", x_std=0.3)
    peer = TorchVAE(vae)
    peer.load_from_tinygan(vae)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.random((6, 5)) if kind == "image" else rng.standard_normal((6, 5))
        eps = rng.standard_normal((6, 2))
        ours = vae.train_step(x, eps)
        theirs = peer.train_step(torch.from_numpy(x), torch.from_numpy(eps))
        for k in ("neg_elbo", "recon", "kl"):
            assert float(theirs[k]) == pytest.approx(float(ours[k]), rel=1e-9), k
    for net, tnet in ((vae.enc, peer.enc), (vae.dec, peer.dec)):
        flat = np.concatenate([(p.T if p.ndim == 2 else p).detach().numpy().ravel() for p in tnet.parameters()])
        np.testing.assert_allclose(flat, net.params, rtol=0, atol=1e-9)
    test = rng.random((7, 5)) if kind == "image" else rng.standard_normal((7, 5))
    ours, theirs = vae.elbo(test.astype(np.float32), seed=3), peer.elbo(test.astype(np.float32), seed=3)
    assert theirs["neg_elbo"] == pytest.approx(ours["neg_elbo"], rel=1e-6)


@needs_torch
def test_vae_peer_script_compares_like_with_like(tmp_path, capsys):
    import vae_peer

    out = tmp_path / "peer.json"
    args = ["--dataset", "digits", "--n-train", "640", "--n-test", "100", "--epochs", "1", "--seeds", "0"]
    assert vae_peer.main([*args, "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["steps"] == 10 and abs(result["relative_difference"]) < 1e-4
    assert "| 0 | 10 |" in capsys.readouterr().out


def test_profile_parts_are_exclusive_and_removed_afterwards(monkeypatch):
    """On a clock that only the toy's work moves (no real time: a loaded machine cannot break it)."""
    import profile_step

    now = [0.0]
    monkeypatch.setattr(profile_step.time, "perf_counter", lambda: now[0])

    class Toy:
        def outer(self):
            now[0] += 0.02
            self.inner()

        def inner(self):
            now[0] += 0.01

    original = Toy.__dict__["outer"]
    prof = profile_step.Profile()
    prof.wrap(Toy, "outer", "outer")
    prof.wrap(Toy, "inner", "inner")
    Toy().outer()
    prof.uninstall()
    assert Toy.__dict__["outer"] is original
    assert prof.totals["inner"] == pytest.approx(0.01)  # the inner call's time is counted once, in "inner"
    assert prof.totals["outer"] == pytest.approx(0.02)


def test_profile_of_a_step_names_its_parts_and_restores_the_engine():
    import profile_step

    forward = Dense.__dict__["forward"]
    plain, parts = profile_step.profile_batch("default", 8, steps=2, warmup=1)
    assert Dense.__dict__["forward"] is forward and plain > 0
    expected = ("Dense forward", "Dense backward", "Adam (both networks)", "averaged G weights", "Python and the rest")
    assert set(expected) <= set(parts)
    assert all(t > 0 for name, t in parts.items() if name != "Python and the rest")
    assert profile_step.python_floor("default", steps=2, warmup=1) > 0
    for variants, restore in ((profile_step.pool_variants("1024,0", None), lambda: pool.set_pool(None)),
                              (profile_step.pool_variants(None, "1,2"), lambda: pool.set_pool(None)),
                              (profile_step.adam_traffic_variants(), profile_step.adam_traffic_variants()["Adam"])):
        found = profile_step.compare("default", 8, variants, restore, steps=2, warmup=1)
        assert set(found) == set(variants) and all(step > adam > 0 for step, adam in found.values())
    assert Adam._update is profile_step.ADAM_UPDATE and pool.block_pool().block == pool.BLOCK  # all restored


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs an OS that pins threads, and two cores to pin away from")
def test_threads_pin_the_process_so_that_peers_starting_threads_later_share_those_cores():
    """In a child process: after set_threads(1), the process and any thread it starts run on one core."""
    pytest.importorskip("threadpoolctl", reason="--threads needs the bench extra")
    code = ("import os, threading, _runners; _runners.set_threads(1); seen = []; "
            "t = threading.Thread(target=lambda: seen.append(len(os.sched_getaffinity(0)))); t.start(); t.join(); "
            "print(len(os.sched_getaffinity(0)), seen[0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=BENCH_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]
