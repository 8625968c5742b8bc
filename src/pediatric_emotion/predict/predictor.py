"""The detect-crop-classify loop over pictures with one model."""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pediatric_emotion.faces import FaceBox, FaceDetector, crop_detected_face
from pediatric_emotion.images import encode_image
from pediatric_emotion.predict.inputs import Picture, PredictError
from pediatric_emotion.predict.model import Model
from pediatric_emotion.predict.outputs import annotate, picture_row, save_annotated

CHUNK = 32
"""Pictures held in memory, detected and cropped before one pass through the interpreter."""
ON_ERROR = ("skip", "fail")


class Predictor:
    """Detect, crop and classify pictures with one model; rows in the order pictures come."""

    def __init__(
        self,
        model: Model,
        detector: FaceDetector,
        *,
        on_error: str = "skip",
        annotated_dir: Path | None = None,
        num_threads: int | None = None,
    ) -> None:
        if on_error not in ON_ERROR:
            raise PredictError(f"--on-error must be one of {ON_ERROR}, got {on_error!r}")
        self.model = model
        self.detector = detector
        self.on_error = on_error
        self.annotated_dir = annotated_dir
        self.num_threads = num_threads
        self.counts: Counter[str] = Counter()
        self.emotions: Counter[str] = Counter()
        self._face_crop = model.face_crop  # size, margin, alignment: as the spec says
        self._detectors = detector.detector
        if detector.detector == "blazeface" and detector.fallback == "haar":
            self._detectors = "blazeface or the haar fallback"

    def rows(self, pictures: Iterable[Picture]) -> Iterator[dict[str, Any]]:
        """One row per picture, classified in chunks of :data:`CHUNK`."""
        iterator = iter(pictures)
        while chunk := list(itertools.islice(iterator, CHUNK)):
            yield from self._chunk(chunk)

    def _chunk(self, pictures: list[Picture]) -> list[dict[str, Any]]:
        from pediatric_emotion.modeling.tflite_runner import tflite_probabilities

        model, labels = self.model, self.model.labels
        rows: list[dict[str, Any]] = []
        faces: list[tuple[int, Picture, FaceBox]] = []
        with tempfile.TemporaryDirectory(prefix="predict-crops-") as crops_dir:
            crop_paths: list[str] = []
            for picture in pictures:
                if picture.image is None:
                    if self.on_error == "fail":
                        raise PredictError(f"{picture.error} (--on-error fail)")
                    rows.append(picture_row(picture, labels, "unreadable", str(picture.error)))
                    self.counts["unreadable"] += 1
                    continue
                boxes = self.detector.detect_all(picture.image)
                if not boxes:
                    rows.append(
                        picture_row(
                            picture, labels, "no_face", f"no face found by {self._detectors}"
                        )
                    )
                    self.counts["no_face"] += 1
                    if self.annotated_dir is not None:
                        annotated = annotate(picture.image, [(None, "no face")])
                        save_annotated(self.annotated_dir, picture, annotated)
                    continue
                for face_index, box in enumerate(boxes):
                    crop = crop_detected_face(picture.image, box, self._face_crop)
                    crop_path = Path(crops_dir) / f"{len(crop_paths):05d}.png"
                    crop_path.write_bytes(encode_image(crop, ".png"))
                    crop_paths.append(str(crop_path))
                    faces.append((len(rows), face_index, picture, box))
                    rows.append(picture_row(picture, labels, "ok", ""))
            if not crop_paths:
                return rows
            scores = tflite_probabilities(
                model.content,
                model.spec,
                crop_paths,
                where=f"predict {model.path.name}",
                num_threads=self.num_threads,
            )
        if scores.shape[1] != len(labels):
            raise PredictError(
                f"{model.path}: the model gives {scores.shape[1]} scores but its spec names "
                f"{len(labels)} labels"
            )
        drawn: dict[int, tuple[Picture, list[tuple[FaceBox, str]]]] = {}
        for (index, face_index, picture, box), probabilities in zip(faces, scores, strict=True):
            emotion = labels[int(np.argmax(probabilities))]
            rows[index].update(
                face_index=face_index,
                x=round(box.x, 1),
                y=round(box.y, 1),
                w=round(box.w, 1),
                h=round(box.h, 1),
                face_score=round(box.score, 4),
                box_source=box.method,
                emotion=emotion,
            )
            rows[index].update(
                {
                    f"prob_{label}": round(float(p), 6)
                    for label, p in zip(labels, probabilities, strict=True)
                }
            )
            self.counts["classified"] += 1
            self.emotions[emotion] += 1
            text = f"{emotion} {float(np.max(probabilities)):.2f}"
            drawn.setdefault(id(picture), (picture, []))[1].append((box, text))
        if self.annotated_dir is not None:
            for picture, labelled in drawn.values():  # one copy per picture, every face on it
                save_annotated(self.annotated_dir, picture, annotate(picture.image, labelled))
        return rows
