"""Finding and reading what ``predict`` classifies: picture files, folders, video frames."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import cv2
import numpy as np

from pediatric_emotion.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    UnreadableImageError,
    printable,
    read_image,
)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


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
