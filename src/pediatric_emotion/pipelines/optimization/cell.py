"""What one cell's technique nodes share: its data and settings (``CellContext``), and the
fine-tuning, calibration and model-copy steps every technique builds on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.grid import cell_name, cell_settings
from pediatric_emotion.harmonized_crops import check_crops_match


@dataclass(frozen=True)
class CellContext:
    """One cell of the grid as its technique nodes see it: names, settings, examples, crops."""

    architecture_name: str
    variant_name: str
    architecture: Mapping[str, Any]
    settings: dict[str, Any]
    optimization: Mapping[str, Any]
    emotions: list[str]
    face_crop: Mapping[str, Any]
    examples: pd.DataFrame
    crops_root: Any

    @property
    def name(self) -> str:
        return cell_name(self.architecture_name, self.variant_name)

    @property
    def image_size(self) -> int:
        return int(self.settings["image_size"])

    @property
    def fine_tuning(self) -> Mapping[str, Any]:
        return self.optimization.get("fine_tuning") or {}

    @property
    def train(self) -> pd.DataFrame:
        """The train split of the cell's examples: what fine-tuning and calibration read."""
        return self.examples[self.examples["split"] == "train"]

    @property
    def max_fine_tuning_steps(self) -> int | None:
        """Batches per fine-tuning epoch at most: ``fine_tuning.max_steps_per_epoch``, else
        training's cap."""
        return self.fine_tuning.get("max_steps_per_epoch") or self.settings.get(
            "max_steps_per_epoch"
        )

    def quantizations(self, technique: str) -> list[str]:
        """The TFLite files ``technique`` writes (``optimization.quantizations``)."""
        configured = (self.optimization.get("quantizations") or {}).get(technique)
        if not configured:
            raise ValueError(f"optimization.quantizations.{technique} lists no quantization")
        return list(configured)


def cell_context(
    cell: Mapping[str, str],
    *,
    examples: pd.DataFrame,
    face_crops: FileTree,
    architecture: Mapping[str, Any],
    variant: Mapping[str, Any],
    training: Mapping[str, Any],
    optimization: Mapping[str, Any],
    emotions: list[str],
    face_crop: Mapping[str, Any],
) -> CellContext:
    """The context of a technique node's inputs, after checking its examples belong to the
    crops folder. Seeds Python, NumPy and TensorFlow with the cell's ``seed`` (as training
    does), so what a technique makes (dropout in fine-tuning, k-means++ cluster centres) depends
    on its inputs and settings alone, not on what ran before it in the same process."""
    import tf_keras as keras

    name = cell_name(cell["architecture"], cell["variant"])
    check_crops_match(examples, face_crops.root, f"{name}.training_examples")
    settings = cell_settings(training, architecture, variant)
    keras.utils.set_random_seed(int(settings["seed"]))
    return CellContext(
        architecture_name=cell["architecture"],
        variant_name=cell["variant"],
        architecture=architecture,
        settings=settings,
        optimization=optimization,
        emotions=list(emotions),
        face_crop=face_crop,
        examples=examples,
        crops_root=face_crops.root,
    )


def fine_tuning_batches(context: CellContext) -> tuple[Any, int, dict[int, float] | None]:
    """The fine-tuning stream of the train split (augmented, repeating), its steps per epoch
    (``fine_tuning.max_steps_per_epoch``, else training's cap) and class weights."""
    from pediatric_emotion.modeling.inputs import training_batches

    return training_batches(
        context.train,
        context.crops_root,
        architecture=context.architecture,
        settings=context.settings,
        num_classes=len(context.emotions),
        max_steps_per_epoch=context.max_fine_tuning_steps,
    )


def fine_tuning_steps(context: CellContext) -> int:
    """The batches of one fine-tuning epoch, as ``fine_tuning_batches`` counts them, without
    building the stream."""
    from pediatric_emotion.modeling.inputs import steps_per_epoch

    return steps_per_epoch(
        len(context.train), int(context.settings["batch_size"]), context.max_fine_tuning_steps
    )


def representative_images(context: CellContext) -> Any:
    """Model-ready train images for int8 calibration: a seeded sample of the train split."""
    from pediatric_emotion.modeling.inputs import as_arrays, crop_stream

    train = context.train
    count = min(int(context.optimization.get("representative_images", 100)), len(train))
    sample = train.sample(n=count, random_state=int(context.settings["seed"]))
    return as_arrays(
        crop_stream(
            sample,
            context.crops_root,
            architecture=context.architecture,
            settings=context.settings,
            num_classes=len(context.emotions),
            training=False,
            cache="none",
            batch_size=32,
        )
    )


def fine_tune(context: CellContext, model: Any, callbacks: list | None = None) -> Any:
    """A few epochs of training at the fine-tuning learning rate."""
    from pediatric_emotion.modeling.compression import fine_tune as fit
    from pediatric_emotion.modeling.optimizers import DEFAULT_OPTIMIZER

    data, steps, weights = fine_tuning_batches(context)
    return fit(
        model,
        data,
        epochs=int(context.fine_tuning.get("epochs", 1)),
        steps_per_epoch=steps,
        learning_rate=float(context.fine_tuning.get("learning_rate", 1e-4)),
        class_weight=weights,
        callbacks=callbacks,
        run_eagerly=bool(context.fine_tuning.get("run_eagerly", False)),
        optimizer=str(context.settings.get("optimizer", DEFAULT_OPTIMIZER)),
    )


def quantizable_copy(context: CellContext, model: Any) -> Any:
    """The float model rebuilt with layers tfmot can quantize (same computation)."""
    from pediatric_emotion.modeling.quantizable import quantizable_twin

    return quantizable_twin(
        model,
        context.architecture,
        image_size=context.image_size,
        num_classes=len(context.emotions),
    )
