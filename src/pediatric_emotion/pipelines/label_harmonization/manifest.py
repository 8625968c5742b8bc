"""The harmonized outputs: face manifest, drop report and list, class-distribution plot, crops."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from pediatric_emotion.harmonized_crops import DIGEST_COLUMN, DIGEST_FILE, table_digest
from pediatric_emotion.pipelines.label_harmonization.adapters.base import (
    METADATA_KEYS,
)
from pediatric_emotion.plots import new_figure

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
    DIGEST_COLUMN,  # the harmonization run's mark, also in the crops folder (harmonized_crops)
]


def build_manifest(
    records: pd.DataFrame, emotions: list[str], source_inventory: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split the records into the face manifest (kept), the report and the list of drops.

    ``source_inventory`` (``source``, ``path``: the checked sources) puts every source in the
    report, also one that gave no record; a source with no image kept is a warning.

    Returns:
        face_manifest: one row per kept face crop; ``emotion`` is an ordered categorical.
        harmonization_report: ``source, reason, count``; ``kept`` (0 when none) plus every drop
            reason; per source the counts add up to the records read.
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
    checked = [] if source_inventory is None else list(source_inventory["source"])
    names = list(dict.fromkeys([*checked, *records["source"]]))
    with_kept = set(report.loc[report["reason"] == KEPT, "source"])
    none_kept = [name for name in names if name not in with_kept]
    zeros = pd.DataFrame({"source": none_kept, "reason": KEPT, "count": 0})
    report = pd.concat([report, zeros], ignore_index=True) if none_kept else report
    order = {name: position for position, name in enumerate(names)}
    report = report.sort_values(
        ["source", "reason"],
        key=lambda s: s.map(order) if s.name == "source" else s.ne(KEPT).astype(str) + s,
    ).reset_index(drop=True)

    drops = records.loc[
        ~kept, ["source", "record_id", "image_path", "original_label", "drop_reason", "detail"]
    ].rename(columns={"drop_reason": "reason"})
    drops = drops.reset_index(drop=True)
    _warn_none_kept(none_kept, report, source_inventory)

    logger.info(
        "Face manifest: %d images kept of %d read (%d dropped); by split %s",
        len(manifest),
        len(records),
        len(drops),
        manifest["split"].value_counts().to_dict(),
    )
    return manifest, report, drops


def _warn_none_kept(
    names: list[str], report: pd.DataFrame, source_inventory: pd.DataFrame | None
) -> None:
    """One warning per source with no image kept: its records read, drop counts and path."""
    paths = (
        {}
        if source_inventory is None
        else dict(zip(source_inventory["source"], source_inventory["path"], strict=True))
    )
    for name in names:
        drops = report[(report["source"] == name) & (report["reason"] != KEPT)]
        pairs = zip(drops["reason"], drops["count"], strict=True)
        counts = {reason: int(count) for reason, count in pairs}
        logger.warning(
            "Source %s: no image kept of %d records read%s%s",
            name,
            sum(counts.values()),
            f" from {paths[name]}" if name in paths else "",
            f" (dropped: {counts})" if counts else "",
        )


def select_crops(crops: Mapping[str, bytes], face_manifest: pd.DataFrame) -> dict[str, bytes]:
    """The crops of the kept images only (the crops folder matches the manifest one to one),
    with the manifest's ``crops_digest`` in the file ``CROPS_DIGEST`` (the run's mark, which
    every reader checks against its table: pediatric_emotion.harmonized_crops)."""
    selected = {path: crops[path] for path in face_manifest["crop_path"]}
    digest = table_digest(face_manifest, "face_manifest")
    if digest is not None:
        selected[DIGEST_FILE] = digest.encode("ascii")
    return selected


def plot_class_distribution(face_manifest: pd.DataFrame) -> Figure:
    """Stacked bars: kept images per source and class."""
    counts = (
        face_manifest.groupby(["source", "emotion"], observed=False, sort=False)
        .size()
        .unstack("emotion", fill_value=0)
    )
    counts = counts.loc[list(dict.fromkeys(face_manifest["source"]))]
    figure = new_figure(10, 4.5)
    axis = figure.subplots()
    counts.plot.bar(stacked=True, ax=axis, colormap="tab10", width=0.8)
    roles = face_manifest.groupby("source", sort=False)["role"].first()
    axis.set_xticklabels([f"{source}\n({roles[source]})" for source in counts.index], fontsize=8)
    for label in axis.get_xticklabels():
        label.set(rotation=30, ha="right", rotation_mode="anchor")
    axis.set_xlabel("")
    axis.set_ylabel("kept face crops")
    axis.set_title("Class distribution per source after harmonization")
    axis.legend(title="emotion", bbox_to_anchor=(1.01, 1), loc="upper left")
    return figure
