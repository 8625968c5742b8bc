"""The technique builders: one node function per row of the technique registry
(``pediatric_emotion.grid.techniques``), each called with the model it starts from, the cell,
its own name and the cell's shared inputs.

Every builder returns its TFLite files and one summary row per configured quantization, and the
float model where its row ``keeps_model``. A row's status: ``ok``; ``unsupported`` where the
technique truly cannot apply (tfmot refuses a layer type, or the settings leave it nothing to do),
with the reason; ``failed`` where an exception was raised in wrapping, fine-tuning or conversion
(a defect to fix, named in the log with its traceback and in the row); ``skipped`` where the model
a technique starts from was not made (its own row says why). The run goes on either way.

TensorFlow is imported inside the builders only, so the registry starts without it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from pediatric_emotion.datasets import TFLiteModel
from pediatric_emotion.grid import technique as registry_row
from pediatric_emotion.pipelines.optimization.cell import (
    CellContext,
    cell_context,
    fine_tune,
    fine_tuning_steps,
    quantizable_copy,
    representative_images,
)
from pediatric_emotion.pipelines.optimization.conversion import (
    failure_reason,
    no_model,
    rows_without_files,
    tflite_files,
)

logger = logging.getLogger(__name__)

# What tfmot says when a layer type is outside what a technique supports (prune_registry,
# clustering_registry, the 8-bit quantize registry and their wrappers): a real limit.
_REFUSAL = re.compile(r"not (yet )?supported|unsupported layer|with a supported layer", re.I)


class TechniqueStoppedError(Exception):
    """A technique stopped: ``status`` (unsupported | failed) and ``reason`` for its rows."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def attempt(
    cell: CellContext,
    technique: str,
    stage: str,
    run: Callable[[], Any],
    *,
    may_refuse: bool = False,
) -> Any:
    """Run one stage of a technique (wrapping, fine-tuning, stripping). An exception becomes
    ``TechniqueStoppedError``: ``unsupported`` where ``may_refuse`` (a tfmot wrapper) and the
    message is tfmot's refusal of a layer, else ``failed``."""
    try:
        return run()
    except Exception as err:
        status = "unsupported" if may_refuse and _REFUSAL.search(str(err)) else "failed"
        log = logger.error if status == "failed" else logger.warning
        log("%s %s: %s %s", cell.name, technique, stage, status, exc_info=err)
        raise TechniqueStoppedError(status, failure_reason(err, stage)) from err


def clustering(context: CellContext, model: Any, *, preserve_sparsity: bool) -> Any:
    """``model`` wrapped for clustering with the configured clusters and initialization."""
    from pediatric_emotion.modeling.compression import clustering_wrapped

    clustering = context.optimization.get("clustering") or {}
    return clustering_wrapped(
        model,
        clusters=int(clustering.get("clusters", 16)),
        init=str(clustering.get("init", "kmeans_plus_plus")),
        preserve_sparsity=preserve_sparsity,
    )


