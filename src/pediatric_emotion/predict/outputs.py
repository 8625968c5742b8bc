"""What ``predict`` writes: the table's rows, the annotated pictures, predictions.csv/.json."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pediatric_emotion.faces import FaceBox
from pediatric_emotion.images import encode_image, printable
from pediatric_emotion.predict.inputs import Picture
from pediatric_emotion.predict.model import Model

BASE_COLUMNS = [
    "file",
    "frame",
    "face_index",
    "status",
    "reason",
    "x",
    "y",
    "w",
    "h",
    "face_score",
    "box_source",
    "emotion",
]
"""Columns of the predictions table before one ``prob_<label>`` column per label (spec order)."""

FORMATS = ("csv", "json", "both")


def picture_row(
    picture: Picture, labels: Sequence[str], status: str, reason: str
) -> dict[str, Any]:
    """One output row of ``picture``: its status and why, the class scores empty (filled in
    afterwards for an ``ok`` row)."""
    row: dict[str, Any] = dict.fromkeys(BASE_COLUMNS)
    row.update(file=picture.file, frame=picture.frame, status=status, reason=reason)
    row.update({f"prob_{label}": None for label in labels})
    return row


def annotate(image: np.ndarray, faces: Sequence[tuple[FaceBox | None, str]]) -> np.ndarray:
    """A copy of ``image`` with each face box and its text drawn on it (a ``None`` box: the text
    alone, in the corner)."""
    canvas = image.copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 200))
    scale = max(0.4, min(canvas.shape[:2]) / 500)
    for box, text in faces:
        colour = (0, 200, 0) if box is not None else (220, 0, 0)
        if box is not None:
            x0, y0 = round(box.x), round(box.y)
            cv2.rectangle(
                canvas, (x0, y0), (round(box.x + box.w), round(box.y + box.h)), colour, thickness
            )
            anchor = (x0, max(y0 - 4 * thickness, 12))
        else:
            anchor = (4, 16)
        cv2.putText(
            canvas, text, anchor, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA
        )
    return canvas


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def save_annotated(folder: Path, picture: Picture, image: np.ndarray) -> None:
    target = folder / picture.annotated_name
    try:
        content = encode_image(image, target.suffix or ".png")
    except (ValueError, cv2.error):  # an extension OpenCV reads but does not write
        target = target.with_name(f"{target.name}.png")
        content = encode_image(image, ".png")
    _write_atomically(target, content)


def _json_document(model: Model, rows: list[dict[str, Any]], summary: dict[str, Any]) -> dict:
    """The JSON output: the model, its labels, the summary counts and one record per row."""
    predictions = []
    for row in rows:
        box = None if row["x"] is None else {k: row[k] for k in ("x", "y", "w", "h")}
        probabilities = (
            None
            if row["emotion"] is None
            else {label: row[f"prob_{label}"] for label in model.labels}
        )
        predictions.append(
            {
                **{k: row[k] for k in ("file", "frame", "face_index", "status", "reason")},
                "box": box,
                **{k: row[k] for k in ("face_score", "box_source", "emotion")},
                "probabilities": probabilities,
            }
        )
    spec = {k: model.spec.get(k) for k in ("architecture", "variant", "technique", "quantization")}
    return {
        "model": printable(model.path),
        "model_spec": spec,
        "labels": model.labels,
        "summary": summary,
        "predictions": predictions,
    }


def write_outputs(
    model: Model, rows: list[dict[str, Any]], summary: dict[str, Any], out: Path, output_format: str
) -> list[Path]:
    """Write ``predictions.csv`` and/or ``predictions.json`` under ``out``, each whole or not at
    all; return their paths."""
    import pandas as pd

    from pediatric_emotion.datasets import AtomicCSVDataset

    written = []
    if output_format in ("csv", "both"):
        columns = BASE_COLUMNS + [f"prob_{label}" for label in model.labels]
        table = pd.DataFrame(rows, columns=columns)
        table["frame"] = table["frame"].astype("Int64")
        table["face_index"] = table["face_index"].astype("Int64")
        path = out / "predictions.csv"
        AtomicCSVDataset(filepath=str(path), save_args={"index": False}).save(table)
        written.append(path)
    if output_format in ("json", "both"):
        path = out / "predictions.json"
        document = json.dumps(_json_document(model, rows, summary), indent=2) + "\n"
        _write_atomically(path, document.encode("utf-8"))
        written.append(path)
    return written
