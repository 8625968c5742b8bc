"""The robustness stage: corrupted test pictures, faces found again, every model scored; the clean
row equals the evaluation's figure for the same file; mCE against the cell's Keras model."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import balanced_accuracy_score

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.pipelines.evaluation import robustness as stage
from pediatric_emotion.pipelines.evaluation.nodes import evaluate_cell
from pediatric_emotion.pipelines.evaluation.prediction import predict_keras, predict_tflite
from pediatric_emotion.pipelines.evaluation.selection import select_evaluation_images
from tests.pipelines.evaluation.conftest import (
    ARCHITECTURE,
    EMOTIONS,
    EVALUATION,
    SIZE,
    manifest,
    training_examples,
)

CELL = {"architecture": "tiny", "variant": "demo"}
FACE_CROP = {"size": SIZE, "margin": 0.2, "image_format": "png"}
DETECTION = {"detector": "blazeface", "fallback": "none"}
SETTINGS = {
    "images_per_class": None,
    "seed": 3,
    "severities": [1, 5],
    "corruptions": ["gaussian_blur", "jpeg", "occlusion_mouth"],
}


def given_boxes(table: pd.DataFrame, crops_root) -> pd.DataFrame:
    """The manifest as harmonization writes it for a given-box source: the picture is the crop
    file, its box the whole picture."""
    return table.assign(
        image_path=[str(crops_root / p) for p in table["crop_path"]],
        bbox_x=0.0,
        bbox_y=0.0,
        bbox_w=float(SIZE),
        bbox_h=float(SIZE),
        box_source="given",
        face_score=1.0,
    )


def sweep(table: pd.DataFrame, crops_root, **overrides) -> tuple[dict[str, bytes], pd.DataFrame]:
    """``corrupt_test_images`` on ``table`` with this file's settings, ``overrides`` replacing
    any of its keyword arguments (``robustness``, ``face_crop`` ...)."""
    arguments = {
        "robustness": SETTINGS,
        "evaluation": EVALUATION,
        "face_detection": DETECTION,
        "face_crop": FACE_CROP,
        "emotions": EMOTIONS,
        **overrides,
    }
    return stage.corrupt_test_images(
        face_manifest=table, face_crops=FileTree(crops_root), **arguments
    )


@pytest.fixture
def corrupted(crops_root, crop_paths):
    table = given_boxes(manifest(crop_paths), crops_root)
    crops, images = sweep(table, crops_root)
    return table, crops, images


def test_every_test_picture_is_corrupted_at_every_severity(corrupted, crops_root):
    table, crops, images = corrupted
    test = table[table["role"] == "test"]
    conditions = 1 + len(SETTINGS["corruptions"]) * len(SETTINGS["severities"])
    assert len(images) == len(test) * conditions
    assert list(images.columns) == stage.IMAGE_COLUMNS
    counts = images.groupby(["corruption", "severity"]).size()
    assert set(counts) == {len(test)}
    assert ("clean", 0) in counts.index and ("jpeg", 5) in counts.index
    assert images["face_found"].all()  # given boxes: nothing to lose
    assert set(images["crop_path"]) == set(crops)
    for _, row in images[images["corruption"] == "clean"].iterrows():  # the harmonized bytes
        assert crops[row["crop_path"]] == (crops_root / row["source_crop_path"]).read_bytes()
    blurred = images[(images["corruption"] == "gaussian_blur") & (images["severity"] == 5)]
    first = blurred.iloc[0]
    assert crops[first["crop_path"]] != crops[f"clean/{first['source_crop_path']}"]


def test_the_sweep_is_seeded(corrupted, crops_root):
    table, crops, images = corrupted
    again, images_again = sweep(table, crops_root)
    assert again == crops
    pd.testing.assert_frame_equal(images_again, images)


def test_the_subset_holds_at_most_n_pictures_per_class_and_is_seeded():
    rows = pd.DataFrame({"label": [0] * 6 + [1] * 2 + [2] * 5, "image_id": range(13)})
    picked = stage.sample_test_images(rows, 3, seed=1)
    assert picked["label"].value_counts().to_dict() == {0: 3, 1: 2, 2: 3}
    pd.testing.assert_frame_equal(picked, stage.sample_test_images(rows, 3, seed=1))
    assert list(picked["image_id"]) == sorted(picked["image_id"])
    assert len(stage.sample_test_images(rows, None, seed=1)) == 13
    with pytest.raises(ValueError, match="robustness.images_per_class"):
        stage.sample_test_images(rows, 0, seed=1)


def test_a_bad_corruption_is_refused_before_any_picture_is_read(crops_root, crop_paths):
    table = given_boxes(manifest(crop_paths), crops_root).assign(image_path="/nowhere.png")
    with pytest.raises(ValueError, match=r"robustness.corruptions.*fog"):
        sweep(table, crops_root, robustness={**SETTINGS, "corruptions": ["jpeg", "fog"]})


def test_a_lost_face_is_a_miss_of_its_class():
    labels = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, -1, 1, 1, -1])
    # recalls: class 0 1/2, class 1 2/2, class 2 0/1
    assert stage.balanced_accuracy_with_misses(labels, predicted, 3) == pytest.approx(0.5)
    found = np.array([0, 1, 1, 1, 2])
    assert stage.balanced_accuracy_with_misses(labels, found, 3) == pytest.approx(
        balanced_accuracy_score(labels, found)
    )


class LosesEveryFace:
    """A detector that never finds a face (stands in for BlazeFace on a ruined picture)."""

    def __init__(self, **settings):
        pass

    def detect(self, image):
        return None


def test_faces_the_detector_loses_are_counted_and_scored_as_misses(
    crops_root, crop_paths, tiny_model, monkeypatch
):
    table = given_boxes(manifest(crop_paths), crops_root).assign(box_source="blazeface")
    monkeypatch.setattr(stage, "FaceDetector", LosesEveryFace)
    crops, images = sweep(
        table, crops_root, robustness={**SETTINGS, "corruptions": ["jpeg"], "severities": [3]}
    )
    lost = images[images["corruption"] == "jpeg"]
    assert not lost["face_found"].any() and lost["crop_path"].isna().all()
    assert all(path.startswith("clean/") for path in crops)
    root = crops_root.parent / "robustness_lost"
    for path, content in crops.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    metrics = stage.evaluate_robustness(
        model=tiny_model,
        robustness_images=images,
        robustness_crops=FileTree(root),
        architecture=ARCHITECTURE,
        variant={},
        training={"image_size": SIZE, "batch_size": 8},
        evaluation=EVALUATION,
        emotions=EMOTIONS,
        cell=CELL,
    )
    row = metrics[metrics["corruption"] == "jpeg"].iloc[0]
    assert row["faces_lost"] == row["images"] == len(lost)
    assert row["balanced_accuracy"] == 0.0
    clean = metrics[metrics["corruption"] == "clean"].iloc[0]
    assert row["balanced_accuracy_drop"] == pytest.approx(clean["balanced_accuracy"])


def test_blazeface_finds_a_real_face_again_after_a_mild_corruption(tmp_path):
    from skimage.data import astronaut

    from pediatric_emotion.faces import FaceDetector

    picture = np.ascontiguousarray(astronaut()[:300, 60:360])
    box = FaceDetector(**DETECTION).detect(picture)
    assert box is not None
    Image.fromarray(picture).save(tmp_path / "astronaut.png")
    crop_root = tmp_path / "crops"
    (crop_root / "demo").mkdir(parents=True)
    Image.fromarray(picture[:SIZE, :SIZE]).save(crop_root / "demo" / "astronaut.png")
    table = pd.DataFrame(
        [
            {
                "image_id": "astronaut",
                "role": "test",
                "subject_id": "s0",
                "emotion": "happy",
                "crop_path": "demo/astronaut.png",
                "image_path": str(tmp_path / "astronaut.png"),
                "bbox_x": box.x,
                "bbox_y": box.y,
                "bbox_w": box.w,
                "bbox_h": box.h,
                "box_source": "blazeface",
                "face_score": box.score,
            }
        ]
    )
    crops, images = sweep(
        table,
        crop_root,
        robustness={**SETTINGS, "corruptions": ["jpeg"], "severities": [1]},
        face_crop={**FACE_CROP, "size": 48},
    )
    found = images[images["corruption"] == "jpeg"].iloc[0]
    assert found["face_found"] and found["picture"] == "original"
    crop = np.asarray(Image.open(io.BytesIO(crops[found["crop_path"]])))
    assert crop.shape == (48, 48, 3)


def test_the_clean_row_equals_the_evaluation_figure_for_the_same_file(
    corrupted, crops_root, crop_paths, tiny_model, tiny_tflite
):
    table, crops, images = corrupted
    root = crops_root.parent / "robustness_crops"
    for path, content in crops.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    training = {"image_size": SIZE, "batch_size": 8}
    files = {q: (lambda m=m: m) for q, m in tiny_tflite.items()}
    metrics = stage.evaluate_robustness(
        model=tiny_model,
        robustness_images=images,
        robustness_crops=FileTree(root),
        architecture=ARCHITECTURE,
        variant={},
        training=training,
        evaluation=EVALUATION,
        emotions=EMOTIONS,
        cell=CELL,
        baseline_tflite=files,
    )
    conditions = 1 + len(SETTINGS["corruptions"]) * len(SETTINGS["severities"])
    assert len(metrics) == 3 * conditions  # keras + two baseline files
    assert list(metrics.columns) == stage.METRIC_COLUMNS

    evaluation_images = select_evaluation_images(
        table, FileTree(crops_root), training_examples(table), EVALUATION, EMOTIONS
    )
    shared = {"images": evaluation_images, "face_crops": FileTree(crops_root)}
    predictions = {
        "keras_predictions": predict_keras(
            model=tiny_model,
            architecture=ARCHITECTURE,
            variant={},
            training=training,
            evaluation=EVALUATION,
            emotions=EMOTIONS,
            cell=CELL,
            **shared,
        ),
        "baseline_predictions": predict_tflite(
            files=files,
            evaluation=EVALUATION,
            emotions=EMOTIONS,
            cell=CELL,
            technique="baseline",
            **shared,
        ),
    }
    evaluated = evaluate_cell(
        images=evaluation_images,
        evaluation=EVALUATION,
        emotions=EMOTIONS,
        cell=CELL,
        **predictions,
    )[0]
    figures = evaluated[
        (evaluated["split"] == "test") & (evaluated["metric"] == "balanced_accuracy")
    ].set_index(["technique", "quantization"])["value"]
    clean = metrics[metrics["corruption"] == "clean"].set_index(["technique", "quantization"])
    assert len(clean) == 3
    for model, value in figures.items():
        assert clean.loc[model, "balanced_accuracy"] == pytest.approx(value, abs=1e-12)


def metrics_table(rows):
    keys = ["architecture", "variant", "technique", "quantization"]
    frame = pd.DataFrame(
        rows, columns=[*keys, "corruption", "severity", "balanced_accuracy", "faces_lost"]
    )
    frame["images"] = 10
    clean = frame[frame["corruption"] == "clean"].set_index(keys)["balanced_accuracy"]
    frame["balanced_accuracy_drop"] = [
        clean[tuple(r[k] for k in keys)] - r["balanced_accuracy"] for _, r in frame.iterrows()
    ]
    return frame[stage.METRIC_COLUMNS]


def test_the_summary_has_the_mce_against_the_cells_keras_model():
    keras = ("a", "v", "keras", "float32")
    int8 = ("a", "v", "baseline", "int8")
    table = metrics_table(
        [
            (*keras, "clean", 0, 0.9, 0),
            (*keras, "jpeg", 1, 0.8, 0),
            (*keras, "jpeg", 5, 0.6, 0),  # errors 0.2 + 0.4 = 0.6
            (*keras, "rotation", 1, 0.9, 0),
            (*keras, "rotation", 5, 0.7, 1),  # errors 0.1 + 0.3 = 0.4
            (*int8, "clean", 0, 0.85, 0),
            (*int8, "jpeg", 1, 0.7, 0),
            (*int8, "jpeg", 5, 0.4, 0),  # errors 0.3 + 0.6 = 0.9 -> CE 1.5
            (*int8, "rotation", 1, 0.8, 2),
            (*int8, "rotation", 5, 0.6, 2),  # errors 0.2 + 0.4 = 0.6 -> CE 1.5
        ]
    )
    metrics, summary = stage.summarize_robustness(table.iloc[:5], table.iloc[5:])
    assert len(metrics) == 10
    assert list(summary.columns) == stage.SUMMARY_COLUMNS
    rows = summary.set_index("technique")
    assert rows.loc["keras", "mce"] == pytest.approx(1.0)
    assert rows.loc["baseline", "mce"] == pytest.approx(1.5)
    assert rows.loc["baseline", "clean_balanced_accuracy"] == pytest.approx(0.85)
    assert rows.loc["baseline", "corrupted_balanced_accuracy"] == pytest.approx(0.625)
    assert rows.loc["baseline", "worst_corruption"] == "jpeg"  # mean drop 0.3 vs 0.15
    assert rows.loc["baseline", "faces_lost_share"] == pytest.approx(4 / 40)
    assert rows.loc["keras", "worst_corruption"] == "jpeg"


def test_an_empty_grid_gives_empty_tables():
    metrics, summary = stage.summarize_robustness(pd.DataFrame(columns=stage.METRIC_COLUMNS))
    assert metrics.empty and summary.empty
    assert list(summary.columns) == stage.SUMMARY_COLUMNS
