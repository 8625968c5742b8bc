"""Converting a technique's model into TFLite files with their specs, and the summary rows that
say what was made: sizes, sparsity, clusters per channel, or why no file was made."""

from __future__ import annotations

import gzip
import logging
import re
import time
from typing import Any

from pediatric_emotion.datasets import TFLiteModel, embed_spec
from pediatric_emotion.pipelines.optimization.cell import CellContext, representative_images

logger = logging.getLogger(__name__)

# Weights tfmot prunes and clusters: Conv2D kernels (SeparableConv2D's pointwise ones included)
# and Dense kernels become these TFLite ops; depthwise kernels are left alone.
COMPRESSED_OPS = ("CONV_2D", "FULLY_CONNECTED")


def tflite_files(
    cell: CellContext,
    model: Any,
    technique: str,
    *,
    quantization_aware: bool = False,
) -> tuple[dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Convert ``model`` to every configured quantization of ``technique``: the files (keyed by
    quantization, as the PartitionedDataset saves them) and one summary row each."""
    from pediatric_emotion.modeling.inputs import Preprocessing
    from pediatric_emotion.modeling.tflite_export import convert_to_tflite, tflite_spec
    from pediatric_emotion.modeling.tflite_inspection import weight_tensors

    files: dict[str, TFLiteModel] = {}
    rows: list[dict[str, Any]] = []
    representative = None
    for quantization in cell.quantizations(technique):
        started = time.perf_counter()
        row = file_row(cell, technique, quantization)
        try:
            if quantization == "int8" and representative is None:
                representative = representative_images(cell)
            content = convert_to_tflite(
                model,
                quantization,
                representative_images=representative,
                io_dtype=str(cell.optimization.get("int8_io", "int8")),
                quantization_aware=quantization_aware,
                per_channel=bool(cell.optimization.get("per_channel_weights", True)),
            )
        except Exception as err:  # a failed file is a row of the table, not the run's end
            logger.error(
                "%s %s %s: conversion failed: %s",
                cell.name,
                technique,
                quantization,
                err,
                exc_info=err,
            )
            rows.append({**row, "status": "failed", "reason": failure_reason(err, "conversion")})
            continue
        spec = tflite_spec(
            content,
            labels=cell.emotions,
            preprocessing=Preprocessing.from_config(cell.architecture, cell.image_size),
            face_crop=cell.face_crop,
            description={
                "architecture": cell.architecture_name,
                "application": cell.architecture.get("application"),
                "variant": cell.variant_name,
                "technique": technique,
                "quantization": quantization,
            },
        )
        content = embed_spec(content, spec)  # as saved: size_bytes is the file's size
        files[quantization] = TFLiteModel(content=content, spec=spec)
        compressed = [w for w in weight_tensors(content) if w.op in COMPRESSED_OPS]
        total = sum(w.values.size for w in compressed)
        rows.append(
            {
                **row,
                "tflite_path": f"{cell.optimization.get('tflite_folder', '')}/{cell.name}/"
                f"{technique}/{quantization}.tflite".lstrip("/"),
                "size_bytes": len(content),
                "gzip_bytes": len(gzip.compress(content, compresslevel=9)),
                "sparsity": round(
                    sum(int(w.zero_mask().sum()) for w in compressed) / total if total else 0.0, 4
                ),
                "max_unique_per_channel": max(
                    (int(w.unique_per_channel().max(initial=0)) for w in compressed), default=0
                ),
                "weight_dtypes": ",".join(sorted({w.dtype for w in compressed})),
                "input_dtype": spec["input"]["dtype"],
                "status": "ok",
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        logger.info(
            "%s %s %s: %d bytes (%d gzipped), sparsity %.2f",
            cell.name,
            technique,
            quantization,
            rows[-1]["size_bytes"],
            rows[-1]["gzip_bytes"],
            rows[-1]["sparsity"],
        )
    return files, rows


def file_row(cell: CellContext, technique: str, quantization: str) -> dict[str, Any]:
    return {
        "architecture": cell.architecture_name,
        "variant": cell.variant_name,
        "technique": technique,
        "quantization": quantization,
    }


# Absolute paths of installed packages in messages (the converter's op locations): dropped.
_PACKAGE_PATH = re.compile(r"[^\s\"'(\[]*/(?:site|dist)-packages/")


def failure_reason(err: BaseException, stage: str = "") -> str:
    """One line for the table (the full traceback goes to the log): the stage, the error's type
    and message, without the interpreter's own paths."""
    text = _PACKAGE_PATH.sub("", " ".join(str(err).split()))
    return f"{stage + ': ' if stage else ''}{type(err).__name__}: {text[:1000]}"


def rows_without_files(
    cell: CellContext, technique: str, status: str, reason: str
) -> tuple[dict[str, TFLiteModel], list[dict[str, Any]]]:
    """No files for ``technique``: one row per configured quantization with ``status``."""
    log = logger.error if status == "failed" else logger.warning
    log("%s %s: %s: %s", cell.name, technique, status, reason)
    rows = [
        {**file_row(cell, technique, q), "status": status, "reason": reason}
        for q in cell.quantizations(technique)
    ]
    return {}, rows


def no_model(
    cell: CellContext, technique: str, status: str, reason: str
) -> tuple[Any, dict[str, TFLiteModel], list[dict[str, Any]]]:
    """A pruning / clustering node's outputs when it made no model: ``NoModel`` (Kedro saves no
    None; the catalog's dataset removes the file) and the rows saying why."""
    from pediatric_emotion.datasets.models import NoModel

    return NoModel(reason), *rows_without_files(cell, technique, status, reason)
