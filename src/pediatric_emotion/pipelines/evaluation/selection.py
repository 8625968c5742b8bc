"""The images one cell is evaluated on: the test role of the manifest and the validation rows of
the cell's training examples, each with its class index, checked before any model runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.harmonized_crops import (
    check_crop_files,
    check_crops_match,
    select_test_images,
    with_labels,
)

logger = logging.getLogger(__name__)

SPLITS = ("test", "val")
METADATA_COLUMNS = ("source", "ethnicity", "age", "sex", "mouth", "agreement")


def _splits(evaluation: Mapping[str, Any]) -> list[str]:
    splits = list(evaluation.get("splits") or SPLITS)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"evaluation.splits: unknown {unknown}; known: {list(SPLITS)}")
    return splits


def select_evaluation_images(
    face_manifest: pd.DataFrame,
    face_crops: FileTree,
    examples: pd.DataFrame,
    evaluation: Mapping[str, Any],
    emotions: list[str],
) -> pd.DataFrame:
    """The images one cell is evaluated on: the test role, and the validation rows of the cell's
    training_examples (joined to the manifest for subject and metadata). Fails before any model
    runs on a missing test set, an unknown emotion, a missing crop file or a crops folder of
    another harmonization run."""
    check_crops_match(face_manifest, face_crops.root, "face_manifest")
    check_crops_match(examples, face_crops.root, "training_examples")
    splits = _splits(evaluation)
    keep = ["split", "image_id", "crop_path", "subject_id", "emotion", "label"]
    parts = []
    if "test" in splits:
        parts.append(select_test_images(face_manifest, face_crops, evaluation, emotions))
    if "val" in splits:
        val = examples[examples["split"].astype("object") == "val"][["crop_path", "label"]]
        if val.empty:
            raise ValueError("training_examples has no rows with split == 'val'")
        manifest = face_manifest.drop_duplicates("crop_path").set_index("crop_path")
        absent = ~val["crop_path"].isin(manifest.index)
        if absent.any():
            raise ValueError(
                f"training_examples: {int(absent.sum())} val crop(s) are not in face_manifest, "
                f"e.g. {val['crop_path'][absent].iloc[0]}"
            )
        joined = manifest.loc[val["crop_path"]].reset_index()
        joined = with_labels(joined, emotions, "validation split")
        if (joined["label"].to_numpy() != val["label"].to_numpy()).any():
            raise ValueError("training_examples: val labels disagree with face_manifest's emotion")
        check_crop_files(joined, face_crops.root, "validation split")
        parts.append(joined.assign(split="val"))
    images = pd.concat(parts, ignore_index=True)
    columns = keep + [c for c in METADATA_COLUMNS if c in images]
    images = images[columns].copy()
    for column in ("split", "image_id", "crop_path", "subject_id", "emotion"):
        images[column] = images[column].astype("object")
    # An image without a subject is its own cluster in the bootstrap.
    no_subject = images["subject_id"].isna()
    images.loc[no_subject, "subject_id"] = "image:" + images.loc[no_subject, "crop_path"]
    logger.info(
        "Evaluation images: %s",
        ", ".join(f"{s} {int((images['split'] == s).sum())}" for s in splits),
    )
    return images
