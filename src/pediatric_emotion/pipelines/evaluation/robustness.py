"""Robustness to phone-camera conditions, ImageNet-C style (Hendrycks & Dietterich 2019).

A seeded subset of the test role's pictures is corrupted at several severities
(:mod:`pediatric_emotion.corruptions`), then the face is detected and cropped again exactly as
harmonization does (:func:`pediatric_emotion.faces.crop_detected_face`), so a face the detector
loses counts as a miss. Each cell's Keras model and every TFLite file then score the crops; a
``clean`` condition (the harmonized crops themselves, copied) gives the reference each drop is
measured from. The summary per file has the mean corrupted balanced accuracy and the mean
corruption error (mCE) relative to the float Keras model of the same cell.

TensorFlow is imported by the prediction functions only, so the registry starts without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pediatric_emotion.corruptions import check_corruptions, corrupt
from pediatric_emotion.datasets import FileTree, TFLiteModel
from pediatric_emotion.faces import FaceBox, FaceDetector, crop_detected_face
from pediatric_emotion.grid import KERAS
from pediatric_emotion.harmonized_crops import check_crops_match
from pediatric_emotion.images import UnreadableImageError, encode_image, read_image
from pediatric_emotion.pipelines.evaluation.prediction import predict_keras, predict_tflite
from pediatric_emotion.pipelines.evaluation.selection import select_test_images

logger = logging.getLogger(__name__)

CLEAN = ("clean", 0)  # corruption, severity of the uncorrupted reference
DETECTED = ("blazeface", "haar")  # box sources found by a detector (found again when corrupted)
IMAGE_COLUMNS = [
    "corruption",
    "severity",
    "image_id",
    "subject_id",
    "emotion",
    "label",
    "picture",
    "face_found",
    "crop_path",
    "source_crop_path",
]
METRIC_COLUMNS = [
    "architecture",
    "variant",
    "technique",
    "quantization",
    "corruption",
    "severity",
    "images",
    "faces_lost",
    "balanced_accuracy",
    "balanced_accuracy_drop",
]
SUMMARY_COLUMNS = [
    "architecture",
    "variant",
    "technique",
    "quantization",
    "clean_balanced_accuracy",
    "corrupted_balanced_accuracy",
    "mean_drop",
    "mce",
    "worst_corruption",
    "faces_lost_share",
]


def sample_test_images(
    test_images: pd.DataFrame, images_per_class: int | None, seed: int
) -> pd.DataFrame:
    """At most ``images_per_class`` test images per emotion (all with None), drawn with ``seed``,
    in the manifest's order."""
    if images_per_class is None:
        return test_images.reset_index(drop=True)
    if int(images_per_class) < 1:
        raise ValueError(
            f"robustness.images_per_class must be >= 1 or null, got {images_per_class}"
        )
    rng = np.random.default_rng(int(seed))
    keep: list[int] = []
    for _, group in test_images.groupby("label", sort=True):
        count = min(int(images_per_class), len(group))
        keep.extend(rng.choice(group.index.to_numpy(), size=count, replace=False).tolist())
    return test_images.loc[sorted(keep)].reset_index(drop=True)


def _picture(record: Mapping[str, Any], crops: FileTree) -> tuple[np.ndarray, str]:
    """The record's whole picture, or its harmonized crop where the picture cannot be read again
    (a source of inline pixels): (RGB pixels, ``original`` | ``face_crop``)."""
    path = record.get("image_path")
    if isinstance(path, str) and path:
        try:
            return read_image(path), "original"
        except UnreadableImageError as err:
            logger.warning("robustness: %s; its face crop is corrupted instead", err)
    return read_image(crops.path(str(record["crop_path"]))), "face_crop"


def _recorded_box(record: Mapping[str, Any], picture: str, shape: Sequence[int]) -> FaceBox:
    """The box harmonization cropped (the whole crop where the picture is the crop or the
    manifest has no box)."""
    if picture == "face_crop" or pd.isna(record.get("bbox_w")):
        return FaceBox(0.0, 0.0, float(shape[1]), float(shape[0]), 1.0, "whole_image")
    return FaceBox(
        float(record["bbox_x"]),
        float(record["bbox_y"]),
        float(record["bbox_w"]),
        float(record["bbox_h"]),
        float(record.get("face_score") or 1.0),
        str(record.get("box_source") or "given"),
    )