def export_baseline(
    *, model: Any, cell: Mapping[str, str], technique: str, **inputs: Any
) -> tuple[dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Post-training quantization of the trained model: every configured quantization (of its
    float32 copy, where it was trained under mixed precision)."""
    from pediatric_emotion.modeling.architectures import float32_copy

    context = cell_context(cell, **inputs)
    return tflite_files(context, float32_copy(model), technique)


def prune_classifier(
    *, model: Any, cell: Mapping[str, str], technique: str, **inputs: Any
) -> tuple[Any, dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Magnitude pruning to the configured sparsity, fine-tuned, stripped, converted. Returns the
    stripped float model too (PQAT and PCQAT start from it); ``NoModel`` where none was made."""
    import tensorflow_model_optimization as tfmot

    from pediatric_emotion.modeling.compression import pruning_wrapped, strip

    context = cell_context(cell, **inputs)
    pruning = context.optimization.get("pruning") or {}
    frequency = int(pruning.get("frequency", 100))
    steps = fine_tuning_steps(context)
    epochs = int(context.fine_tuning.get("epochs", 1))
    total = max(1, steps * epochs)
    # Reach the target on a mask update: the last multiple of `frequency` within end_fraction.
    end_step = int(total * float(pruning.get("end_fraction", 0.7))) // frequency * frequency
    end_step = max(end_step, frequency)
    if end_step > total:
        return no_model(
            context,
            technique,
            "unsupported",
            f"pruning.frequency {frequency} exceeds the {total} fine-tuning steps: the mask "
            "would never be updated",
        )
    try:
        wrapped = attempt(
            context,
            technique,
            "wrapping",
            lambda: pruning_wrapped(
                quantizable_copy(context, model),
                sparsity=float(pruning.get("sparsity", 0.5)),
                end_step=end_step,
                frequency=frequency,
            ),
            may_refuse=True,
        )
        attempt(
            context,
            technique,
            "fine-tuning",
            lambda: fine_tune(
                context, wrapped, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
            ),
        )
        pruned = attempt(context, technique, "stripping", lambda: strip(wrapped))
    except TechniqueStoppedError as stop:
        return no_model(context, technique, stop.status, stop.reason)
    files, rows = tflite_files(context, pruned, technique)
    return pruned, files, rows


def cluster_classifier(
    *, model: Any, cell: Mapping[str, str], technique: str, **inputs: Any
) -> tuple[Any, dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Weight clustering (the configured number of clusters per kernel), fine-tuned, stripped,
    converted. Returns the stripped float model too (CQAT starts from it); ``NoModel`` where none
    was made."""
    from pediatric_emotion.modeling.compression import strip

    context = cell_context(cell, **inputs)
    try:
        wrapped = attempt(
            context,
            technique,
            "wrapping",
            lambda: clustering(context, quantizable_copy(context, model), preserve_sparsity=False),
            may_refuse=True,
        )
        attempt(context, technique, "fine-tuning", lambda: fine_tune(context, wrapped))
        clustered = attempt(context, technique, "stripping", lambda: strip(wrapped))
    except TechniqueStoppedError as stop:
        return no_model(context, technique, stop.status, stop.reason)
    files, rows = tflite_files(context, clustered, technique)
    return clustered, files, rows


def train_quantization_aware(
    *, model: Any, cell: Mapping[str, str], technique: str, **inputs: Any
) -> tuple[dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Quantization-aware training, then int8: ``qat`` from the trained model, ``pqat`` from the
    pruned one (zeros kept), ``cqat`` from the clustered one (clusters kept), ``pcqat`` from the
    pruned one clustered with its zeros kept (both kept)."""
    from pediatric_emotion.modeling.architectures import float32_copy
    from pediatric_emotion.modeling.compression import quantization_aware, strip

    row = registry_row(technique)
    context = cell_context(cell, **inputs)
    if model is None:  # no start model on file (NoModel was saved): its own row says why
        source = row.starts_from
        return rows_without_files(
            context, technique, "skipped", f"no {source} model to start from (see the {source} row)"
        )
    try:
        start = attempt(
            context,
            technique,
            "copying",
            lambda: (
                # the start model as it is when float32: wrapping clones it (a copy of
                # NASNetMobile's graph costs 3 s)
                quantizable_copy(context, model) if row.starts_from is None else float32_copy(model)
            ),
        )
        if row.preserves == "sparsity_and_clusters":  # the pruned model, clustered first
            wrapped = attempt(
                context,
                technique,
                "clustering",
                lambda: clustering(context, start, preserve_sparsity=True),
                may_refuse=True,
            )
            attempt(
                context, technique, "fine-tuning the clusters", lambda: fine_tune(context, wrapped)
            )
            start = attempt(context, technique, "stripping", lambda: strip(wrapped))
        calibration = representative_images(context)
        quantized = attempt(
            context,
            technique,
            "wrapping",
            lambda: quantization_aware(
                start, preserve=row.preserves, calibration_images=calibration
            ),
            may_refuse=True,
        )
        attempt(context, technique, "fine-tuning", lambda: fine_tune(context, quantized))
    except TechniqueStoppedError as stop:
        return rows_without_files(context, technique, stop.status, stop.reason)
    return tflite_files(context, quantized, technique, quantization_aware=True)


def distill_classifier(
    *,
    model: Any,
    teacher_logits: Any,
    cell: Mapping[str, str],
    technique: str,
    **inputs: Any,
) -> tuple[Any, dict[str, TFLiteModel], list[dict[str, Any]]]:
    """The cell's architecture trained with the Hinton loss against its data copy's cached
    teacher logits (``optimization.distillation``), from the trained model or from scratch, then
    converted like every other technique. Returns the distilled float model too (quantizable,
    so quantization-aware training can start from it)."""
    from pediatric_emotion.modeling.architectures import build_classifier
    from pediatric_emotion.modeling.distillation import distill
    from pediatric_emotion.pipelines.optimization.distillation import (
        distillation_settings,
        teacher_logits_of,
    )

    context = cell_context(cell, **inputs)
    settings = distillation_settings(context.optimization)
    teacher = teacher_logits_of(
        teacher_logits, context.train, context.emotions, f"{context.name} {technique}"
    )
    fine_tuning = context.fine_tuning

    def start() -> Any:
        if settings["student_start"] == "trained":
            return quantizable_copy(context, model)
        fresh = build_classifier(
            context.architecture,
            image_size=context.image_size,
            num_classes=len(context.emotions),
            weights=None,
            dropout=float(context.settings.get("dropout", 0.0)),
        )
        return quantizable_copy(context, fresh)

    def train(student: Any) -> Any:
        return distill(
            student,
            context.train,
            context.crops_root,
            teacher,
            architecture=context.architecture,
            settings=context.settings,
            num_classes=len(context.emotions),
            alpha=float(settings["alpha"]),
            temperature=float(settings["temperature"]),
            epochs=int(settings["epochs"] or fine_tuning.get("epochs", 1)),
            max_steps_per_epoch=settings["max_steps_per_epoch"] or context.max_fine_tuning_steps,
            learning_rate=float(
                settings["learning_rate"] or fine_tuning.get("learning_rate", 1e-4)
            ),
            run_eagerly=bool(fine_tuning.get("run_eagerly", False)),
        )

    try:
        student = attempt(context, technique, "building the student", start)
        distilled = attempt(context, technique, "distilling", lambda: train(student))
    except TechniqueStoppedError as stop:
        return no_model(context, technique, stop.status, stop.reason)
    files, rows = tflite_files(context, distilled, technique)
    return distilled, files, rows
