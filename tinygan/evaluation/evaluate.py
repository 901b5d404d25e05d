"""What did a model learn? The judge classifier, and the metrics of a trained model's samples.

For 2-D mixtures the samples are scored against the dataset's own mode centres; for labelled
images (``digits``, ``mnist``, ``fashion-mnist``) a small MLP classifier -- the *judge* --
trained by tinygan's own engine on the real training images and cached beside the data, gives
the features and class probabilities that :mod:`tinygan.evaluation.metrics` turns into numbers. No
pretrained network, nothing downloaded.

:func:`evaluate_model` picks the family and returns one JSON-serialisable dict; :class:`FDTracker`
measures the Fréchet distance at intervals during training.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import Array, Backend, get_backend, to_numpy, unit_floats
from ..data import Dataset, cache_dir, load_dataset
from ..engine.logit_losses import softmax_cross_entropy
from ..engine.network import Sequential, mlp
from ..engine.optim import Adam
from ..io.checkpoint import load_checkpoint, save_checkpoint
from ..io.errors import CheckpointError
from ..models.classes import spread
from ..models.latents import sample_chunks, sample_model
from ..training.state import DataPosition
from ..training.trainer import Batches
from .metrics import (
    conditional_metrics,
    frechet_distance,
    image_metrics,
    mode_metrics,
)

MIXTURES = ("ring", "grid")
LABELLED_IMAGES = ("digits", "mnist", "fashion-mnist")
DEFAULT_N = {"points": 2_500, "image": 10_000}
# Memory per evaluated sample, what grows with n: the judge's features and class probabilities
# (float64) for images, the distances to every mode for 2-D points, with their temporaries.
EVAL_BYTES_PER_SAMPLE = 2_048

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

    def _forward(self, x: Array, upto: int | None = None) -> Array:
        """Evaluation-mode forward through ``layers[:upto]`` (all layers by default)."""
        self.net.eval()
        for layer in self.net.layers[:upto]:
            x = layer.forward(x)
        return x

    def _batched(self, x: np.ndarray, upto: int | None, batch: int = 2048) -> np.ndarray:
        xp, parts = self.xp, []
        for i in range(0, len(x), batch):
            chunk = self.backend.asarray(np.ascontiguousarray(x[i : i + batch]).reshape(-1, self.n_in))
            parts.append(to_numpy(self._forward(unit_floats(xp, chunk, xp.float32), upto)))
        return np.concatenate(parts).astype(np.float64)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(N, K)`` for images ``x`` (uint8, or floats in [0, 1]; ``(N, H, W)`` or ``(N, D)``)."""
        return self._batched(x, None)

    def features(self, x: np.ndarray) -> np.ndarray:
        """Penultimate-layer activations ``(N, hidden[-1])`` for images ``x``."""
        return self._batched(x, -1)

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

        Mini-batch Adam on softmax cross-entropy, over the same shuffled batches as GAN training.
        """
        s = settings or TrainSettings()
        xp, net = self.xp, self.net
        flat = np.ascontiguousarray(x).reshape(len(x), self.n_in)
        position = DataPosition()
        batches = Batches(flat, position, self.backend.rng(s.seed), min(s.batch_size, len(x)), xp.float32, labels)
        opt = Adam(net.params, net.grads, s.lr, (0.9, 0.999))
        net.train()
        history = []
        for _ in range(s.epochs):
            total = xp.zeros((), dtype=xp.float32)
            for _ in range(batches.steps_per_epoch):
                images, y = batches.next()
                net.zero_grad()
                loss, grad = softmax_cross_entropy(net.forward(images), y)
                net.backward(grad, need_dx=False)
                opt.step()
                total = total + loss
            history.append(float(total) / max(batches.steps_per_epoch, 1))  # one host read per epoch
        net.eval()
        return history

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and metadata for :func:`tinygan.io.checkpoint.save_checkpoint`."""
        return self.net.state_dict(), {"n_in": self.n_in, "n_classes": self.n_classes, "hidden": list(self.hidden)}

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
    clf = Classifier(int(np.prod(x.shape[1:])), int(np.max(labels)) + 1, backend=backend, seed=settings.seed)
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


def load_judge(name: str, data_dir: str | None, backend: str | Backend | None) -> tuple[Classifier, Dataset]:
    """The judge classifier of labelled image dataset ``name`` and its real test set."""
    train = load_dataset(name, data_dir=data_dir, split="train")
    test = load_dataset(name, data_dir=data_dir, split="test")
    return load_or_train_classifier(name, train.x, train.labels, backend=backend), test


