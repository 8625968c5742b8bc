"""Metric code against scikit-learn on hand-made cases; the subject bootstrap against its
definition (sklearn on the resampled images), and reproducible by seed; ECE by hand."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from pediatric_emotion.pipelines.evaluation.metrics import (
    balanced_accuracy,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    metric_rows,
    per_class_scores,
    subject_bootstrap,
    summary_scores,
)

K = 7
pytestmark = pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
CASES = {
    "hand-made": ([0, 0, 1, 1, 2, 2, 3, 4, 5, 6], [0, 1, 1, 1, 2, 0, 3, 5, 5, 2]),
    # class 6 never true but predicted, class 4 true but never predicted
    "absent classes": ([0, 1, 2, 3, 4, 4, 5, 0], [0, 1, 2, 6, 0, 3, 5, 6]),
    "all wrong": ([0, 1, 2], [1, 2, 0]),
    "random": (
        np.random.default_rng(0).integers(0, K, 200).tolist(),
        np.random.default_rng(1).integers(0, K, 200).tolist(),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_metrics_agree_with_scikit_learn(name):
    y_true, y_pred = CASES[name]
    matrix = confusion_matrix(y_true, y_pred, K)
    np.testing.assert_array_equal(matrix, sk_confusion_matrix(y_true, y_pred, labels=range(K)))
    assert balanced_accuracy(y_true, y_pred, K) == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )
    assert macro_f1(y_true, y_pred, K) == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    assert summary_scores(matrix)["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    # undefined (0 / 0) per-class scores are NaN, not 0: an absent class has no recall
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=range(K), zero_division=np.nan
    )
    scores = per_class_scores(matrix)
    np.testing.assert_allclose(scores["precision"], precision)  # NaN == NaN here
    np.testing.assert_allclose(scores["recall"], recall)
    np.testing.assert_allclose(scores["f1"], f1)
    np.testing.assert_array_equal(scores["support"], support)


def test_bad_class_index_is_named():
    with pytest.raises(ValueError, match="position 1"):
        confusion_matrix([0, 7], [0, 0], K)


def test_expected_calibration_error_by_hand():
    # confidences 0.95 (right), 0.95 (wrong) -> bin (0.9, 1]: |0.5 - 0.95| * 2/5
    # 0.55 (right), 0.55 (right) -> bin (0.5, 0.6]: |1 - 0.55| * 2/5
    # 0.3 (wrong) -> bin (0.2, 0.3]: |0 - 0.3| * 1/5
    probabilities = np.array(
        [
            [0.95, 0.05, 0, 0, 0, 0, 0],
            [0.95, 0.05, 0, 0, 0, 0, 0],
            [0.1, 0.55, 0.35, 0, 0, 0, 0],
            [0.1, 0.55, 0.35, 0, 0, 0, 0],
            [0.3, 0.25, 0.25, 0.2, 0, 0, 0],
        ]
    )
    labels = [0, 1, 1, 1, 2]
    expected = 0.45 * 2 / 5 + 0.45 * 2 / 5 + 0.3 / 5
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(expected)
    # one bin: |accuracy - mean confidence| overall
    overall = abs(3 / 5 - probabilities.max(axis=1).mean())
    assert expected_calibration_error(probabilities, labels, bins=1) == pytest.approx(overall)


def _clustered_case():
    rng = np.random.default_rng(5)
    subjects = np.repeat([f"child{i}" for i in range(12)], 6)
    y_true = np.tile(np.arange(6), 12)
    # half the children are mostly right, half mostly wrong: images of a child are correlated
    good = np.isin(subjects, [f"child{i}" for i in range(6)])
    wrong = (y_true + rng.integers(1, K, y_true.size)) % K
    y_pred = np.where(good | (rng.random(y_true.size) < 0.2), y_true, wrong)
    return y_true, y_pred, subjects


def _metric_rows_by_name(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    subjects: np.ndarray,
    *,
    confidence: float,
    resamples: int,
) -> dict[str, dict]:
    """``metric_rows`` by metric name, for predictions made with ``confidence`` (the rest of the
    probability spread evenly) and a subject bootstrap of ``resamples``."""
    probabilities = np.full((len(y_true), K), (1 - confidence) / (K - 1))
    probabilities[np.arange(len(y_true)), y_pred] = confidence
    rows = metric_rows(
        y_true,
        probabilities,
        subjects,
        [f"c{i}" for i in range(K)],
        bootstrap={"resamples": resamples, "confidence": 0.95, "seed": 0},
        ece_bins=10,
    )
    return {row["metric"]: row for row in rows}


def test_bootstrap_is_reproducible_by_seed_and_changes_with_it():
    y_true, y_pred, subjects = _clustered_case()
    settings = {"resamples": 50, "confidence": 0.95}
    first = subject_bootstrap(y_true, y_pred, subjects, K, seed=1, **settings)
    again = subject_bootstrap(y_true, y_pred, subjects, K, seed=1, **settings)
    other = subject_bootstrap(y_true, y_pred, subjects, K, seed=2, **settings)
    assert first == again
    assert first["balanced_accuracy"] != other["balanced_accuracy"]
    assert first["macro_f1"] != other["macro_f1"]
    # row order does not matter: subjects are sorted before drawing
    order = np.random.default_rng(9).permutation(len(y_true))
    shuffled = subject_bootstrap(
        y_true[order], y_pred[order], subjects[order], K, seed=1, **settings
    )
    for name, interval in first.items():
        assert shuffled[name] == pytest.approx(interval)


def test_bootstrap_resamples_subjects_as_documented():
    """Each resample = the images of the drawn subjects, with multiplicity; scored by sklearn."""
    y_true, y_pred, subjects = _clustered_case()
    resamples, seed = 50, 11
    names = np.unique(subjects)
    weights = np.random.default_rng(seed).multinomial(
        len(names), np.full(len(names), 1 / len(names)), size=resamples
    )
    balanced, f1, accuracy = [], [], []
    for draw in weights:
        index = np.concatenate(
            [
                np.flatnonzero(subjects == name).repeat(n)
                for name, n in zip(names, draw, strict=True)
            ]
        )
        balanced.append(balanced_accuracy_score(y_true[index], y_pred[index]))
        f1.append(f1_score(y_true[index], y_pred[index], average="macro", zero_division=0))
        accuracy.append(accuracy_score(y_true[index], y_pred[index]))
    intervals = subject_bootstrap(
        y_true, y_pred, subjects, K, resamples=resamples, confidence=0.9, seed=seed
    )
    assert intervals["balanced_accuracy"] == pytest.approx(
        tuple(np.quantile(balanced, [0.05, 0.95]))
    )
    assert intervals["macro_f1"] == pytest.approx(tuple(np.quantile(f1, [0.05, 0.95])))
    assert intervals["accuracy"] == pytest.approx(tuple(np.quantile(accuracy, [0.05, 0.95])))


def test_subject_clustering_widens_the_interval_and_one_subject_has_none():
    y_true, y_pred, subjects = _clustered_case()
    settings = {"resamples": 200, "confidence": 0.95, "seed": 0}
    by_child = subject_bootstrap(y_true, y_pred, subjects, K, **settings)["balanced_accuracy"]
    by_image = subject_bootstrap(y_true, y_pred, np.arange(len(y_true)), K, **settings)[
        "balanced_accuracy"
    ]
    assert by_child[1] - by_child[0] > by_image[1] - by_image[0]
    single = subject_bootstrap(y_true, y_pred, ["one"] * len(y_true), K, **settings)
    point = balanced_accuracy_score(y_true, y_pred)
    assert single["balanced_accuracy"] == pytest.approx((point, point))


def test_metric_rows_hold_every_metric_with_intervals_for_the_headline_three():
    y_true, y_pred, subjects = _clustered_case()
    rows = _metric_rows_by_name(y_true, y_pred, subjects, confidence=0.88, resamples=50)
    assert rows["balanced_accuracy"]["value"] == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )
    low, high = rows["balanced_accuracy"]["ci_low"], rows["balanced_accuracy"]["ci_high"]
    assert low < rows["balanced_accuracy"]["value"] < high
    assert rows["macro_f1"]["ci_low"] < rows["macro_f1"]["ci_high"]
    # accuracy's interval from the same paired subject bootstrap (same seed, same resamples)
    intervals = subject_bootstrap(
        y_true, y_pred, subjects, K, resamples=50, confidence=0.95, seed=0
    )
    accuracy = rows["accuracy"]
    assert (accuracy["ci_low"], accuracy["ci_high"]) == pytest.approx(intervals["accuracy"])
    assert accuracy["ci_low"] < accuracy["value"] < accuracy["ci_high"]
    assert accuracy["value"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert np.isnan(rows["ece"]["ci_low"]) and np.isnan(rows["n_images"]["ci_low"])
    assert rows["n_subjects"]["value"] == 12
    assert rows["recall:c0"]["value"] == pytest.approx(
        precision_recall_fscore_support(y_true, y_pred, labels=range(K), zero_division=0)[1][0]
    )
    assert rows["ece"]["value"] == pytest.approx(abs((y_true == y_pred).mean() - 0.88))
    assert len(rows) == 6 + 3 * K


def test_a_class_absent_from_the_split_has_no_recall_and_does_not_count_in_the_means():
    """c4 has no true example but is predicted, c6 is neither true nor predicted: their recall is
    undefined (NaN, not 0); balanced accuracy and macro F1 stay sklearn's."""
    y_true = np.array([0, 0, 1, 1, 2, 2, 3, 3, 5, 5])
    y_pred = np.array([0, 4, 1, 1, 2, 0, 3, 4, 5, 5])
    subjects = np.repeat(["a", "b", "c", "d", "e"], 2)
    rows = {
        name: row["value"]
        for name, row in _metric_rows_by_name(
            y_true, y_pred, subjects, confidence=0.94, resamples=20
        ).items()
    }
    assert np.isnan(rows["recall:c4"]) and np.isnan(rows["recall:c6"])
    assert rows["precision:c4"] == 0.0  # predicted twice, never right
    assert np.isnan(rows["precision:c6"])  # never predicted
    assert rows["f1:c4"] == 0.0 and np.isnan(rows["f1:c6"])
    assert rows["recall:c0"] == 0.5 and rows["f1:c3"] == pytest.approx(2 / 3)
    assert rows["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert rows["balanced_accuracy"] == pytest.approx(np.mean([0.5, 1, 0.5, 0.5, 1]))
    assert rows["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    assert rows["accuracy"] == pytest.approx(0.7)


def test_an_empty_matrix_scores_nan_without_warnings():
    with np.errstate(all="raise"):
        summary = summary_scores(np.zeros((K, K)))
        scores = per_class_scores(np.zeros((2, K, K)))
    assert all(np.isnan(float(v)) for v in summary.values())
    assert np.isnan(scores["recall"]).all() and np.isnan(scores["f1"]).all()
