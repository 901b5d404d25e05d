"""What did the GAN learn? Mode coverage on 2-D mixtures, classifier-based scores on images.

Two families of metrics, chosen by the dataset the GAN was trained on:

* **2-D Gaussian mixtures** (``ring``, ``grid``), as defined by VEEGAN (Srivastava et al.,
  2017) and PacGAN (Lin et al., 2018) on 2,500 generated samples: a sample is *high quality*
  when it lies within 3 standard deviations of its nearest mode centre; a mode is *captured*
  when it is the nearest mode of at least one high-quality sample; the *reverse KL* compares the
  high-quality samples' histogram over modes with the true (uniform) mode distribution. See
  :func:`mode_metrics`.

* **Images** with class labels (``digits``, ``mnist``, ``fashion-mnist``): a small MLP
  classifier, trained by tinygan's own engine on the real training images and cached beside the
  data, serves as the feature extractor and the judge. Generated samples get a Fréchet distance
  in the classifier's penultimate-layer features against the real test images (the FID recipe
  with a task-specific network instead of Inception), the share of each predicted class, and a
  classifier-based inception score. The same numbers for held-out real images give the floor
  that a perfect generator would reach. See :func:`image_metrics`.

:func:`evaluate_gan` picks the family and returns one JSON-serialisable dict.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import Array, Backend, get_backend, to_numpy
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import cache_dir, load_dataset, mixture_modes
from .losses import softmax_cross_entropy
from .network import Sequential, mlp
from .optim import Adam

if TYPE_CHECKING:
    from .gan import GAN

MIXTURES = ("ring", "grid")
LABELLED_IMAGES = ("digits", "mnist", "fashion-mnist")
DEFAULT_N = {"points": 2_500, "image": 10_000}

# High-quality radius in standard deviations of a mode (VEEGAN, PacGAN).
HQ_STDS = 3.0
# A class counts as covered when its share among generated samples is at least this fraction of
# its share among real images: 0.1 means at least 1% of the samples for 10 balanced classes.
COVERED_FRACTION = 0.1


# ============================================================================ 2-D mixtures


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """``KL(p ‖ q) = Σ_k p_k log(p_k / q_k)`` in nats, with ``0 · log 0 = 0``.

    ``p, q: (K,)`` probability vectors; every ``k`` with ``p_k > 0`` must have ``q_k > 0``.
    Terms where ``p_k = 0`` are dropped, so mass that ``p`` does not put somewhere costs nothing.
    """
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    on = p > 0
    if np.any(q[on] <= 0):
        raise ValueError("KL(p || q) is infinite: p puts mass where q has none")
    return float(np.sum(p[on] * np.log(p[on] / q[on])))


def mode_metrics(
    samples: np.ndarray, modes: np.ndarray, std: float, hq_stds: float = HQ_STDS
) -> dict[str, Any]:
    """Mode coverage of ``samples: (N, 2)`` on isotropic Gaussians ``modes: (K, 2)`` of std ``std``.

    Definitions of VEEGAN / PacGAN (checked against PacGAN's ``MetricLogger`` code):

    * ``hq_percent``: percentage of samples within ``hq_stds · std`` (Euclidean) of their nearest
      mode -- the PacGAN code's Mahalanobis distance ``√Σ (x − μ)² / σ²`` below 3, with σ the
      same on both axes. Real data scores ``1 − e^{−9/2}`` ≈ 98.9% in 2-D.
    * ``modes``: number of modes that are the nearest mode of at least one high-quality sample
      (of ``modes_total`` = K).
    * ``reverse_kl``: ``KL(p̂ ‖ u) = Σ_k p̂_k log(K p̂_k)`` in nats, where ``p̂`` is the histogram
      of the high-quality samples over their nearest modes and ``u`` the true mode distribution
      (uniform, 1/K). *Reverse* means the model's distribution comes first, the direction that
      stays finite when modes are missed (PacGAN's Table 1 reports finite values for GANs that
      miss modes; the forward ``KL(u ‖ p̂)`` would be infinite). Empty modes follow
      ``0 · log 0 = 0``, as in the KL helper of the PacGAN code: a missed mode adds no term of
      its own and is paid for through the extra mass on the captured ones. So all samples on
      one mode give ``log K``, a perfect spread gives 0, and ``m`` equally filled modes give
      ``log(K / m)``. With no high-quality sample at all it is ``None``.

    ``mode_counts`` lists the high-quality samples per mode.
    """
    x = np.asarray(samples, np.float64).reshape(len(samples), -1)
    centres = np.asarray(modes, np.float64)
    k = len(centres)
    # ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖²: an (N, K) array, never (N, K, 2), for large N.
    sq = (x * x).sum(axis=1)[:, None] - 2.0 * x @ centres.T + (centres * centres).sum(axis=1)[None, :]
    dist = np.sqrt(np.clip(sq, 0.0, None))  # (N, K)
    nearest = dist.argmin(axis=1)
    hq = dist[np.arange(len(x)), nearest] < hq_stds * std
    counts = np.bincount(nearest[hq], minlength=k)
    total = int(counts.sum())
    reverse_kl = kl_divergence(counts / total, np.full(k, 1.0 / k)) if total else None
    return {
        "modes": int(np.count_nonzero(counts)),
        "modes_total": k,
        "hq_percent": 100.0 * total / max(len(x), 1),
        "reverse_kl": reverse_kl,
        "mode_counts": counts.tolist(),
    }


# ============================================================================ image metrics


def frechet_distance(feat1: np.ndarray, feat2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to ``feat1: (N1, F)`` and ``feat2: (N2, F)``.

    ``‖μ₁ − μ₂‖² + tr(S₁ + S₂ − 2 (S₁^{1/2} S₂ S₁^{1/2})^{1/2})``. The usual ``(S₁ S₂)^{1/2}``
    has the same trace (``S₁ S₂`` is similar to ``S₁^{1/2} S₂ S₁^{1/2}``), but the symmetric
    form needs only ``eigh`` of symmetric positive semi-definite matrices -- no general matrix
    square root, no complex parts, no SciPy. Eigenvalues that rounding pushes below zero are
    clipped. Computed in float64 on the host (F is small: the classifier's 128 features).
    """
    mu1, s1 = _mean_cov(feat1)
    mu2, s2 = _mean_cov(feat2)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # S₁^{1/2}
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    fd = float(np.sum((mu1 - mu2) ** 2)) + float(np.trace(s1) + np.trace(s2)) - 2.0 * trace_root
    return max(fd, 0.0)  # rounding can leave a tiny negative number for identical sets


def _mean_cov(feat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(feat, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be (N, F) with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def class_shares(probs: np.ndarray) -> np.ndarray:
    """Share of each class among the classifier's top-1 predictions; ``probs: (N, K)`` → ``(K,)``."""
    probs = np.asarray(probs)
    return np.bincount(probs.argmax(axis=1), minlength=probs.shape[1]) / len(probs)


def classifier_inception_score(probs: np.ndarray) -> float:
    """``exp(E_x[KL(p(y|x) ‖ p(y))])`` with ``p(y)`` the mean of ``p(y|x)`` over the samples.

    ``probs: (N, K)`` rows of ``p(y|x)``. Ranges from 1 (every sample gets the same prediction)
    to K (confident predictions spread evenly over all K classes).
    """
    p = np.asarray(probs, np.float64)
    marginal = p.mean(axis=0)
    # Per-sample KL with 0·log 0 = 0; where p(y|x) > 0 the marginal is > 0 too.
    safe = np.where(p > 0, p, 1.0)
    per_sample = np.sum(
        np.where(p > 0, p * (np.log(safe) - np.log(np.where(marginal > 0, marginal, 1.0))), 0.0), axis=1
    )
    return float(np.exp(per_sample.mean()))


def class_metrics(probs: np.ndarray, reference_shares: np.ndarray) -> dict[str, Any]:
    """Class coverage of samples with classifier outputs ``probs: (N, K)``.

    ``reference_shares: (K,)`` is the class distribution of real images *as the classifier sees
    it* (its top-1 predictions on real test images), so the classifier's own confusions (shirt
    vs T-shirt) cancel out and real images score ``class_kl`` ≈ 0.

    * ``classes_covered``: classes whose share is at least ``COVERED_FRACTION`` (0.1) of their
      reference share -- at least 1% of the samples when 10 classes are balanced.
    * ``max_class_share``: the largest share of one class (0.1 for 10 balanced classes, 1.0 at
      total collapse).
    * ``class_kl``: ``KL(generated ‖ reference)`` in nats with ``0 · log 0 = 0`` (missing classes
      cost only through the extra mass on the others; ``log K`` at collapse onto one of K
      balanced classes).
    * ``cis``: :func:`classifier_inception_score`.
    """
    shares = class_shares(probs)
    ref = np.asarray(reference_shares, np.float64)
    # A class the classifier never predicts on real data would make the KL infinite; a tiny
    # floor keeps it finite and large instead.
    ref = np.maximum(ref, 1e-6)
    ref = ref / ref.sum()
    return {
        # (1 − 1e-9): exactly a tenth must count despite rounding (0.1 · 0.1 > 0.01 in binary).
        "classes_covered": int(np.sum(shares >= COVERED_FRACTION * ref * (1 - 1e-9))),
        "max_class_share": float(shares.max()),
        "class_kl": kl_divergence(shares, ref),
        "cis": classifier_inception_score(probs),
        "class_shares": [round(float(s), 4) for s in shares],
    }


# ============================================================================ the classifier

CLASSIFIER_VERSION = 1  # bump when the architecture or the training recipe changes
CLASSIFIER_HIDDEN = (256, 128)


@dataclass
class TrainSettings:
    """Training recipe of the judging classifier (part of its cache key)."""

    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


class Classifier:
    """An MLP ``784 → 256 → 128 → K`` (ReLU) on images scaled to [0, 1].

    ``features`` are the 128 activations of the last hidden layer (the penultimate layer);
    ``probs`` the softmax of the logits. Both run on ``backend`` in evaluation mode and return
    host float arrays.
    """

    def __init__(
        self,
        n_in: int,
        n_classes: int,
        hidden: tuple[int, ...] = CLASSIFIER_HIDDEN,
        backend: str | Backend | None = None,
        seed: int = 0,
    ) -> None:
        self.n_in, self.n_classes, self.hidden = n_in, n_classes, tuple(hidden)
        self.backend = get_backend(backend)
        self.net = Sequential(mlp([n_in, *hidden, n_classes], "relu"), self.backend, "float32", seed=seed)
        self.xp = self.backend.xp

    def _to_device(self, x: np.ndarray | Array) -> Array:
        """Images ``(N, H, W)`` or ``(N, D)``, host or device, uint8 or in [0, 1] → float32 ``(N, D)``."""
        xp = self.xp
        x = self.backend.asarray(x) if isinstance(x, np.ndarray) else x
        scale = 1.0 / 255.0 if x.dtype == xp.uint8 else 1.0
        x = xp.reshape(xp.astype(x, xp.float32), (x.shape[0], self.n_in))
        return x * scale if scale != 1.0 else x

    def _forward(self, x: Array, upto: int | None = None) -> Array:
        """Evaluation-mode forward through ``layers[:upto]`` (all layers by default)."""
        self.net.eval()
        for layer in self.net.layers[:upto]:
            x = layer.forward(x)
        return x

    def _batched(self, x: np.ndarray, fn: Any, batch: int = 2048) -> np.ndarray:
        parts = [to_numpy(fn(self._to_device(x[i : i + batch]))) for i in range(0, len(x), batch)]
        return np.concatenate(parts).astype(np.float64)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(N, K)`` for images ``x``."""
        return self._batched(x, self._forward)

    def features(self, x: np.ndarray) -> np.ndarray:
        """Penultimate-layer activations ``(N, hidden[-1])`` for images ``x``."""
        return self._batched(x, lambda a: self._forward(a, upto=-1))

    def probs(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``p(y|x)``, ``(N, K)``."""
        a = self.logits(x)
        a = np.exp(a - a.max(axis=1, keepdims=True))
        return a / a.sum(axis=1, keepdims=True)

    def accuracy(self, x: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of ``x`` whose top-1 prediction equals ``labels``."""
        return float(np.mean(self.logits(x).argmax(axis=1) == np.asarray(labels)))

    def fit(self, x: np.ndarray, labels: np.ndarray, settings: TrainSettings | None = None) -> list[float]:
        """Train on images ``x: (N, H, W)`` with integer ``labels: (N,)``; returns the mean loss per epoch.

        Mini-batch Adam on softmax cross-entropy. The data are copied to the device once and
        batches gathered there, as in :mod:`tinygan.trainer`.
        """
        s = settings or TrainSettings()
        xp, net = self.xp, self.net
        data = self.backend.asarray(np.ascontiguousarray(x))
        y = self.backend.asarray(np.asarray(labels, np.int64))
        rng = self.backend.rng(s.seed)
        opt = Adam(net.params, net.grads, s.lr, (0.9, 0.999))
        net.train()
        n, b = len(x), min(s.batch_size, len(x))
        history = []
        for _ in range(s.epochs):
            perm = rng.permutation(n)
            total = xp.zeros((), dtype=xp.float32)
            steps = n // b  # the last partial batch is dropped
            for i in range(steps):
                idx = perm[i * b : (i + 1) * b]
                net.zero_grad()
                loss, grad = softmax_cross_entropy(
                    net.forward(self._to_device(xp.take(data, idx, axis=0))), xp.take(y, idx, axis=0)
                )
                net.backward(grad, need_dx=False)
                opt.step()
                total = total + loss
            history.append(float(total) / max(steps, 1))  # one host read per epoch
        net.eval()
        return history

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and metadata for :func:`tinygan.checkpoint.save_checkpoint`."""
        return self.net.state_dict(), {
            "n_in": self.n_in,
            "n_classes": self.n_classes,
            "hidden": list(self.hidden),
        }

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], backend: str | Backend | None = None
    ) -> Classifier:
        clf = cls(int(meta["n_in"]), int(meta["n_classes"]), tuple(meta["hidden"]), backend)
        clf.net.load_state_dict(arrays)
        clf.net.eval()
        return clf


def data_fingerprint(x: np.ndarray, labels: np.ndarray, settings: TrainSettings) -> str:
    """SHA-256 over the training images, labels, architecture and recipe: the classifier's cache key."""
    h = hashlib.sha256()
    h.update(f"v{CLASSIFIER_VERSION} {CLASSIFIER_HIDDEN} {settings} {x.shape} {x.dtype}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def load_or_train_classifier(
    name: str,
    x: np.ndarray,
    labels: np.ndarray,
    backend: str | Backend | None = None,
    settings: TrainSettings | None = None,
    cache: str | Path | None = None,
    verbose: bool = True,
) -> Classifier:
    """The judging classifier for dataset ``name``, trained on ``(x, labels)`` once and then cached.

    The cache file (default ``cache_dir(name)/classifier.npz``) records a fingerprint of the
    training data and recipe; on any mismatch, or an unreadable file, the classifier is trained
    again and the file replaced (atomically, so concurrent readers see the old or the new one).
    """
    settings = settings or TrainSettings()
    path = Path(cache) if cache is not None else cache_dir(name) / "classifier.npz"
    key = data_fingerprint(x, labels, settings)
    try:
        arrays, meta = load_checkpoint(path)
        if meta.get("fingerprint") == key:
            return Classifier.from_state(arrays, meta, backend)
    except (CheckpointError, KeyError, TypeError, ValueError):
        pass  # missing, stale or damaged: train a fresh one
    n_classes = int(np.max(labels)) + 1
    clf = Classifier(int(np.prod(x.shape[1:])), n_classes, backend=backend, seed=settings.seed)
    if verbose:
        print(
            f"training the {name} evaluation classifier ({len(x)} images, {settings.epochs} epochs)...",
            file=sys.stderr,
        )
    clf.fit(x, labels, settings)
    arrays, meta = clf.state()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, arrays, {**meta, "fingerprint": key, "dataset": name})
    except OSError:
        pass  # a read-only cache only costs the training time next time
    return clf


# ============================================================================ whole-model evaluation


def image_metrics(
    fake: np.ndarray,
    test_x: np.ndarray,
    clf: Classifier,
    seed: int = 0,
) -> dict[str, Any]:
    """Classifier-based metrics of generated images ``fake: (N, H, W)`` in [0, 1] against real ``test_x``.

    * ``fd``: Fréchet distance in ``clf``'s penultimate features between ``fake`` and *all* of
      ``test_x``.
    * ``classes_covered``, ``max_class_share``, ``class_kl``, ``cis``: :func:`class_metrics` with
      the reference class distribution of ``clf``'s predictions on all of ``test_x``.
    * ``real``: the same metrics for held-out real images: ``test_x`` is split at random into two
      disjoint halves A and B, and A is scored against B as the reference. ``fd_real_floor``
      (= ``real["fd"]``) is therefore FD between two halves of the test set, which are both
      unseen by the classifier; with half as many images on each side, its small-sample bias is
      slightly larger than that of a full-size comparison, so it is a conservative floor.
    """
    feats_test, probs_test = clf.features(test_x), clf.probs(test_x)
    feats_fake, probs_fake = clf.features(fake), clf.probs(fake)
    result = {"fd": frechet_distance(feats_fake, feats_test)}
    result.update(class_metrics(probs_fake, class_shares(probs_test)))

    perm = np.random.default_rng(seed).permutation(len(test_x))
    a, b = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    real = {"fd": frechet_distance(feats_test[a], feats_test[b])}
    real.update(class_metrics(probs_test[a], class_shares(probs_test[b])))
    result["fd_real_floor"] = real["fd"]
    result["real"] = real
    result["n"] = len(fake)
    result["n_test"] = len(test_x)
    return result


def _latents(gan: GAN, n: int, seed: int) -> np.ndarray:
    # Host-drawn latents, as `tinygan sample` draws them, so results do not depend on the backend.
    return np.random.default_rng(seed).standard_normal((n, gan.config.latent_dim)).astype(np.float32)


def sample_gan(gan: GAN, n: int, seed: int = 0, batch: int = 2500) -> np.ndarray:
    """``n`` samples from ``gan`` (host float32, data units) from seeded latents, in batches."""
    z = _latents(gan, n, seed)
    parts = [gan.sample(len(z[i : i + batch]), z=z[i : i + batch]) for i in range(0, n, batch)]
    return np.concatenate(parts) if parts else np.zeros((0, *gan.config.data_shape), np.float32)


def evaluate_gan(
    gan: GAN,
    n: int | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    dataset: str | None = None,
) -> dict[str, Any] | None:
    """Quality metrics of ``gan``'s samples for the dataset it was trained on, as a JSON-able dict.

    ``dataset`` names that dataset (the checkpoint meta's ``"dataset"``); without it,
    ``gan.dataset_name`` is used if set. ``n`` generated samples (default 2,500 for 2-D points,
    10,000 for images) are drawn from latents seeded by ``seed``.

    * ``ring``, ``grid``: ``modes``, ``modes_total``, ``hq_percent``, ``reverse_kl`` (and
      ``mode_counts``); see :func:`mode_metrics`.
    * ``digits``, ``mnist``, ``fashion-mnist``: ``fd``, ``fd_real_floor``, ``classes_covered``,
      ``max_class_share``, ``class_kl``, ``cis``, ``class_shares`` and the real-data values under
      ``"real"``; see :func:`image_metrics`. The classifier is trained on the first call (tens of
      seconds on a CPU) and cached.

    Returns ``None`` when there is nothing meaningful to measure: an unknown dataset name, or a
    user ``.npy``/``.npz`` dataset (no mode centres, no class labels to train a judge on).
    Raises :class:`~tinygan.data.DataError` when the dataset's files cannot be found.
    """
    name = dataset if dataset is not None else getattr(gan, "dataset_name", None)
    if name is None:
        return None
    key = str(name).lower()
    kind = gan.config.data_kind
    n = DEFAULT_N.get(kind, 2_500) if n is None else int(n)
    if n < 2:
        raise ValueError(f"evaluation needs at least 2 samples, got n={n}")
    if key in MIXTURES and kind == "points":
        modes, std = mixture_modes(key)
        return {"dataset": key, "n": n, **mode_metrics(sample_gan(gan, n, seed), modes, std)}
    if key in LABELLED_IMAGES and kind == "image":
        train = load_dataset(key, data_dir=data_dir, split="train")
        test = load_dataset(key, data_dir=data_dir, split="test")
        if train.labels is None or test.labels is None:
            return None
        clf = load_or_train_classifier(key, train.x, train.labels, backend=gan.backend)
        fake = sample_gan(gan, n, seed).reshape(n, *test.x.shape[1:])
        result = image_metrics(fake, test.x, clf, seed)
        result["classifier_test_accuracy"] = clf.accuracy(test.x, test.labels)
        return {"dataset": key, **result}
    return None


class FDTracker:
    """The Fréchet distance of a run's samples against the real test images, measured at intervals.

    Built once per run (the judge and the real test features are computed up front), then
    called with the GAN at the steps where the curve should have a point. ``n`` generated samples
    from fixed latents keep successive points comparable.
    """

    def __init__(self, gan: GAN, data_dir: str | None = None, n: int = 2_000) -> None:
        name = gan.dataset_name
        train = load_dataset(name, data_dir=data_dir, split="train")
        test = load_dataset(name, data_dir=data_dir, split="test")
        self.clf = load_or_train_classifier(name, train.x, train.labels, backend=gan.backend)
        self.test_features = self.clf.features(test.x)
        self.image_shape = test.x.shape[1:]
        self.n = n

    @classmethod
    def supports(cls, gan: GAN) -> bool:
        """True when ``gan`` was trained on a labelled image dataset that a judge can be trained on."""
        return gan.config.data_kind == "image" and str(gan.dataset_name).lower() in LABELLED_IMAGES

    def __call__(self, gan: GAN) -> float:
        fake = sample_gan(gan, self.n).reshape(self.n, *self.image_shape)
        return frechet_distance(self.clf.features(fake), self.test_features)


def dataset_of_checkpoint(path: str | Path) -> str | None:
    """The dataset name stored in a checkpoint's metadata (``None`` if absent)."""
    try:
        _, meta = load_checkpoint(path)
    except CheckpointError:
        return None
    name = meta.get("dataset")
    return str(name) if name is not None else None


__all__ = [
    "Classifier",
    "FDTracker",
    "TrainSettings",
    "class_metrics",
    "class_shares",
    "classifier_inception_score",
    "dataset_of_checkpoint",
    "evaluate_gan",
    "frechet_distance",
    "image_metrics",
    "kl_divergence",
    "load_or_train_classifier",
    "mode_metrics",
    "sample_gan",
]
