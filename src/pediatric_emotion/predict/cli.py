"""``predict`` as a function and as the ``pediatric-emotion predict`` command."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from tqdm.auto import tqdm

from pediatric_emotion.faces import FaceDetector
from pediatric_emotion.images import DEFAULT_MAX_IMAGE_PIXELS, printable
from pediatric_emotion.predict.inputs import (
    PredictError,
    list_pictures,
    read_pictures,
    read_video,
    video_frame_count,
)
from pediatric_emotion.predict.model import load_model
from pediatric_emotion.predict.outputs import FORMATS, write_outputs
from pediatric_emotion.predict.predictor import ON_ERROR, Predictor

logger = logging.getLogger(__name__)


def project_parameters() -> dict[str, Any]:
    """The project's parameters when run inside the Kedro project, else {} (then the detector's
    and the image reader's own defaults, which are the project's shipped defaults)."""
    from kedro.utils import find_kedro_project

    project = find_kedro_project(Path.cwd())
    if project is None:
        return {}
    from pediatric_emotion.grid import load_project_parameters

    return dict(load_project_parameters(project))


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
        "Predicting with %s (%s, %d labels, %d px %s crops): %d pictures, %d videos",
        printable(model.path),
        model.spec.get("quantization", "?"),
        len(model.labels),
        model.crop_size,
        "aligned" if model.face_crop.get("align") else "unaligned",
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
    from pediatric_emotion.modeling.tflite_runner import logger as inference_logger

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
