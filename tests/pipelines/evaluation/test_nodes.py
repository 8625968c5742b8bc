"""The evaluation nodes on hand-made tables: image selection and its errors, subgroups and their
gaps, one cell's tables (against scikit-learn), the run labels."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.grid import CELL_COLUMNS, load_project_parameters
from pediatric_emotion.pipelines.evaluation.nodes import METRIC_COLUMNS, evaluate_cell
from pediatric_emotion.pipelines.evaluation.selection import select_evaluation_images
from pediatric_emotion.pipelines.evaluation.subgroups import GAP_GROUP, group_labels
from tests.pipelines.evaluation.conftest import EMOTIONS, EVALUATION, manifest, training_examples

PROJECT = Path(__file__).resolve().parents[3]
CELL = {"architecture": "a", "variant": "v"}


@pytest.fixture
def images(crops_root, crop_paths):
    table = manifest(crop_paths)
    return select_evaluation_images(
        table, FileTree(crops_root), training_examples(table), EVALUATION, EMOTIONS
    )


def test_selection_takes_the_test_role_and_the_cells_validation_rows(images):
    assert (images["split"] == "test").sum() == 16
    assert (images["split"] == "val").sum() == 8
    val = images[images["split"] == "val"]
    assert set(val["subject_id"]) == {"v0", "v1", "v2"}  # joined from the manifest
    assert list(images["label"]) == [EMOTIONS.index(e) for e in images["emotion"]]
    assert {"ethnicity", "age", "sex", "mouth", "agreement"} <= set(images.columns)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ("no test rows", ValueError, "no rows with role == 'test'"),
        ("unknown emotion", ValueError, "img00: 'contempt'"),
        ("missing crop", FileNotFoundError, "demo/gone.png"),
    ],
)
def test_bad_inputs_fail_naming_the_record(crops_root, crop_paths, change, error, match):
    table = manifest(crop_paths)
    if change == "no test rows":
        table["role"] = "train"
    elif change == "unknown emotion":
        table.loc[0, "emotion"] = "contempt"
    else:
        table.loc[3, "crop_path"] = "demo/gone.png"
    with pytest.raises(error, match=match):
        select_evaluation_images(
            table,
            FileTree(crops_root),
            training_examples(manifest(crop_paths)),
            EVALUATION,
            EMOTIONS,
        )


def test_groupings_follow_the_configuration():
    table = pd.DataFrame(
        {
            "agreement": [0.59, 0.6, 0.95, np.nan],
            "age": [2.0, 4.9, 5.0, 8.0],
            "sex": ["F", "M", None, "F"],
        }
    )
    groups = group_labels(table, EVALUATION["subgroups"])
    assert list(groups) == ["subset_a", "age_band", "sex"]  # no ethnicity/mouth column here
    assert groups["subset_a"].tolist()[:3] == ["not Subset A", "Subset A", "Subset A"]
    assert pd.isna(groups["subset_a"].iloc[3])
    assert groups["age_band"].tolist() == ["2-4", "2-4", "5-8", "5-8"]
    no_agreement = group_labels(table.drop(columns="agreement"), EVALUATION["subgroups"])
    assert "subset_a" not in no_agreement


def _predictions(images, technique, quantization, predicted):
    scores = np.full((len(images), len(EMOTIONS)), 0.01)
    scores[np.arange(len(images)), predicted] = 0.94
    frame = images[["split", "crop_path", "label"]].copy()
    frame.insert(0, "quantization", quantization)
    frame.insert(0, "technique", technique)
    frame["predicted"] = predicted
    for index, emotion in enumerate(EMOTIONS):
        frame[f"p_{emotion}"] = scores[:, index]
    return frame


def test_one_cell_tables_agree_with_scikit_learn(images):
    labels = images["label"].to_numpy()
    rng = np.random.default_rng(0)
    keras = np.where(rng.random(len(labels)) < 0.6, labels, (labels + 1) % 7)
    int8 = keras.copy()
    int8[:4] = (keras[:4] + 2) % 7  # 4 test images change their answer
    metrics, subgroups, compression, confusion, plots = evaluate_cell(
        images=images,
        evaluation=EVALUATION,
        emotions=EMOTIONS,
        cell=CELL,
        keras_predictions=_predictions(images, "keras", "float32", keras),
        baseline_predictions=_predictions(images, "baseline", "int8", int8),
    )
    assert list(metrics.columns) == METRIC_COLUMNS
    for table in (metrics, subgroups, compression, confusion):  # each names the cell alike
        assert table[CELL_COLUMNS].drop_duplicates().values.tolist() == [["a", "v"]]
    test = images["split"].to_numpy() == "test"
    for technique, predicted in (("keras", keras), ("baseline", int8)):
        rows = metrics[(metrics["technique"] == technique) & (metrics["split"] == "test")]
        value = rows.set_index("metric")["value"]
        assert value["balanced_accuracy"] == pytest.approx(
            balanced_accuracy_score(labels[test], predicted[test])
        )
        assert value["macro_f1"] == pytest.approx(
            f1_score(labels[test], predicted[test], average="macro", zero_division=0)
        )
    cost = compression.set_index("split")
    assert cost.loc["test", "agreement_with_keras"] == pytest.approx(1 - 4 / 16)
    assert cost.loc["val", "agreement_with_keras"] == 1.0
    assert cost.loc["test", "balanced_accuracy_change"] == pytest.approx(
        balanced_accuracy_score(labels[test], int8[test])
        - balanced_accuracy_score(labels[test], keras[test])
    )
    counts = confusion[(confusion["technique"] == "keras") & (confusion["split"] == "val")]
    expected = sk_confusion_matrix(labels[~test], keras[~test], labels=range(7))
    np.testing.assert_array_equal(counts["count"].to_numpy().reshape(7, 7), expected)
    assert set(plots) == {
        "test/keras.float32",
        "val/keras.float32",
        "test/baseline.int8",
        "val/baseline.int8",
    }
    assert plots["test/keras.float32"]().axes  # a figure, drawn when saved
    # subgroups on the test split only, each group scored as sklearn would on its images
    assert set(subgroups["split"]) == {"test"}
    asian = subgroups[
        (subgroups["technique"] == "keras")
        & (subgroups["group"] == "Asian")
        & (subgroups["metric"] == "balanced_accuracy")
    ]
    mask = test & (images["ethnicity"].to_numpy() == "Asian")
    assert asian["value"].item() == pytest.approx(
        balanced_accuracy_score(labels[mask], keras[mask])
    )
    gap = subgroups[
        (subgroups["technique"] == "keras")
        & (subgroups["grouping"] == "ethnicity")
        & (subgroups["group"] == GAP_GROUP)
        & (subgroups["metric"] == "balanced_accuracy")
    ]
    scored = subgroups[
        (subgroups["technique"] == "keras")
        & (subgroups["grouping"] == "ethnicity")
        & (subgroups["metric"] == "balanced_accuracy")
        & (subgroups["group"] != GAP_GROUP)
    ]["value"]
    assert gap["value"].item() == pytest.approx(scored.max() - scored.min())
    # a group under min_group_size gets counts, no score, and stays out of the gap
    small = subgroups[(subgroups["technique"] == "keras") & (subgroups["n_images"] < 5)]
    assert set(small["group"]) == {"not Subset A"}  # agreement 0.40-0.55: 4 images
    assert set(small["metric"]) == {"n_images"}


def test_run_labels_come_from_globals_and_an_environment_overrides_them(monkeypatch):
    base = load_project_parameters(PROJECT)["evaluation"]
    assert base["run_label"] == "this run (demo data)"
    assert base["test_set_label"] == "CAFE-like demo set (synthetic)"
    monkeypatch.setenv("KEDRO_ENV", "paper")
    paper = load_project_parameters(PROJECT)
    assert "real CAFE" in paper["evaluation"]["run_label"]
    assert paper["evaluation"]["run_label"] != paper["evaluation"]["published"]["source"]
    assert paper["evaluation"]["bootstrap"] == base["bootstrap"]  # the rest stays base's
    assert paper["optimization"]["tflite_folder"] == "data/06_models/tflite"
