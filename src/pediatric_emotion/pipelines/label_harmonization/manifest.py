"""The harmonized outputs: face manifest, drop report and list, class-distribution plot, crops."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from pediatric_emotion.pipelines.label_harmonization.adapters.base import (  # noqa: E402
    METADATA_KEYS,
)

logger = logging.getLogger(__name__)

KEPT = "kept"

MANIFEST_COLUMNS = [
    "image_id",
    "source",
    "record_id",
    "subject_id",
    "original_label",
    "emotion",
    "population",
    "role",
    "split",
    "bbox_x",
    "bbox_y",
    "bbox_w",
    "bbox_h",
    "box_source",
    "face_score",
    "image_width",
    "image_height",
    "crop_path",
    "phash",
    "image_phash",
    "image_path",
    *METADATA_KEYS,
]


def build_manifest(
    records: pd.DataFrame, emotions: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split the records into the face manifest (kept), the report and the list of drops.

    Returns:
        face_manifest: one row per kept face crop; ``emotion`` is an ordered categorical.
        harmonization_report: ``source, reason, count``; ``kept`` plus every drop reason; per source
            the counts add up to the records read.
        harmonization_drops: every dropped record with its reason and detail (no image content).
    """
    kept = records["drop_reason"].isna()
    manifest = records.loc[kept, MANIFEST_COLUMNS].reset_index(drop=True)
    # numeric columns got their dtypes where they were made (cropping, source reading)
    for column in manifest.select_dtypes(include="object").columns:
        manifest[column] = manifest[column].astype("string")
    manifest["emotion"] = pd.Categorical(manifest["emotion"], categories=emotions)

    reasons = records["drop_reason"].fillna(KEPT)
    report = (
        pd.DataFrame({"source": records["source"], "reason": reasons})
        .value_counts(sort=False)
        .rename("count")
        .reset_index()
    )
    order = {name: position for position, name in enumerate(dict.fromkeys(records["source"]))}
    report = report.sort_values(
        ["source", "reason"],
        key=lambda s: s.map(order) if s.name == "source" else s.ne(KEPT).astype(str) + s,
    ).reset_index(drop=True)

    drops = records.loc[
        ~kept, ["source", "record_id", "image_path", "original_label", "drop_reason", "detail"]
    ].rename(columns={"drop_reason": "reason"})
    drops = drops.reset_index(drop=True)

    logger.info(
        "Face manifest: %d images kept of %d read (%d dropped); by split %s",
        len(manifest),
        len(records),
        len(drops),
        manifest["split"].value_counts().to_dict(),
    )
    return manifest, report, drops


def select_crops(crops: Mapping[str, bytes], face_manifest: pd.DataFrame) -> dict[str, bytes]:
    """The crops of the kept images only (the crops folder matches the manifest one to one)."""
    return {path: crops[path] for path in face_manifest["crop_path"]}


def plot_class_distribution(face_manifest: pd.DataFrame) -> plt.Figure:
    """Stacked bars: kept images per source and class."""
    counts = (
        face_manifest.groupby(["source", "emotion"], observed=False, sort=False)
        .size()
        .unstack("emotion", fill_value=0)
    )
    counts = counts.loc[list(dict.fromkeys(face_manifest["source"]))]
    figure, axis = plt.subplots(figsize=(10, 4.5), layout="constrained")
    counts.plot.bar(stacked=True, ax=axis, colormap="tab10", width=0.8)
    roles = face_manifest.groupby("source", sort=False)["role"].first()
    axis.set_xticklabels([f"{source}\n({roles[source]})" for source in counts.index], fontsize=8)
    plt.setp(axis.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    axis.set_xlabel("")
    axis.set_ylabel("kept face crops")
    axis.set_title("Class distribution per source after harmonization")
    axis.legend(title="emotion", bbox_to_anchor=(1.01, 1), loc="upper left")
    return figure
