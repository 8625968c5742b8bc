"""Validate the configured sources, read every record through its format adapter, map labels."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pediatric_emotion.images import printable
from pediatric_emotion.pipelines.label_harmonization.adapters import (
    DropReason,
    SourceRecord,
    make_adapter,
)
from pediatric_emotion.pipelines.label_harmonization.adapters._common import cell_text
from pediatric_emotion.pipelines.label_harmonization.adapters.base import METADATA_KEYS

logger = logging.getLogger(__name__)

ROLES = ("train", "guesswhat", "test")
POPULATIONS = ("child", "adult")
FACE_BOX_MODES = ("detect", "given", "whole_image")
FORMATS_WITH_BOXES = ("affectnet", "expw")

RECORD_COLUMNS = [
    "image_id",
    "source",
    "format",
    "record_id",
    "image_path",
    "pixels",
    "original_label",
    "emotion",
    "population",
    "role",
    "face_box",
    "subject_id",
    "given_x",
    "given_y",
    "given_w",
    "given_h",
    *METADATA_KEYS,
    "drop_reason",
    "detail",
]


class SourceConfigError(ValueError):
    """A `sources` or `label_maps` entry that cannot work."""


def _label_map_name(name: str, config: Mapping[str, Any]) -> str:
    return str(config.get("label_map") or config["format"])


def _normalised_map(label_map: Mapping[Any, Any]) -> dict[str, str | None]:
    return {str(key): (None if value is None else str(value)) for key, value in label_map.items()}


def check_sources(
    sources: Mapping[str, Mapping[str, Any]],
    label_maps: Mapping[str, Mapping[Any, Any]],
    emotions: list[str],
) -> pd.DataFrame:
    """Fail fast on a bad configuration or a missing root or required file, before reading images.

    Returns one row per source (name, format, path, population, role, face_box, label_map).
    """
    if not sources:
        raise SourceConfigError("the `sources` parameter is empty: configure at least one source")
    rows = []
    for name, config in sources.items():
        for key in ("format", "path", "population", "role"):
            if not config.get(key):
                raise SourceConfigError(f"source {name!r}: `{key}` is required")
        if config["role"] not in ROLES:
            raise SourceConfigError(
                f"source {name!r}: role must be one of {ROLES}, got {config['role']!r}"
            )
        if config["population"] not in POPULATIONS:
            raise SourceConfigError(
                f"source {name!r}: population must be one of {POPULATIONS}, "
                f"got {config['population']!r}"
            )
        face_box = config.get("face_box") or (
            "given" if config["format"] in FORMATS_WITH_BOXES else "detect"
        )
        if face_box not in FACE_BOX_MODES:
            raise SourceConfigError(
                f"source {name!r}: face_box must be one of {FACE_BOX_MODES}, got {face_box!r}"
            )
        map_name = _label_map_name(name, config)
        if map_name not in label_maps:
            raise SourceConfigError(
                f"source {name!r}: no label map {map_name!r} in `label_maps` "
                f"(known: {sorted(label_maps)})"
            )
        bad_targets = {
            target
            for target in _normalised_map(label_maps[map_name]).values()
            if target is not None and target not in emotions
        }
        if bad_targets:
            raise SourceConfigError(
                f"label map {map_name!r} maps to {sorted(bad_targets)}, "
                f"which are not among the classes {emotions}"
            )
        adapter = make_adapter(name, config, vocabulary=label_maps[map_name].keys())
        adapter.check()
        rows.append(
            {
                "source": name,
                "format": config["format"],
                "path": str(Path(config["path"])),
                "population": config["population"],
                "role": config["role"],
                "face_box": face_box,
                "label_map": map_name,
            }
        )
    inventory = pd.DataFrame(rows)
    if not (inventory["role"] == "test").any():
        logger.warning("No source has role `test`: evaluation will have no test set (CAFE).")
    logger.info("Checked %d sources: %s", len(inventory), ", ".join(inventory["source"]))
    return inventory


def _record_row(
    source: Mapping[str, Any], record: SourceRecord, label_map: Mapping[str, str | None]
) -> dict[str, Any]:
    drop_reason, detail, emotion = record.drop_reason, record.detail, None
    label = record.original_label
    if drop_reason is None:
        if label is None or str(label).strip() == "":
            drop_reason, detail = DropReason.UNLABELLED, "no label"
        else:
            key, shown, map_name = str(label).strip(), cell_text(str(label)), source["label_map"]
            if key not in label_map:
                lowered = {k.lower(): k for k in label_map}
                key = lowered.get(key.lower(), key)
            if key not in label_map:
                drop_reason = DropReason.UNKNOWN_LABEL
                detail = f"label {shown} is not in label map {map_name!r}"
            elif label_map[key] is None:
                drop_reason = DropReason.EXCLUDED_LABEL
                detail = f"label {shown} is excluded by label map {map_name!r}"
            else:
                emotion = label_map[key]
    subject = record.subject_id if record.subject_id not in (None, "") else record.record_id
    bbox = record.bbox or (None, None, None, None)
    row = {
        "image_id": f"{source['source']}:{record.record_id}",
        "source": source["source"],
        "format": source["format"],
        "record_id": record.record_id,
        "image_path": record.image_path,
        "pixels": record.pixels,
        "original_label": None if label is None else str(label),
        "emotion": emotion,
        "population": record.population or source["population"],
        "role": source["role"],
        "face_box": source["face_box"],
        "subject_id": f"{source['source']}:{subject}",
        "given_x": bbox[0],
        "given_y": bbox[1],
        "given_w": bbox[2],
        "given_h": bbox[3],
        **{key: record.metadata.get(key) for key in METADATA_KEYS},
        "drop_reason": drop_reason,
        "detail": detail,
    }
    # names from the file system may hold bytes that are not UTF-8: write them printably
    return {
        key: printable(value) if isinstance(value, str) and key != "pixels" else value
        for key, value in row.items()
    }


def _log_source(source: Mapping[str, Any], rows: list[dict[str, Any]], no_subject: int) -> None:
    """Log how many records a source gave; warn when none, and when a test source's usable
    records name no subject (each image then counts as its own child in the subject bootstrap)."""
    name = source["source"]
    if not rows:
        logger.warning(
            "Source %s: 0 records read from %s (no image files or data rows there): check its "
            "path, format and options",
            name,
            source["path"],
        )
        return
    logger.info("Source %s: %d records read", name, len(rows))
    usable = sum(row["drop_reason"] is None for row in rows)
    if source["role"] == "test" and no_subject:
        logger.warning(
            "Source %s (role test): %d of %d usable records name no subject (no `subject` "
            "column in its metadata CSV, no `subject_pattern` match), so each image counts as its "
            "own subject and the bootstrap intervals over children come out too narrow",
            name,
            no_subject,
            usable,
        )


def read_sources(
    source_inventory: pd.DataFrame,
    sources: Mapping[str, Mapping[str, Any]],
    label_maps: Mapping[str, Mapping[Any, Any]],
) -> pd.DataFrame:
    """Read every record of every source and map its label to the 7 classes (or a drop reason).

    Returns one row per record read, usable or not (``drop_reason`` null when usable). File
    names that are not UTF-8 are written as :func:`pediatric_emotion.images.printable` does.
    """
    rows: list[dict[str, Any]] = []
    for source in source_inventory.to_dict("records"):
        name = source["source"]
        label_map = _normalised_map(label_maps[source["label_map"]])
        adapter = make_adapter(name, sources[name], vocabulary=label_map.keys())
        before, no_subject = len(rows), 0
        for record in adapter.checked_records():
            row = _record_row(source, record, label_map)
            no_subject += row["drop_reason"] is None and record.subject_id in (None, "")
            rows.append(row)
        _log_source(source, rows[before:], no_subject)
    records = pd.DataFrame(rows, columns=RECORD_COLUMNS)
    duplicated_ids = records["image_id"][records["image_id"].duplicated()]
    if not duplicated_ids.empty:
        raise ValueError(
            f"adapter produced duplicate record ids, e.g. {duplicated_ids.iloc[0]!r}: "
            "record ids must be unique within a source"
        )
    for column in ("agreement", "age"):
        records[column] = pd.to_numeric(records[column], errors="coerce")
    return records
