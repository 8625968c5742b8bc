"""Evaluation nodes that score: one cell's predictions (its Keras model's and every TFLite
file's) into metrics, subgroup metrics, compression cost and confusion matrices; and the optional
peers on the test images. The images come from :mod:`.selection`, the predictions from
:mod:`.prediction`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.grid import FILE_COLUMNS, KERAS
from pediatric_emotion.harmonized_crops import crop_paths
from pediatric_emotion.pipelines.evaluation.metrics import (
    confusion_matrix,
    metric_rows,
    summary_scores,
)
from pediatric_emotion.pipelines.evaluation.peers import available_peers, peer_scores
from pediatric_emotion.pipelines.evaluation.prediction import score_columns
from pediatric_emotion.pipelines.evaluation.selection import select_test_images
from pediatric_emotion.pipelines.evaluation.subgroups import group_labels, subgroup_rows
from pediatric_emotion.plots import plot_confusion

logger = logging.getLogger(__name__)

MODEL_COLUMNS = [*FILE_COLUMNS, "split"]
METRIC_COLUMNS = [*MODEL_COLUMNS, "metric", "value", "ci_low", "ci_high"]
SUBGROUP_COLUMNS = [
    *MODEL_COLUMNS,
    "grouping",
    "group",
    "n_images",
    "n_subjects",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "note",
]
COMPRESSION_COLUMNS = [
    *MODEL_COLUMNS,
    "n_images",
    "agreement_with_keras",
    "balanced_accuracy",
    "keras_balanced_accuracy",
    "balanced_accuracy_change",
    "macro_f1_change",
    "mean_abs_score_difference",
]
CONFUSION_COLUMNS = [*MODEL_COLUMNS, "true", "predicted", "count"]


def evaluate_cell(
    *,
    images: pd.DataFrame,
    evaluation: Mapping[str, Any],
    emotions: list[str],
    cell: Mapping[str, str],
    **predictions: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Callable[[], Figure]]]:
    """Metrics, subgroup metrics, compression cost and confusion matrices of every model of one
    cell (``predictions``: the Keras model's and each technique's tables)."""
    arch, variant = cell["architecture"], cell["variant"]
    table = pd.concat([p for p in predictions.values() if len(p)], ignore_index=True)
    scores_columns = score_columns(emotions)
    num_classes = len(emotions)
    bootstrap = evaluation.get("bootstrap") or {}
    subgroups = evaluation.get("subgroups") or {}
    subgroup_splits = set(subgroups.get("splits") or ["test"])
    keyed_images = images.set_index(["split", "crop_path"])
    metrics, subgroup, confusion, compression = [], [], [], []
    plots: dict[str, Callable[[], Figure]] = {}
    keras = table[(table["technique"] == KERAS[0]) & (table["quantization"] == KERAS[1])]
    for (technique, quantization, split), group in table.groupby(
        ["technique", "quantization", "split"], sort=False
    ):
        where = f"{arch}.{variant} {technique} {quantization} {split}"
        meta = keyed_images.reindex(pd.MultiIndex.from_frame(group[["split", "crop_path"]]))
        if meta["label"].isna().any() or len(group) != int((images["split"] == split).sum()):
            raise ValueError(f"{where}: the predictions do not cover the split's images")
        labels = group["label"].to_numpy(dtype=np.int64)
        scores = group[scores_columns].to_numpy(dtype=np.float64)
        predicted = scores.argmax(axis=1)
        subjects = meta["subject_id"].astype(str).to_numpy()
        model = {
            "architecture": arch,
            "variant": variant,
            "technique": technique,
            "quantization": quantization,
            "split": split,
        }
        rows = metric_rows(
            labels,
            scores,
            subjects,
            emotions,
            bootstrap=bootstrap,
            ece_bins=int(evaluation.get("ece_bins", 10)),
        )
        metrics.extend({**model, **row} for row in rows)
        matrix = confusion_matrix(labels, predicted, num_classes)
        for (i, j), count in np.ndenumerate(matrix):
            confusion.append(
                {**model, "true": emotions[i], "predicted": emotions[j], "count": int(count)}
            )
        balanced = float(summary_scores(matrix)["balanced_accuracy"])
        plots[f"{split}/{technique}.{quantization}"] = functools.partial(
            plot_confusion,
            matrix,
            list(emotions),
            f"{arch}.{variant} {technique} {quantization}, {split} split, "
            f"{evaluation.get('run_label', 'this run')}",
            balanced,
        )
        if split in subgroup_splits:
            groupings = group_labels(meta.reset_index(drop=True), subgroups)
            for row in subgroup_rows(
                labels,
                predicted,
                subjects,
                groupings,
                num_classes=num_classes,
                min_group_size=int(subgroups.get("min_group_size", 10)),
                bootstrap=bootstrap,
            ):
                subgroup.append({**model, **row})
        if (technique, quantization) != KERAS and len(keras):
            compression.append(_compression_row(model, group, keras, emotions))
    logger.info("%s.%s: %d models x splits scored", arch, variant, len(plots))
    return (
        pd.DataFrame(metrics, columns=METRIC_COLUMNS),
        pd.DataFrame(subgroup, columns=SUBGROUP_COLUMNS),
        pd.DataFrame(compression, columns=COMPRESSION_COLUMNS),
        pd.DataFrame(confusion, columns=CONFUSION_COLUMNS),
        plots,
    )


def _compression_row(
    model: dict[str, Any], group: pd.DataFrame, keras: pd.DataFrame, emotions: Sequence[str]
) -> dict[str, Any]:
    """Agreement with the float Keras model on the same images, and the change in scores."""
    columns = score_columns(emotions)
    reference = keras[keras["split"] == model["split"]].set_index("crop_path")
    reference = reference.loc[group["crop_path"]]
    labels = group["label"].to_numpy(dtype=np.int64)
    mine = group[columns].to_numpy(dtype=np.float64)
    theirs = reference[columns].to_numpy(dtype=np.float64)
    num_classes = len(emotions)
    own = summary_scores(confusion_matrix(labels, mine.argmax(axis=1), num_classes))
    base = summary_scores(confusion_matrix(labels, theirs.argmax(axis=1), num_classes))
    return {
        **model,
        "n_images": len(group),
        "agreement_with_keras": float(np.mean(mine.argmax(axis=1) == theirs.argmax(axis=1))),
        "balanced_accuracy": float(own["balanced_accuracy"]),
        "keras_balanced_accuracy": float(base["balanced_accuracy"]),
        "balanced_accuracy_change": float(own["balanced_accuracy"] - base["balanced_accuracy"]),
        "macro_f1_change": float(own["macro_f1"] - base["macro_f1"]),
        "mean_abs_score_difference": float(np.mean(np.abs(mine - theirs))),
    }


def evaluate_peers(
    face_manifest: pd.DataFrame,
    face_crops: FileTree,
    evaluation: Mapping[str, Any],
    emotions: list[str],
) -> pd.DataFrame:
    """Metrics of the configured peers on the test images; a peer whose package is not
    importable is skipped with one log line (the table then has no rows for it)."""
    rows: list[dict[str, Any]] = []
    peers = available_peers(evaluation.get("peers") or {})
    if not peers:
        return pd.DataFrame(rows, columns=METRIC_COLUMNS)
    images = select_test_images(face_manifest, face_crops, evaluation, emotions)
    paths = crop_paths(face_crops.root, images)
    for name, config in peers.items():
        scores = peer_scores(name, config, paths, emotions)
        model = {
            "architecture": name,
            "variant": "published_weights",
            "technique": "peer",
            "quantization": str(config.get("runtime")),
            "split": "test",
        }
        for row in metric_rows(
            images["label"].to_numpy(),
            scores,
            images["subject_id"].astype(str).to_numpy(),
            emotions,
            bootstrap=evaluation.get("bootstrap") or {},
            ece_bins=int(evaluation.get("ece_bins", 10)),
        ):
            rows.append({**model, **row})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)
