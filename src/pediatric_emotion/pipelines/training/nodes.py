"""Training nodes: pick a data copy, train one cell of the grid, plot it, summarize the grid.

TensorFlow is imported inside ``train_classifier`` only, so the registry and data-only pipelines
start without it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.grid import cell_name, cell_settings
from pediatric_emotion.harmonized_crops import DIGEST_COLUMN, check_crops_match
from pediatric_emotion.plots import new_figure

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = [
    "architecture",
    "variant",
    "weights",
    "image_size",
    "params",
    "train_images",
    "val_images",
    "epochs",
    "best_epoch",
    "best_val_balanced_accuracy",
    "train_seconds",
    "images_per_second",
]


def select_training_examples(
    face_manifest: pd.DataFrame, variant: Mapping[str, Any], emotions: list[str]
) -> pd.DataFrame:
    """The train and val rows one data copy trains on: crop_path, label (class index), split.

    ``variant`` selects by ``roles`` (required), and optionally ``populations``, ``sources`` and
    ``exclude_sources``. Test-role rows are never selected.
    """
    roles = set(variant.get("roles") or [])
    if not roles:
        raise ValueError(f"variant {variant!r}: `roles` must list at least one of train, guesswhat")
    if "test" in roles:
        raise ValueError("a training variant cannot include the test role")
    rows = face_manifest[
        face_manifest["split"].isin(["train", "val"]) & face_manifest["role"].isin(roles)
    ]
    if variant.get("populations"):
        rows = rows[rows["population"].isin(variant["populations"])]
    if variant.get("sources"):
        rows = rows[rows["source"].isin(variant["sources"])]
    if variant.get("exclude_sources"):
        rows = rows[~rows["source"].isin(variant["exclude_sources"])]
    class_index = {name: index for index, name in enumerate(emotions)}
    examples = pd.DataFrame(
        {
            "crop_path": rows["crop_path"].astype(str).to_numpy(),
            "label": rows["emotion"].astype(str).map(class_index).astype("int64").to_numpy(),
            "split": rows["split"].astype(str).to_numpy(),
            "source": rows["source"].astype(str).to_numpy(),
        }
    )
    if DIGEST_COLUMN in rows:  # the harmonization run's mark, checked against the crops folder
        examples[DIGEST_COLUMN] = rows[DIGEST_COLUMN].astype(str).to_numpy()
    for split in ("train", "val"):
        if not (examples["split"] == split).any():
            raise ValueError(
                f"variant {variant!r} selects no {split} images from face_manifest: "
                "check its roles/populations/sources against the configured sources"
            )
    logger.info(
        "Data copy %s: %d train, %d val images from %s",
        sorted(roles),
        (examples["split"] == "train").sum(),
        (examples["split"] == "val").sum(),
        sorted(examples["source"].unique()),
    )
    return examples


def train_classifier(
    *,
    examples: pd.DataFrame,
    face_crops: FileTree,
    architecture: Mapping[str, Any],
    variant: Mapping[str, Any],
    training: Mapping[str, Any],
    emotions: list[str],
    cell: Mapping[str, str],
) -> tuple[Any, dict[str, list], dict[str, Any]]:
    """Train one cell of the grid; return the best model, its history and its summary row."""
    from pediatric_emotion.pipelines.training.keras_training import fit_classifier

    settings = cell_settings(training, architecture, variant)
    name = cell_name(cell["architecture"], cell["variant"])
    check_crops_match(examples, face_crops.root, f"{name}.training_examples")
    logger.info("Training %s", name)
    model, history, summary = fit_classifier(
        examples,
        face_crops.root,
        architecture,
        settings,
        num_classes=len(emotions),
        cell=name,
    )
    return model, history, {**cell, **summary}


def plot_learning_curve(history: Mapping[str, list]) -> Figure:
    """Loss and accuracy per epoch, validation balanced accuracy, the best epoch marked."""
    frame = pd.DataFrame(history)
    figure = new_figure(10, 3.8)
    loss_axis, score_axis = figure.subplots(1, 2)
    epochs = frame["epoch"]
    loss_axis.plot(epochs, frame["loss"], label="train loss")
    loss_axis.plot(epochs, frame["val_loss"], label="val loss")
    score_axis.plot(epochs, frame["accuracy"], label="train accuracy")
    score_axis.plot(epochs, frame["val_accuracy"], label="val accuracy")
    score_axis.plot(epochs, frame["val_balanced_accuracy"], label="val balanced accuracy", lw=2)
    best = frame.loc[frame["val_balanced_accuracy"].idxmax()]
    score_axis.axvline(best["epoch"], color="grey", ls=":", label=f"best (epoch {best['epoch']})")
    phase_starts = frame.loc[frame["phase"] != frame["phase"].shift(), "epoch"].iloc[1:]
    for axis in (loss_axis, score_axis):
        for start in phase_starts:
            axis.axvline(start - 0.5, color="black", lw=0.8, ls="--")
        axis.set_xlabel("epoch")
        axis.legend(fontsize=8)
    score_axis.set_ylim(0, 1)
    score_axis.axhline(1 / 7, color="red", lw=0.8, ls=":")
    loss_axis.set_title("loss")
    score_axis.set_title("accuracy (red: chance, 1/7)")
    return figure


def summarize_training(*summaries: Mapping[str, Any]) -> pd.DataFrame:
    """One row per trained cell of the grid."""
    table = pd.DataFrame(list(summaries))
    return table.reindex(columns=SUMMARY_COLUMNS + [c for c in table if c not in SUMMARY_COLUMNS])
