"""``pediatric-emotion predict``: classify the faces in pictures or video frames with a TFLite file.

Every step is the one the project uses elsewhere: the model and its preprocessing spec are read
with :func:`pediatric_emotion.datasets.load_tflite`; images are decoded by
:mod:`pediatric_emotion.images`; the face is found by :class:`pediatric_emotion.faces.FaceDetector`
(configured by the project's ``face_detection`` parameters when run inside the project) and
cropped by :func:`pediatric_emotion.faces.crop_face` with the size and margin of the spec's
``face_crop``, then saved as PNG like the training crops; the crops are fed to the LiteRT
interpreter by :func:`pediatric_emotion.pipelines.evaluation.tflite_inference.tflite_probabilities`,
exactly as evaluation feeds the test crops.

One row per face of every picture or sampled video frame (``face_index`` 0 is the face the
detector is most confident about, the one training would have kept), or one row saying that no
face was found or that the picture could not be read (or is over the pixel limit, checked from its
header before decoding), with the reason. Nothing about image content is logged. File names that
are not UTF-8 are read from their real path and written printably
(:func:`pediatric_emotion.images.printable`).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import cv2
import numpy as np
from tqdm.auto import tqdm

from pediatric_emotion.faces import FaceBox, FaceDetector, crop_face
from pediatric_emotion.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    UnreadableImageError,
    encode_image,
    printable,
    read_image,
)

logger = logging.getLogger(__name__)

CHUNK = 32
"""Pictures held in memory, detected and cropped before one pass through the interpreter."""
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}

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
ON_ERROR = ("skip", "fail")


class PredictError(click.ClickException):
    """A problem with the command's input that stops the run (exit status 1)."""


@dataclass(frozen=True)
class Picture:
    """One picture to classify: a file, or a frame of a video (``frame`` set), or why not."""

    file: str
    frame: int | None
    image: np.ndarray | None
    error: str | None = None
    annotated_name: str = ""  # path under DIR/annotated


@dataclass(frozen=True)
class Model:
    """A TFLite file ready for prediction: its bytes, spec, labels and face crop."""

    path: Path
    content: bytes
    spec: dict[str, Any]
    labels: list[str]
    crop_size: int
    crop_margin: float


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
    return Model(
        path=path,
        content=model.content,
        spec=model.spec,
        labels=list(model.spec["labels"]),
        crop_size=int(crop["size"]),
        crop_margin=float(crop["margin"]),
    )