def judge_images(clf: Classifier, fake: np.ndarray, test_x: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """:func:`tinygan.evaluation.metrics.image_metrics` of images ``fake`` against ``test_x``, as ``clf`` sees them."""
    return image_metrics(clf.features(fake), clf.probs(fake), clf.features(test_x), clf.probs(test_x), seed)


# ============================================================================ whole-model evaluation


def judge_samples(
    clf: Classifier, model: Any, n: int, test_x: np.ndarray, seed: int = 0, test_labels: np.ndarray | None = None
) -> dict[str, Any]:
    """:func:`judge_images` of ``n`` samples of ``model``, generated and judged a chunk at a time.

    Only the judge's features and probabilities of all ``n`` are kept, never the images. A
    conditional model's samples are spread evenly over its classes; with the real images'
    ``test_labels``, :func:`tinygan.evaluation.metrics.conditional_metrics` says how well they fit them.
    """
    k = getattr(model.config, "n_classes", 0)
    labels = spread(n, range(k)) if k else None
    features, probs = [], []
    for fake in sample_chunks(model, n, seed, labels=labels):
        features.append(clf.features(fake))
        probs.append(clf.probs(fake))
    fake_features, fake_probs, test_features = np.concatenate(features), np.concatenate(probs), clf.features(test_x)
    result = image_metrics(fake_features, fake_probs, test_features, clf.probs(test_x), seed)
    if labels is not None and test_labels is not None:
        result.update(conditional_metrics(fake_features, fake_probs, labels, test_features, test_labels, seed))
    return result


def evaluate_model(
    model: Any,
    n: int | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    dataset: str | None = None,
) -> dict[str, Any] | None:
    """Quality metrics of ``model``'s samples for the dataset it was trained on, as a JSON-able dict.

    ``dataset`` names that dataset (the checkpoint meta's ``"dataset"``); without it,
    ``model.dataset_name`` is used if set. ``n`` generated samples (default 2,500 for 2-D points,
    10,000 for images) are drawn from latents seeded by ``seed``.

    * ``ring``, ``grid``: ``modes``, ``modes_total``, ``hq_percent``, ``reverse_kl`` (and
      ``mode_counts``); see :func:`tinygan.evaluation.metrics.mode_metrics`.
    * a VAE, beside these: ``neg_elbo`` of the real test set in nats per sample, and its terms
      ``recon`` and ``kl`` (see :meth:`tinygan.models.vae.VAEModel.elbo`).
    * ``digits``, ``mnist``, ``fashion-mnist``: ``fd``, ``fd_real_floor``, ``classes_covered``,
      ``max_class_share``, ``class_kl``, ``cis``, ``class_shares`` and the real-data values under
      ``"real"``, plus the judge's accuracy on the real test images (``classifier_test_accuracy``);
      see :func:`tinygan.evaluation.metrics.image_metrics`. For a conditional model also
      ``conditional_accuracy`` and the per-class FD (:func:`tinygan.evaluation.metrics.conditional_metrics`).
      The judge is trained on the first call (tens of seconds on a CPU) and cached.

    Returns ``None`` when there is nothing meaningful to measure: an unknown dataset name, or a
    user ``.npy``/``.npz`` dataset (no mode centres, no class labels to train a judge on).
    Raises :class:`~tinygan.io.errors.DataError` when the dataset's files cannot be found.
    """
    name = dataset if dataset is not None else getattr(model, "dataset_name", None)
    if name is None:
        return None
    key, kind = str(name).lower(), model.config.data_kind
    n = DEFAULT_N.get(kind, 2_500) if n is None else int(n)
    if n < 2:
        raise ValueError(f"evaluation needs at least 2 samples, got n={n}")
    if key in MIXTURES and kind == "points":
        real = load_dataset(key, split="test", n=1)  # the dataset describes its own modes
        result = mode_metrics(sample_model(model, n, seed), real.modes, real.mode_std)
        return {"dataset": key, "n": n, **result, **_elbo(model, lambda: load_dataset(key, split="test").x, seed)}
    if key in LABELLED_IMAGES and kind == "image":
        clf, test = load_judge(key, data_dir, model.backend)
        result = judge_samples(clf, model, n, test.x, seed, test.labels)
        result["classifier_test_accuracy"] = clf.accuracy(test.x, test.labels)
        return {"dataset": key, **result, **_elbo(model, lambda: test.x, seed)}
    return None


def _elbo(model: Any, test_x: Any, seed: int) -> dict[str, Any]:
    """For a model with an ``elbo`` (a VAE): the negative ELBO of the real test set and its two terms."""
    return model.elbo(test_x(), seed) if hasattr(model, "elbo") else {}


class FDTracker:
    """The Fréchet distance of a run's samples against the real test images, measured at intervals.

    Built once per run (the judge and the real test features are computed up front), then
    called with the model at the steps where the curve should have a point. ``n`` generated
    samples from fixed latents keep successive points comparable.
    """

    def __init__(self, model: Any, data_dir: str | None = None, n: int = 2_000) -> None:
        self.clf, test = load_judge(model.dataset_name, data_dir, model.backend)
        self.test_features = self.clf.features(test.x)
        self.n = n

    @classmethod
    def supports(cls, model: Any) -> bool:
        """True when ``model`` was trained on a labelled image dataset that a judge can be trained on."""
        return model.config.data_kind == "image" and str(model.dataset_name).lower() in LABELLED_IMAGES

    def __call__(self, model: Any) -> float:
        return frechet_distance(self.clf.features(sample_model(model, self.n)), self.test_features)
