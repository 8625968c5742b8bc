"""The recommended TFLite file (data/08_reporting/recommendation.json) logged to the run as the
LiteRT pyfunc model (pyfunc.py) and registered as :data:`MODEL_NAME`, tagged with its leaderboard
figures. Imports MLflow: imported by the hook only when tracking is on."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pediatric_emotion.grid import FILE_COLUMNS
from pediatric_emotion.tracking.cells import FILE_METRICS

logger = logging.getLogger(__name__)

MODEL_NAME = "pediatric_emotion"
"""The registered model every recommended file becomes a version of."""


def _leaderboard_row(leaderboard: pd.DataFrame | None, record: Mapping[str, Any]) -> dict:
    """The leaderboard's figures of the recommended file (FILE_METRICS present and set)."""
    if leaderboard is None or not set(FILE_COLUMNS) <= set(leaderboard.columns):
        return {}
    match = pd.Series(True, index=leaderboard.index)
    for column in FILE_COLUMNS:
        match &= leaderboard[column].astype(str) == str(record.get(column))
    if not match.any():
        return {}
    row = leaderboard[match].iloc[0]
    return {c: row[c] for c in FILE_METRICS if c in row.index and pd.notna(row[c])}


def model_tags(record: Mapping[str, Any], leaderboard: pd.DataFrame | None = None) -> dict:
    """The recommended record's fields and its leaderboard figures, as strings, nulls left out."""
    tags = {
        **{k: v for k, v in record.items() if v is not None},
        **_leaderboard_row(leaderboard, record),
    }
    return {str(k): str(v) for k, v in tags.items()}


DIGEST_TAG = "sha256"
"""The registered version's tag holding its TFLite file's SHA-256."""

RUN_TAG = "registered_model"
"""The session run's tag naming the version it recommends (``models:/name/version``)."""


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def registered_twin(client: Any, name: str, tags: Mapping[str, str]) -> str | None:
    """The version of ``name`` whose tags hold all of ``tags`` (the file's digest and its
    figures), if one is registered: the same file with the same figures."""
    for version in client.search_model_versions(f"name = '{name}'"):
        if all(version.tags.get(key) == value for key, value in tags.items()):
            return str(version.version)
    return None


def register_recommended(
    project: Path,
    recommendation: Mapping[str, Any] | None,
    leaderboard: pd.DataFrame | None = None,
    name: str = MODEL_NAME,
) -> str | None:
    """Log and register the recommended file in the active run, its version tagged with the
    file's SHA-256 and figures; the registered version's number. When a version with the same
    file and figures exists already (a rerun that changed nothing), nothing new is logged or
    registered: the run is tagged with that version. ``None`` (and why, logged) when nothing is
    recommended or the file is not on disk."""
    record = (recommendation or {}).get("recommended")
    if not record:
        logger.info(
            "MLflow: no recommended file to register (%s)",
            (recommendation or {}).get("status", "no recommendation"),
        )
        return None
    path = Path(project) / str(record.get("tflite_path") or "")
    if not path.is_file():
        logger.warning("MLflow: the recommended file %s is not on disk; not registered", path)
        return None
    import mlflow

    from pediatric_emotion.tracking.pyfunc import log_tflite_model

    tags = {**model_tags(record, leaderboard), DIGEST_TAG: file_digest(path)}
    version = registered_twin(mlflow.MlflowClient(), name, tags)
    if version is not None:
        logger.info("MLflow: %s unchanged, already %s version %s", path, name, version)
    else:
        info = log_tflite_model(path, registered_model_name=name, tags=tags)
        version = str(info.registered_model_version)
        logger.info("MLflow: %s registered as %s version %s", path, name, version)
    mlflow.set_tag(RUN_TAG, f"models:/{name}/{version}")
    return version
