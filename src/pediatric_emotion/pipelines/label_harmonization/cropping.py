"""Find the face of every usable record, crop it square with a margin (eyes levelled with
``face_crop.align``: pediatric_emotion.faces.crop_detected_face), resize, encode, hash."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import imagehash
import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from pediatric_emotion.faces import FaceBox, FaceDetector, alignment_settings, crop_detected_face
from pediatric_emotion.harmonized_crops import DIGEST_COLUMN, crops_digest
from pediatric_emotion.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageTooLargeError,
    UnreadableImageError,
    encode_image,
    pixels_to_image,
    read_image,
)
from pediatric_emotion.parallel import in_dask_worker, map_chunks
from pediatric_emotion.pipelines.label_harmonization.adapters.base import DropReason

logger = logging.getLogger(__name__)

CROP_COLUMNS = [
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
]


def crop_file_name(source: str, record_id: str, extension: str) -> str:
    """Stable, unique, filesystem-safe crop path ``<source>/<readable id>_<hash>.<ext>``."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", record_id).strip("._")[-60:] or "image"
    digest = hashlib.sha1(record_id.encode("utf-8")).hexdigest()[:10]
    return f"{source}/{readable}_{digest}.{extension}"


def load_record_image(
    record: Mapping[str, Any], max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> np.ndarray:
    """The record's whole image as RGB uint8: inline pixels or the image file (decoded only when
    its header gives at most ``max_pixels`` pixels)."""
    pixels = record.get("pixels")
    if isinstance(pixels, str) and pixels:
        try:
            return pixels_to_image(pixels)
        except UnreadableImageError as err:
            raise UnreadableImageError(f"{record['image_id']}: {err}") from err
    if not record.get("image_path"):
        raise UnreadableImageError(f"{record['image_id']}: record has neither a file nor pixels")
    return read_image(record["image_path"], max_pixels)


def perceptual_hash(image: np.ndarray, hash_size: int = 16) -> str:
    """DCT perceptual hash (imagehash.phash) of ``hash_size`` squared bits, as hex digits."""
    return str(imagehash.phash(Image.fromarray(image), hash_size=hash_size))


def _face_box(
    record: Mapping[str, Any], image: np.ndarray, detector: FaceDetector | None
) -> FaceBox | str:
    """The box to crop, or a drop reason."""
    height, width = image.shape[:2]
    mode = record["face_box"]
    if mode == "whole_image":
        return FaceBox(0.0, 0.0, float(width), float(height), 1.0, "whole_image")
    if mode == "given" and pd.notna(record["given_w"]):
        x, y = float(record["given_x"]), float(record["given_y"])
        w, h = float(record["given_w"]), float(record["given_h"])
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(width), x + w), min(float(height), y + h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return DropReason.MALFORMED_ROW
        return FaceBox(x0, y0, x1 - x0, y1 - y0, 1.0, "given")
    assert detector is not None
    return detector.detect(image) or DropReason.NO_FACE_FOUND


@dataclass
class CropChunkResult:
    """One chunk's outcome: per record (in the chunk's order) its index and either the crop
    columns' values or a drop reason and detail; the encoded crops; the outcome counts."""

    updates: list[tuple[Any, str, list[Any]]] = field(default_factory=list)
    crops: dict[str, bytes] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)


_DETECTORS = threading.local()


def _detector_for(face_detection: Mapping[str, Any]) -> FaceDetector:
    """One detector per thread and configuration (a TFLite interpreter is not thread-safe), so
    a worker process builds it once for all the chunks it crops."""
    key = repr(sorted(face_detection.items()))
    cache = getattr(_DETECTORS, "cache", None)
    if cache is None:
        cache = _DETECTORS.cache = {}
    if key not in cache:
        cache[key] = FaceDetector(**face_detection)
    return cache[key]


def crop_chunk(
    records: pd.DataFrame,
    face_detection: Mapping[str, Any],
    face_crop: Mapping[str, Any],
    hash_size: int,
    extension: str,
    *,
    progress: bool = False,
) -> CropChunkResult:
    """Crop the usable ``records`` of one chunk (all of them usable); a pure function of its
    arguments, so chunks can run anywhere and in any order. ``progress``: a per-image bar."""
    jpeg_quality = int(face_crop.get("jpeg_quality", 95))
    max_pixels = int(face_crop.get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS))
    needs_detector = (records["face_box"] != "whole_image").any()
    detector = _detector_for(face_detection) if needs_detector else None
    result = CropChunkResult()
    bar_off = None if progress else True  # None: tqdm's own choice (off when not a terminal)
    for index in tqdm(records.index, desc="Cropping faces", unit="img", disable=bar_off):
        record = records.loc[index]
        try:
            image = load_record_image(record, max_pixels)
        except UnreadableImageError as err:
            reason = (
                DropReason.IMAGE_TOO_LARGE
                if isinstance(err, ImageTooLargeError)
                else DropReason.UNREADABLE_IMAGE
            )
            result.updates.append((index, "drop", [reason, str(err)]))
            result.outcomes[reason] += 1
            continue
        box = _face_box(record, image, detector)
        if isinstance(box, str):
            detail = (
                f"{record['image_id']}: no face found by {face_detection.get('detector')}"
                if box == DropReason.NO_FACE_FOUND
                else f"{record['image_id']}: given face box lies outside the image"
            )
            result.updates.append((index, "drop", [box, detail]))
            result.outcomes[box] += 1
            continue
        crop = crop_detected_face(image, box, face_crop)
        crop_path = crop_file_name(record["source"], record["record_id"], extension)
        result.crops[crop_path] = encode_image(crop, f".{extension}", jpeg_quality=jpeg_quality)
        values = [
            round(box.x, 2),
            round(box.y, 2),
            round(box.w, 2),
            round(box.h, 2),
            box.method,
            round(box.score, 4),
            image.shape[1],
            image.shape[0],
            crop_path,
            perceptual_hash(crop, hash_size),
            perceptual_hash(image, hash_size),
        ]
        result.updates.append((index, "crop", values))
        result.outcomes["cropped"] += 1
    return result