def corrupt_test_images(
    *,
    face_manifest: pd.DataFrame,
    face_crops: FileTree,
    robustness: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    face_detection: Mapping[str, Any],
    face_crop: Mapping[str, Any],
    emotions: list[str],
) -> tuple[dict[str, bytes], pd.DataFrame]:
    """Corrupt a seeded subset of the test role's pictures, detect and crop their faces again.

    Returns the crops (``{corruption}/s{severity}/{crop path}``, the clean ones under
    ``clean/``) and one row per image and condition (``IMAGE_COLUMNS``): ``face_found`` false
    where the detector lost the face (no crop; scored as a miss), ``picture`` ``original`` or
    ``face_crop`` (where the whole picture cannot be read again and the crop stands in for it)."""
    check_corruptions(robustness)
    check_crops_match(face_manifest, face_crops.root, "face_manifest")
    test = select_test_images(face_manifest, face_crops, evaluation, emotions)
    chosen = sample_test_images(
        test, robustness.get("images_per_class"), int(robustness.get("seed", 0))
    )
    names = list(robustness["corruptions"])
    severities = sorted({int(s) for s in robustness["severities"]})
    levels = robustness.get("levels") or {}
    seed = int(robustness.get("seed", 0))
    extension = str(face_crop.get("image_format", "png"))
    jpeg_quality = int(face_crop.get("jpeg_quality", 95))
    detected = chosen.get("box_source", pd.Series(dtype="object")).isin(DETECTED)
    detector = FaceDetector(**face_detection) if detected.any() else None
    crops: dict[str, bytes] = {}
    rows: list[dict[str, Any]] = []
    conditions = [(name, severity) for name in names for severity in severities]
    bar = tqdm(total=len(chosen) * len(conditions), desc="Corrupting test pictures", unit="img")
    for position, record in chosen.iterrows():
        base = {
            "image_id": record["image_id"],
            "subject_id": record["subject_id"],
            "emotion": str(record["emotion"]),
            "label": int(record["label"]),
            "source_crop_path": record["crop_path"],
        }
        clean_path = f"{CLEAN[0]}/{record['crop_path']}"
        crops[clean_path] = face_crops[str(record["crop_path"])]
        rows.append(
            {**base, "corruption": CLEAN[0], "severity": CLEAN[1], "picture": "face_crop"}
            | {"face_found": True, "crop_path": clean_path}
        )
        image, picture = _picture(record, face_crops)
        recorded = _recorded_box(record, picture, image.shape)
        for index, (name, severity) in enumerate(conditions):
            corrupted = corrupt(
                image,
                name,
                severity,
                seed=seed * 1_000_003 + position * 1_009 + index,
                face_box=(recorded.x, recorded.y, recorded.w, recorded.h),
                levels=levels.get(name),
            )
            box: FaceBox | None = recorded
            if detector is not None and recorded.method in DETECTED:
                box = detector.detect(corrupted)
            row = {**base, "corruption": name, "severity": severity, "picture": picture}
            if box is None:
                rows.append({**row, "face_found": False, "crop_path": None})
            else:
                crop = crop_detected_face(corrupted, box, face_crop)
                stem = PurePosixPath(str(record["crop_path"])).with_suffix(f".{extension}")
                path = f"{name}/s{severity}/{stem}"
                crops[path] = encode_image(crop, f".{extension}", jpeg_quality=jpeg_quality)
                rows.append({**row, "face_found": True, "crop_path": path})
            bar.update()
    bar.close()
    table = pd.DataFrame(rows, columns=IMAGE_COLUMNS)
    lost = table[~table["face_found"]].groupby(["corruption", "severity"]).size()
    logger.info(
        "Robustness: %d test pictures x %d conditions; faces lost: %s",
        len(chosen),
        len(conditions),
        ", ".join(f"{c} s{s} {n}" for (c, s), n in lost.items()) or "none",
    )
    return crops, table