def list_pictures(path: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """(file, name under DIR/annotated) of a picture, or of every file of a folder (recursive,
    sorted, hidden files and folders left out); a missing path or an empty folder is an error."""
    path = Path(path)
    if path.is_file():
        return [(path, path.name)]
    if not path.is_dir():
        raise PredictError(f"{printable(path)}: no such file or folder")
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise PredictError(f"{printable(path)}: the folder holds no files")
    return [(p, p.relative_to(path).as_posix()) for p in files]


def read_pictures(
    files: Iterable[tuple[Path, str]], max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> Iterator[Picture]:
    """Decode each file (over ``max_pixels`` pixels: not decoded); an unreadable one becomes a
    ``Picture`` carrying the reason."""
    for path, name in files:
        try:
            yield Picture(printable(path), None, read_image(path, max_pixels), annotated_name=name)
        except UnreadableImageError as error:
            reason = str(error)
            if path.suffix.lower() in VIDEO_SUFFIXES:
                reason += " (a video? pass it with --video)"
            yield Picture(printable(path), None, None, reason, annotated_name=name)


def _open_video(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise PredictError(f"{printable(path)}: video file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise PredictError(f"{printable(path)}: OpenCV cannot open this video")
    return capture


def video_frame_count(path: str | os.PathLike[str], every_n_frames: int) -> int | None:
    """How many frames :func:`read_video` will yield, when the container says (else None)."""
    capture = _open_video(Path(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return -(-count // every_n_frames) if count > 0 else None


def read_video(path: str | os.PathLike[str], every_n_frames: int = 1) -> Iterator[Picture]:
    """Every ``every_n_frames``-th frame of a video (frame 0 first), as RGB pictures."""
    if every_n_frames < 1:
        raise PredictError(f"--every-n-frames must be at least 1, got {every_n_frames}")
    path = Path(path)
    capture = _open_video(path)
    try:
        for index in itertools.count():
            if not capture.grab():
                return
            if index % every_n_frames:
                continue
            ok, bgr = capture.retrieve()
            name = f"{path.stem}/frame_{index:06d}.png"
            shown = printable(path)
            if not ok or bgr is None:
                yield Picture(shown, index, None, f"{shown}: frame {index} cannot be decoded", name)
            else:
                yield Picture(shown, index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None, name)
    finally:
        capture.release()


def project_parameters() -> dict[str, Any]:
    """The project's parameters when run inside the Kedro project, else {} (then the detector's
    and the image reader's own defaults, which are the project's shipped defaults)."""
    from kedro.utils import find_kedro_project

    project = find_kedro_project(Path.cwd())
    if project is None:
        return {}
    from pediatric_emotion.pipelines.training.grid import load_project_parameters

    return dict(load_project_parameters(project))


def _row(picture: Picture, labels: Sequence[str], status: str, reason: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(BASE_COLUMNS)
    row.update(file=picture.file, frame=picture.frame, status=status, reason=reason)
    row.update({f"prob_{label}": None for label in labels})
    return row


def _annotate(image: np.ndarray, faces: Sequence[tuple[FaceBox | None, str]]) -> np.ndarray:
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


def _save_annotated(folder: Path, picture: Picture, image: np.ndarray) -> None:
    target = folder / picture.annotated_name
    try:
        content = encode_image(image, target.suffix or ".png")
    except (ValueError, cv2.error):  # an extension OpenCV reads but does not write
        target = target.with_name(f"{target.name}.png")
        content = encode_image(image, ".png")
    _write_atomically(target, content)


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
        self._detectors = detector.detector
        if detector.detector == "blazeface" and detector.fallback == "haar":
            self._detectors = "blazeface or the haar fallback"

    def rows(self, pictures: Iterable[Picture]) -> Iterator[dict[str, Any]]:
        """One row per picture, classified in chunks of :data:`CHUNK`."""
        iterator = iter(pictures)
        while chunk := list(itertools.islice(iterator, CHUNK)):
            yield from self._chunk(chunk)

    def _chunk(self, pictures: list[Picture]) -> list[dict[str, Any]]:
        from pediatric_emotion.pipelines.evaluation.tflite_inference import tflite_probabilities

        model, labels = self.model, self.model.labels
        rows: list[dict[str, Any]] = []
        faces: list[tuple[int, Picture, FaceBox]] = []
        with tempfile.TemporaryDirectory(prefix="predict-crops-") as crops_dir:
            crop_paths: list[str] = []
            for picture in pictures:
                if picture.image is None:
                    if self.on_error == "fail":
                        raise PredictError(f"{picture.error} (--on-error fail)")
                    rows.append(_row(picture, labels, "unreadable", str(picture.error)))
                    self.counts["unreadable"] += 1
                    continue
                boxes = self.detector.detect_all(picture.image)
                if not boxes:
                    rows.append(
                        _row(picture, labels, "no_face", f"no face found by {self._detectors}")
                    )
                    self.counts["no_face"] += 1
                    if self.annotated_dir is not None:
                        annotated = _annotate(picture.image, [(None, "no face")])
                        _save_annotated(self.annotated_dir, picture, annotated)
                    continue
                for face_index, box in enumerate(boxes):
                    crop = crop_face(
                        picture.image,
                        (box.x, box.y, box.w, box.h),
                        size=model.crop_size,
                        margin=model.crop_margin,
                    )
                    crop_path = Path(crops_dir) / f"{len(crop_paths):05d}.png"
                    crop_path.write_bytes(encode_image(crop, ".png"))
                    crop_paths.append(str(crop_path))
                    faces.append((len(rows), face_index, picture, box))
                    rows.append(_row(picture, labels, "ok", ""))
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
                _save_annotated(self.annotated_dir, picture, _annotate(picture.image, labelled))
        return rows


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


def predict(
    model_path: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]] = (),
    videos: Sequence[str | os.PathLike[str]] = (),
    *,
    out: str | os.PathLike[str] = "predictions",
    annotate: bool = False,
    every_n_frames: int = 1,
    output_format: str = "both",
    on_error: str = "skip",
    face_detection: Mapping[str, Any] | None = None,
    num_threads: int | None = None,
    max_image_pixels: int | None = None,
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Classify every face of every picture in ``inputs`` (files or folders) and of every
    ``every_n_frames``-th frame of ``videos``; write the table under ``out``.

    Returns the rows and the written paths. ``face_detection`` and ``max_image_pixels`` (a
    larger picture gets an ``unreadable`` row, never decoded) override the project's parameters
    (``face_detection``, ``face_crop.max_image_pixels``; ``None``: read them from the project
    when run inside it).
    """
    if output_format not in FORMATS:
        raise PredictError(f"--format must be one of {FORMATS}, got {output_format!r}")
    if not inputs and not videos:
        raise PredictError("give a picture, a folder of pictures or --video FILE")
    if every_n_frames < 1:
        raise PredictError(f"--every-n-frames must be at least 1, got {every_n_frames}")
    model = load_model(model_path)
    files = [item for path in inputs for item in list_pictures(path)]
    frame_counts = [video_frame_count(path, every_n_frames) for path in videos]
    total = None
    if all(count is not None for count in frame_counts):
        total = len(files) + sum(count or 0 for count in frame_counts)

    project = project_parameters() if None in (face_detection, max_image_pixels) else {}
    if face_detection is None:
        face_detection = project.get("face_detection") or {}
    if max_image_pixels is None:
        face_crop = project.get("face_crop") or {}
        max_image_pixels = int(face_crop.get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS))
    settings = dict(face_detection)
    logger.info(
        "Predicting with %s (%s, %d labels, %d px crops): %d pictures, %d videos",
        printable(model.path),
        model.spec.get("quantization", "?"),
        len(model.labels),
        model.crop_size,
        len(files),
        len(videos),
    )
    out = Path(out)
    annotated_dir = out / "annotated" if annotate else None
    predictor = Predictor(
        model,
        FaceDetector(**settings),
        on_error=on_error,
        annotated_dir=annotated_dir,
        num_threads=num_threads,
    )
    pictures = itertools.chain(
        read_pictures(files, max_image_pixels),
        *(read_video(path, every_n_frames) for path in videos),
    )
    # tflite_probabilities logs one line per call, here one per chunk: the summary below says it.
    inference_logger = logging.getLogger("pediatric_emotion.pipelines.evaluation.tflite_inference")
    level = inference_logger.level
    inference_logger.setLevel(logging.WARNING)
    try:
        rows = list(
            tqdm(predictor.rows(pictures), total=total, desc="Predicting", unit="img", disable=None)
        )
    finally:
        inference_logger.setLevel(level)
    summary = {
        "pictures": len(rows),
        "classified": predictor.counts["classified"],
        "no_face": predictor.counts["no_face"],
        "unreadable": predictor.counts["unreadable"],
        "emotions": dict(sorted(predictor.emotions.items())),
    }
    logger.info(
        "Predicted %d pictures: %d faces classified, %d without a face, %d unreadable; emotions %s",
        summary["pictures"],
        summary["classified"],
        summary["no_face"],
        summary["unreadable"],
        summary["emotions"],
    )
    written = write_outputs(model, rows, summary, out, output_format)
    for path in written:
        logger.info("Predictions written to %s", path)
    if annotated_dir is not None:
        logger.info("Annotated pictures written under %s", annotated_dir)
    return rows, written


@click.command(
    name="predict",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Detect, crop and classify the faces in pictures (a file or a folder) or video frames "
    "with MODEL (a .tflite file with its preprocessing spec).",
)
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("image_or_folder", type=click.Path(path_type=Path), nargs=-1)
@click.option(
    "--video",
    "videos",
    type=click.Path(path_type=Path),
    multiple=True,
    help="A video file to read frames from (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("predictions"),
    show_default=True,
    help="Folder for predictions.csv/.json and annotated/.",
)
@click.option(
    "--annotate", is_flag=True, help="Write pictures with boxes and labels to OUT/annotated."
)
@click.option(
    "--every-n-frames",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Classify every n-th video frame.",
)
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="both", show_default=True
)
@click.option(
    "--on-error",
    type=click.Choice(ON_ERROR),
    default="skip",
    show_default=True,
    help="skip: an unreadable picture gets a row with the reason; fail: stop with an error.",
)
@click.option("--threads", "num_threads", type=click.IntRange(min=1), default=None)
def predict_command(
    *,
    model: Path,
    image_or_folder: tuple[Path, ...],
    videos: tuple[Path, ...],
    out: Path,
    annotate: bool,
    every_n_frames: int,
    output_format: str,
    on_error: str,
    num_threads: int | None,
) -> None:
    """The ``pediatric-emotion predict`` command (see :func:`predict`)."""
    predict(
        model,
        image_or_folder,
        videos,
        out=out,
        annotate=annotate,
        every_n_frames=every_n_frames,
        output_format=output_format,
        on_error=on_error,
        num_threads=num_threads,
    )