def crop_faces(
    records: pd.DataFrame,
    face_detection: Mapping[str, Any],
    face_crop: Mapping[str, Any],
    deduplication: Mapping[str, Any],
    parallel: Mapping[str, Any] | None = None,
) -> tuple[dict[str, bytes], pd.DataFrame]:
    """Crop the face of every usable record.

    Returns the encoded crops (crop path -> bytes) and the records with the face box, crop path,
    perceptual hash and the digest of all the crops (``crops_digest``: the run's mark, checked by
    every reader of the crops folder, pediatric_emotion.harmonized_crops) added; records that
    fail get ``unreadable_image``, ``image_too_large`` (over ``face_crop.max_image_pixels``, not
    decoded) or ``no_face_found``.
    ``parallel`` (``workers``, ``chunk_size``, ``scheduler``): with more than one worker the
    records are cropped in chunks on Dask (pediatric_emotion.parallel); the result is the same.
    """
    hash_size = int(deduplication["hash_size"])
    extension = {"png": "png", "jpg": "jpg", "jpeg": "jpg"}.get(str(face_crop["image_format"]))
    if extension is None:
        raise ValueError(
            f"face_crop.image_format must be png or jpg, got {face_crop['image_format']!r}"
        )
    max_pixels = face_crop.get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS)
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(
            f"face_crop.max_image_pixels must be a positive whole number, got {max_pixels!r}"
        )
    alignment = alignment_settings(face_crop)  # a bad setting fails here, not in a worker
    if alignment is not None:
        logger.info(
            "Face cropping: aligned (eyes level, %.2f of the crop apart) where BlazeFace finds "
            "the eyes; other boxes cropped unaligned",
            alignment["eye_distance"],
        )
    parallel = dict(parallel or {})
    workers = int(parallel.get("workers", 1))
    chunk_size = int(parallel.get("chunk_size", 256))
    if workers < 1 or chunk_size < 1:
        raise ValueError(
            f"parallel_cropping.workers and chunk_size must be >= 1, got {workers}, {chunk_size}"
        )
    usable = records["drop_reason"].isna()
    todo = records.loc[usable]
    args = (face_detection, face_crop, hash_size, extension)
    if workers == 1 or len(todo) <= chunk_size:
        results = [crop_chunk(todo, *args, progress=True)]
    else:
        chunks = [todo.iloc[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
        with tqdm(total=len(todo), desc="Cropping faces", unit="img", disable=None) as bar:
            results = map_chunks(
                crop_chunk,
                chunks,
                args=args,
                workers=workers,
                scheduler=str(parallel.get("scheduler", "processes")),
                on_done=lambda position: bar.update(len(chunks[position])),
            )
        logger.info(
            "Face cropping: %d images in %d chunks of up to %d on %s",
            len(todo),
            len(chunks),
            chunk_size,
            "the Dask cluster's workers" if in_dask_worker() else f"{workers} local workers",
        )

    records = records.copy()
    for column in CROP_COLUMNS:
        records[column] = None
    crops: dict[str, bytes] = {}
    outcomes: Counter[str] = Counter()
    for result in results:  # chunk order = record order: the same frame and crops as one chunk
        for index, kind, values in result.updates:
            columns = ["drop_reason", "detail"] if kind == "drop" else CROP_COLUMNS
            records.loc[index, columns] = values
        crops.update(result.crops)
        outcomes.update(result.outcomes)
    logger.info("Face cropping: %s", dict(outcomes))
    for column in ("bbox_x", "bbox_y", "bbox_w", "bbox_h", "face_score"):
        records[column] = pd.to_numeric(records[column])
    for column in ("image_width", "image_height"):
        records[column] = pd.to_numeric(records[column]).astype("Int64")
    records[DIGEST_COLUMN] = crops_digest(crops)
    return crops, records