def balanced_accuracy_with_misses(
    labels: np.ndarray, predicted: np.ndarray, num_classes: int
) -> float:
    """Balanced accuracy where a negative prediction (no face found) is a miss of its class."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    matrix = np.zeros((num_classes, num_classes), dtype=np.float64)
    found = predicted >= 0
    np.add.at(matrix, (labels[found], predicted[found]), 1.0)
    support = np.bincount(labels, minlength=num_classes).astype(np.float64)
    recall = np.diagonal(matrix) / np.where(support > 0, support, np.nan)
    return float(np.nanmean(recall)) if (support > 0).any() else float("nan")


def _condition_rows(
    model: Mapping[str, str], images: pd.DataFrame, predictions: pd.DataFrame, num_classes: int
) -> list[dict[str, Any]]:
    """One metrics row per condition of one model (technique, quantization)."""
    predicted = images["crop_path"].map(predictions.set_index("crop_path")["predicted"].to_dict())
    table = images.assign(predicted=predicted.fillna(-1).astype("int64"))
    rows = []
    for (corruption, severity), group in table.groupby(["corruption", "severity"], sort=False):
        rows.append(
            {
                **model,
                "corruption": corruption,
                "severity": int(severity),
                "images": len(group),
                "faces_lost": int((~group["face_found"].astype(bool)).sum()),
                "balanced_accuracy": balanced_accuracy_with_misses(
                    group["label"].to_numpy(), group["predicted"].to_numpy(), num_classes
                ),
            }
        )
    clean = next(
        (row["balanced_accuracy"] for row in rows if (row["corruption"], row["severity"]) == CLEAN),
        float("nan"),
    )
    for row in rows:
        row["balanced_accuracy_drop"] = clean - row["balanced_accuracy"]
    return rows


def evaluate_robustness(
    *,
    model: Any,
    robustness_images: pd.DataFrame,
    robustness_crops: FileTree,
    architecture: Mapping[str, Any],
    variant: Mapping[str, Any],
    training: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    emotions: list[str],
    cell: Mapping[str, str],
    **tflite_files: Mapping[str, Callable[[], TFLiteModel]],
) -> pd.DataFrame:
    """Balanced accuracy of the cell's Keras model and every TFLite file (``tflite_files``:
    ``{technique}_tflite`` -> its files) under each condition (``METRIC_COLUMNS``)."""
    found = robustness_images[robustness_images["face_found"].astype(bool)]
    images = found.assign(split="test").reset_index(drop=True)
    predictions = [
        predict_keras(
            model=model,
            images=images,
            face_crops=robustness_crops,
            architecture=architecture,
            variant=variant,
            training=training,
            evaluation=evaluation,
            emotions=emotions,
            cell=cell,
        )
    ]
    for key, files in tflite_files.items():
        technique = key.removesuffix("_tflite")
        predictions.append(
            predict_tflite(
                files=files,
                images=images,
                face_crops=robustness_crops,
                evaluation=evaluation,
                emotions=emotions,
                cell=cell,
                technique=technique,
            )
        )
    rows: list[dict[str, Any]] = []
    for table in predictions:
        for (technique, quantization), group in table.groupby(
            ["technique", "quantization"], sort=False
        ):
            model_key = {**cell, "technique": technique, "quantization": quantization}
            rows.extend(_condition_rows(model_key, robustness_images, group, len(emotions)))
    logger.info(
        "%s.%s: %d models scored under %d conditions",
        cell["architecture"],
        cell["variant"],
        len({(r["technique"], r["quantization"]) for r in rows}),
        robustness_images.groupby(["corruption", "severity"]).ngroups,
    )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def corruption_errors(metrics: pd.DataFrame) -> pd.DataFrame:
    """mCE per file, ImageNet-C style: per corruption, the file's errors (1 - balanced accuracy)
    summed over severities divided by those of its cell's float Keras model; mean over the
    corruptions. NaN where the baseline never errs (or is absent)."""
    corrupted = metrics[metrics["corruption"] != CLEAN[0]].assign(
        error=lambda t: 1.0 - t["balanced_accuracy"]
    )
    cell = ["architecture", "variant"]
    summed = corrupted.groupby([*cell, "technique", "quantization", "corruption"], sort=False)[
        "error"
    ].sum()
    summed = summed.reset_index()
    keras = summed[(summed["technique"] == KERAS[0]) & (summed["quantization"] == KERAS[1])]
    baseline = keras.set_index([*cell, "corruption"])["error"].rename("baseline_error")
    joined = summed.join(baseline, on=[*cell, "corruption"])
    joined["ce"] = joined["error"] / joined["baseline_error"].where(joined["baseline_error"] > 0)
    return (
        joined.groupby([*cell, "technique", "quantization"], sort=False)["ce"]
        .mean()
        .rename("mce")
        .reset_index()
    )


def summarize_robustness(*tables: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The grid's robustness table and its summary per file (``SUMMARY_COLUMNS``): clean and
    mean corrupted balanced accuracy, the mean drop, mCE against the cell's Keras model, the
    corruption with the largest mean drop and the share of faces lost."""
    parts = [table for table in tables if len(table)]
    metrics = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=METRIC_COLUMNS)
    keys = ["architecture", "variant", "technique", "quantization"]
    summary = []
    for key, group in metrics.groupby(keys, sort=False):
        clean = group[group["corruption"] == CLEAN[0]]
        corrupted = group[group["corruption"] != CLEAN[0]]
        drops = corrupted.groupby("corruption")["balanced_accuracy_drop"].mean()
        summary.append(
            dict(zip(keys, key, strict=True))
            | {
                "clean_balanced_accuracy": float(clean["balanced_accuracy"].mean()),
                "corrupted_balanced_accuracy": float(corrupted["balanced_accuracy"].mean()),
                "mean_drop": float(corrupted["balanced_accuracy_drop"].mean()),
                "worst_corruption": drops.idxmax() if len(drops) else None,
                "faces_lost_share": float(
                    corrupted["faces_lost"].sum() / max(1, corrupted["images"].sum())
                ),
            }
        )
    frame = pd.DataFrame(summary, columns=[c for c in SUMMARY_COLUMNS if c != "mce"])
    if len(metrics):
        frame = frame.merge(corruption_errors(metrics), on=keys, how="left")
    else:
        frame["mce"] = pd.Series(dtype="float64")
    return metrics, frame[SUMMARY_COLUMNS]
