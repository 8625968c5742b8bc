"""Class scores of one cell's models on its evaluation images: the float Keras model through the
crops stream it trained on, and every TFLite file of a technique through the LiteRT interpreter.
Each gives a predictions table: technique, quantization, split, crop_path, label, predicted and one
``p_{emotion}`` score column per class.

TensorFlow is imported inside ``predict_keras`` only, so the registry starts without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pediatric_emotion.datasets import FileTree, TFLiteModel
from pediatric_emotion.grid import KERAS, cell_name, cell_settings
from pediatric_emotion.harmonized_crops import crop_paths
from pediatric_emotion.modeling.tflite_runner import (
    DEFAULT_BATCH_SIZE,
    InputRecipe,
    check_spec_labels,
    tflite_probabilities,
)

logger = logging.getLogger(__name__)


def score_columns(emotions: Sequence[str]) -> list[str]:
    """The predictions table's score columns, one per class in params:emotions order."""
    return [f"p_{emotion}" for emotion in emotions]


def _predictions(
    images: pd.DataFrame,
    scores: np.ndarray,
    emotions: Sequence[str],
    technique: str,
    quantization: str,
) -> pd.DataFrame:
    frame = images[["split", "crop_path", "label"]].reset_index(drop=True).copy()
    frame.insert(0, "quantization", quantization)
    frame.insert(0, "technique", technique)
    frame["predicted"] = scores.argmax(axis=1).astype("int64")
    for column, values in zip(score_columns(emotions), scores.T, strict=True):
        frame[column] = values.astype("float64")
    return frame


def predict_keras(
    *,
    model: Any,
    images: pd.DataFrame,
    face_crops: FileTree,
    architecture: Mapping[str, Any],
    variant: Mapping[str, Any],
    training: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    emotions: list[str],
    cell: Mapping[str, str],
) -> pd.DataFrame:
    """Class scores of the cell's float Keras model, in batches, with its training preprocessing."""
    from pediatric_emotion.modeling.inputs import crop_stream

    name = cell_name(cell["architecture"], cell["variant"])
    outputs = int(model.output_shape[-1])
    if outputs != len(emotions):
        raise ValueError(f"{name}.model has {outputs} outputs, params:emotions {len(emotions)}")
    data = crop_stream(
        images,
        face_crops.root,
        architecture=architecture,
        settings=cell_settings(training, architecture, variant),
        num_classes=len(emotions),
        training=False,
        cache="none",
        batch_size=int(evaluation.get("batch_size", 64)),
    )
    scores = np.asarray(model.predict(data, verbose=0), dtype=np.float64)
    logger.info("%s keras: %d images predicted", name, len(scores))
    return _predictions(images, scores, emotions, *KERAS)


def predict_tflite(
    *,
    files: Mapping[str, Callable[[], TFLiteModel]],
    images: pd.DataFrame,
    face_crops: FileTree,
    evaluation: Mapping[str, Any],
    emotions: list[str],
    cell: Mapping[str, str],
    technique: str,
) -> pd.DataFrame:
    """Class scores of every file of one technique (quantization -> file), through the LiteRT
    interpreter in batches of ``evaluation.tflite.batch_size`` (1: one image per invoke), fed as
    each file's spec says. Every spec is checked before the first image runs; the images are
    decoded once for all files of the same input size."""
    name = cell_name(cell["architecture"], cell["variant"])
    loaded: dict[str, TFLiteModel] = {}
    for quantization in sorted(files):
        where = f"{name}/{technique}/{quantization}.tflite"
        model = files[quantization]()
        check_spec_labels(model.spec, emotions, where)
        for key, expected in (("technique", technique), ("quantization", quantization)):
            if key in model.spec and model.spec[key] != expected:
                raise ValueError(f"{where}: the spec says {key} {model.spec[key]!r}")
        loaded[quantization] = model
    paths = crop_paths(face_crops.root, images)
    settings = evaluation.get("tflite") or {}
    threads = settings.get("num_threads")
    decoded: dict[tuple[int, int, str], np.ndarray] = {}
    frames = []
    for quantization, model in loaded.items():
        where = f"{name}/{technique}/{quantization}.tflite"
        recipe = InputRecipe.from_spec(model.spec, where)
        size = (recipe.height, recipe.width, recipe.colour)
        if size not in decoded:
            decoded[size] = recipe.read_all(paths, where=where)
        scores = tflite_probabilities(
            model.content,
            model.spec,
            paths,
            where=where,
            num_threads=None if threads is None else int(threads),
            batch_size=int(settings.get("batch_size", DEFAULT_BATCH_SIZE)),
            pixels=decoded[size],
        )
        frames.append(_predictions(images, scores, emotions, technique, quantization))
    if not frames:
        return pd.DataFrame(columns=["technique", "quantization", "split", "crop_path", "label"])
    return pd.concat(frames, ignore_index=True)
