"""Sample-quality metrics as pure functions of arrays: mode coverage, Fréchet distance, class shares.

Two families, chosen by the data a model was trained on (:mod:`tinygan.evaluation.evaluate` picks):

* **2-D Gaussian mixtures**, as defined by VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et
  al., 2018): a sample is *high quality* when it lies within 3 standard deviations of its nearest
  mode centre; a mode is *captured* when it is the nearest mode of at least one high-quality
  sample; the *reverse KL* compares the high-quality samples' histogram over modes with the true
  (uniform) mode distribution. See :func:`mode_metrics`.
* **Images**: given a judge classifier's penultimate features and class probabilities of generated
  and real images, the Fréchet distance between the features (the FID recipe with a task-specific
  network instead of Inception), the share of each predicted class, and a classifier-based
  inception score. See :func:`image_metrics`.

Everything here is NumPy on the host, in float64: the arrays are small (thousands of rows, at
most a few hundred columns).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# High-quality radius in standard deviations of a mode (VEEGAN, PacGAN).
HQ_STDS = 3.0
# A class counts as covered when its share among generated samples is at least this fraction of
# its share among real images: 0.1 means at least 1% of the samples for 10 balanced classes.
COVERED_FRACTION = 0.1


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


def image_metrics(
    fake_features: np.ndarray,
    fake_probs: np.ndarray,
    test_features: np.ndarray,
    test_probs: np.ndarray,
    seed: int = 0,
) -> dict[str, Any]:
    """Classifier-based metrics of generated images against real test images.

    Inputs are a judge classifier's penultimate features ``(N, F)`` and class probabilities
    ``(N, K)`` of the generated and of the real test images.

    * ``fd``: Fréchet distance between the generated and *all* the test features.
    * ``classes_covered``, ``max_class_share``, ``class_kl``, ``cis``: :func:`class_metrics` with
      the reference class distribution of the judge's predictions on all test images.
    * ``real``: the same metrics for held-out real images: the test set is split at random into
      two disjoint halves A and B, and A is scored against B as the reference. ``fd_real_floor``
      (= ``real["fd"]``) is therefore FD between two halves of the test set, which are both unseen
      by the judge; with half as many images on each side, its small-sample bias is slightly larger
      than that of a full-size comparison, so it is a conservative floor.
    """
    result = {"fd": frechet_distance(fake_features, test_features)}
    result.update(class_metrics(fake_probs, class_shares(test_probs)))
    perm = np.random.default_rng(seed).permutation(len(test_features))
    a, b = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    real = {"fd": frechet_distance(test_features[a], test_features[b])}
    real.update(class_metrics(test_probs[a], class_shares(test_probs[b])))
    result["fd_real_floor"] = real["fd"]
    result["real"] = real
    result["n"] = len(fake_features)
    result["n_test"] = len(test_features)
    return result


def conditional_metrics(
    fake_features: np.ndarray,
    fake_probs: np.ndarray,
    labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    seed: int = 0,
) -> dict[str, Any]:
    """How well a conditional model's samples fit the classes they were asked for.

    ``labels: (N,)`` are the classes the samples were asked for, ``test_labels`` those of the real
    test images, in the judge's numbering.

    * ``conditional_accuracy``: the share of samples whose top-1 judge prediction is the class asked
      for (compare with the judge's accuracy on real test images).
    * ``fd_per_class``: for each class k, the Fréchet distance between the features of the samples
      asked for k and of the real test images of class k (``None`` where either has fewer than 2);
      ``fd_class_mean`` is their mean. Each class has a tenth of the images of the whole-set FD, so
      its small-sample bias is larger: ``fd_per_class_real_floor`` is the same distance between two
      random halves of each class's test images.
    """
    labels, test_labels = np.asarray(labels), np.asarray(test_labels)
    rng = np.random.default_rng(seed)
    per_class, floor = [], []
    for k in range(fake_probs.shape[1]):
        fake_k, real_k = fake_features[labels == k], test_features[test_labels == k]
        per_class.append(frechet_distance(fake_k, real_k) if min(len(fake_k), len(real_k)) >= 2 else None)
        halves = np.array_split(rng.permutation(len(real_k)), 2)
        measurable = min(map(len, halves)) >= 2
        floor.append(frechet_distance(real_k[halves[0]], real_k[halves[1]]) if measurable else None)
    measured = [fd for fd in per_class if fd is not None]
    return {
        "conditional_accuracy": float(np.mean(fake_probs.argmax(axis=1) == labels)),
        "fd_per_class": per_class,
        "fd_class_mean": float(np.mean(measured)) if measured else None,
        "fd_per_class_real_floor": floor,
    }
