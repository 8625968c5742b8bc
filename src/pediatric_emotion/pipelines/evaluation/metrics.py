"""Classification metrics from labels and probabilities, in numpy only (no TensorFlow).

Conventions follow scikit-learn's, so the numbers can be checked against it:

- per-class precision, recall and F1 are NaN where undefined (0 / 0), as
  ``precision_recall_fscore_support(zero_division=np.nan)``: the recall of a class with no true
  example (absent from the split), the precision of a class never predicted, the F1 of a class
  neither true nor predicted (a class predicted but never true has F1 0: all its predictions are
  wrong);
- balanced accuracy: mean recall over the classes that occur in ``y_true``, i.e. over the defined
  recalls (``sklearn.metrics.balanced_accuracy_score``; an absent class neither counts as 0 nor
  lowers the score);
- macro F1: mean F1 over the classes that occur in ``y_true`` or ``y_pred``, i.e. over the defined
  F1s (``f1_score(average="macro")``), a class never predicted and never true is left out.

Confidence intervals are a cluster bootstrap: subjects (children) are drawn with replacement and
carry all their images, because images of one child are not independent. Every resample is a
weighted sum of per-subject confusion matrices, so a thousand resamples cost one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Counts [true class, predicted class] for classes 0..num_classes-1."""
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-d, one length: {true.shape} {pred.shape}")
    bad = (true < 0) | (true >= num_classes) | (pred < 0) | (pred >= num_classes)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"class index outside [0, {num_classes}) at position {index}: "
            f"true {true[index]}, predicted {pred[index]}"
        )
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _divide_or_nan(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0 (undefined, not 0)."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 (NaN where undefined) and support per class from confusion matrices
    [..., K, K]."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diagonal(matrix, axis1=-2, axis2=-1)
    support = matrix.sum(axis=-1)
    predicted = matrix.sum(axis=-2)
    return {
        "precision": _divide_or_nan(true_positive, predicted),
        "recall": _divide_or_nan(true_positive, support),
        "f1": _divide_or_nan(2 * true_positive, support + predicted),
        "support": support,
        "predicted": predicted,
    }


def summary_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Balanced accuracy (mean of the defined recalls), macro F1 (mean of the defined F1s) and
    accuracy of confusion matrices [..., K, K]; NaN for an empty matrix."""
    scores = per_class_scores(matrix)
    correct = np.diagonal(np.asarray(matrix, np.float64), axis1=-2, axis2=-1).sum(axis=-1)
    return {
        "balanced_accuracy": _nan_mean(scores["recall"]),
        "macro_f1": _nan_mean(scores["f1"]),
        "accuracy": _divide_or_nan(correct, scores["support"].sum(axis=-1)),
    }


def _nan_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the finite values; NaN where there are none (no warning)."""
    defined = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, values, 0.0).sum(axis=-1) / defined.sum(axis=-1)


def balanced_accuracy(y_true: Any, y_pred: Any, num_classes: int) -> float:
    """Mean recall over the classes present in ``y_true``."""
    return float(summary_scores(confusion_matrix(y_true, y_pred, num_classes))["balanced_accuracy"])


def macro_f1(y_true: Any, y_pred: Any, num_classes: int) -> float:
    """Mean F1 over the classes present in ``y_true`` or ``y_pred``."""
    return float(summary_scores(confusion_matrix(y_true, y_pred, num_classes))["macro_f1"])


def expected_calibration_error(probabilities: Any, y_true: Any, bins: int = 10) -> float:
    """ECE: equal-width confidence bins (lo, hi] over [0, 1]; the share of images in each bin times
    |accuracy - mean confidence| there, summed. Confidence is the top class's probability."""
    probs = np.asarray(probabilities, dtype=np.float64)
    true = np.asarray(y_true, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(true) or len(true) == 0:
        raise ValueError(f"probabilities {probs.shape} do not match {len(true)} labels")
    if bins <= 0:
        raise ValueError(f"bins must be positive, got {bins}")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    accuracy = np.bincount(index, weights=correct, minlength=bins)
    confident = np.bincount(index, weights=confidence, minlength=bins)
    return float(np.abs(accuracy - confident).sum() / len(true))


def subject_bootstrap(
    y_true: Any,
    y_pred: Any,
    subjects: Sequence[Any],
    num_classes: int,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of balanced accuracy, macro F1 and accuracy, resampling subjects.

    Each resample draws as many subjects as there are, with replacement (subjects sorted first, so
    the draws do not depend on row order: the same seed gives the same resampled subject sets for
    every model evaluated on the same images, i.e. paired intervals).
    """
    if resamples <= 0:
        raise ValueError(f"bootstrap resamples must be positive, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    keys = np.asarray([str(s) for s in subjects])
    if len(keys) != len(true):
        raise ValueError(f"{len(keys)} subject ids for {len(true)} images")
    names, subject_index = np.unique(keys, return_inverse=True)
    cells = np.zeros((len(names), num_classes * num_classes), dtype=np.float64)
    confusion_matrix(true, pred, num_classes)  # validates the labels
    np.add.at(cells, (subject_index, true * num_classes + pred), 1.0)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=resamples)
    matrices = (weights @ cells).reshape(resamples, num_classes, num_classes)
    alpha = (1.0 - confidence) / 2.0
    intervals = {}
    for name, values in summary_scores(matrices).items():
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            intervals[name] = (float("nan"), float("nan"))
            continue
        low, high = np.quantile(finite, [alpha, 1.0 - alpha])
        intervals[name] = (float(low), float(high))
    return intervals


def metric_rows(
    y_true: Any,
    probabilities: Any,
    subjects: Sequence[Any],
    emotions: Sequence[str],
    *,
    bootstrap: dict[str, Any],
    ece_bins: int,
) -> list[dict[str, Any]]:
    """Every metric of one model on one split, as rows (metric, value, ci_low, ci_high): the
    counts, balanced accuracy, macro F1 and accuracy with their paired subject-bootstrap
    intervals, ECE, and ``precision:``/``recall:``/``f1:<emotion>`` (NaN where undefined, e.g. the
    recall of an emotion absent from the split)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    true = np.asarray(y_true, dtype=np.int64)
    pred = probs.argmax(axis=1)
    num_classes = len(emotions)
    matrix = confusion_matrix(true, pred, num_classes)
    summary = summary_scores(matrix)
    intervals = subject_bootstrap(
        true,
        pred,
        subjects,
        num_classes,
        resamples=int(bootstrap.get("resamples", 1000)),
        confidence=float(bootstrap.get("confidence", 0.95)),
        seed=int(bootstrap.get("seed", 0)),
    )
    nan = float("nan")
    rows = [
        {"metric": "n_images", "value": float(len(true)), "ci_low": nan, "ci_high": nan},
        {
            "metric": "n_subjects",
            "value": float(len({str(s) for s in subjects})),
            "ci_low": nan,
            "ci_high": nan,
        },
    ]
    for name in ("balanced_accuracy", "macro_f1", "accuracy"):
        low, high = intervals[name]
        rows.append({"metric": name, "value": float(summary[name]), "ci_low": low, "ci_high": high})
    rows.append(
        {
            "metric": "ece",
            "value": expected_calibration_error(probs, true, ece_bins),
            "ci_low": nan,
            "ci_high": nan,
        }
    )
    scores = per_class_scores(matrix)
    for kind in ("precision", "recall", "f1"):
        for index, emotion in enumerate(emotions):
            rows.append(
                {
                    "metric": f"{kind}:{emotion}",
                    "value": float(scores[kind][index]),
                    "ci_low": nan,
                    "ci_high": nan,
                }
            )
    return rows
