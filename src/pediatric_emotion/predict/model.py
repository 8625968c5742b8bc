"""The model predict runs: a TFLite file with the spec it was exported with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pediatric_emotion.faces import alignment_settings
from pediatric_emotion.images import printable
from pediatric_emotion.predict.inputs import PredictError


@dataclass(frozen=True)
class Model:
    """A TFLite file ready for prediction: its bytes, spec, labels and face crop."""

    path: Path
    content: bytes
    spec: dict[str, Any]
    labels: list[str]
    crop_size: int
    crop_margin: float

    @property
    def face_crop(self) -> dict[str, Any]:
        """The spec's ``face_crop`` as :func:`pediatric_emotion.faces.crop_detected_face` takes
        it: size, margin, and ``align`` / ``eye_distance`` where the spec has them (an older
        spec without them: not aligned)."""
        recorded = self.spec.get("face_crop")
        recorded = dict(recorded) if isinstance(recorded, Mapping) else {}
        return {**recorded, "size": self.crop_size, "margin": self.crop_margin}


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a TFLite file with its spec; refuse, naming the file, one without a usable spec."""
    from kedro.io import DatasetError

    from pediatric_emotion.datasets import load_tflite

    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{printable(path)}: model file not found")
    try:
        model = load_tflite(path)
    except (DatasetError, OSError, ValueError) as error:  # no spec, not a flatbuffer, bad JSON
        reason = str(error.__cause__ or error)  # Kedro wraps load errors in a DatasetError
        if path.name not in reason:
            reason = f"{printable(path)}: cannot read the model: {reason}"
        raise PredictError(printable(reason)) from error
    crop = model.spec.get("face_crop")
    if not isinstance(crop, Mapping) or "size" not in crop or "margin" not in crop:
        raise PredictError(
            f"{printable(path)}: the spec has no face_crop with size and margin, so faces cannot "
            "be cropped as in training"
        )
    try:
        alignment_settings(crop)
    except ValueError as error:
        raise PredictError(f"{printable(path)}: the spec's {error}") from error
    return Model(
        path=path,
        content=model.content,
        spec=model.spec,
        labels=list(model.spec["labels"]),
        crop_size=int(crop["size"]),
        crop_margin=float(crop["margin"]),
    )
