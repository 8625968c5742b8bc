"""Optimization nodes: one per technique of one ``{arch}.{variant}`` cell, and the summary.

Every technique node starts from the trained float model (or from the pruned / clustered model
for the collaborative schemes), fine-tunes where the technique trains, and writes its TFLite files
(one per configured quantization) with their specs. Every file's row has a status: ``ok``;
``unsupported`` where the technique truly cannot apply (tfmot refuses a layer type, or the
settings leave it nothing to do), with the reason; ``failed`` where an exception was raised in
wrapping, fine-tuning or conversion (a defect to fix, named in the log with its traceback and in
the row); ``skipped`` where the model a technique starts from was not made (its own row says
why). The run goes on either way.

TensorFlow is imported inside the nodes only, so the registry starts without it.
"""

from __future__ import annotations

import gzip
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pediatric_emotion.datasets import FileTree, TFLiteModel, embed_spec
from pediatric_emotion.harmonized_crops import check_crops_match
from pediatric_emotion.pipelines.training.nodes import cell_settings

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = [
    "architecture",
    "variant",
    "technique",
    "quantization",
    "tflite_path",
    "size_bytes",
    "gzip_bytes",
    "size_vs_baseline_float32",
    "gzip_vs_baseline_float32",
    "sparsity",
    "max_unique_per_channel",
    "weight_dtypes",
    "input_dtype",
    "status",
    "reason",
    "seconds",
]
# Weights tfmot prunes and clusters: Conv2D kernels (SeparableConv2D's pointwise ones included)
# and Dense kernels become these TFLite ops; depthwise kernels are left alone.
COMPRESSED_OPS = ("CONV_2D", "FULLY_CONNECTED")
PRESERVE = {"qat": None, "pqat": "sparsity", "cqat": "clusters", "pcqat": "sparsity_and_clusters"}


@dataclass
class _Cell:
    """Everything one cell's technique nodes share: data, settings, where files go."""

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
        return f"{self.architecture_name}.{self.variant_name}"

    def quantizations(self, technique: str) -> list[str]:
        configured = (self.optimization.get("quantizations") or {}).get(technique)
        if not configured:
            raise ValueError(f"optimization.quantizations.{technique} lists no quantization")
        return list(configured)

    def train_data(self) -> tuple[Any, int, dict[int, float] | None]:
        """The fine-tuning stream (augmented, repeating), its steps per epoch, class weights."""
        from pediatric_emotion.modeling.inputs import (
            Preprocessing,
            class_weights,
            make_dataset,
            steps_per_epoch,
        )

        train = self.examples[self.examples["split"] == "train"]
        settings = self.settings
        batch_size = int(settings["batch_size"])
        balance = str(settings.get("class_balance", "none"))
        data = make_dataset(
            [str(self.crops_root / path) for path in train["crop_path"]],
            train["label"].to_numpy(),
            preprocessing=Preprocessing.from_config(self.architecture, self.image_size),
            batch_size=batch_size,
            training=True,
            augmentation=settings.get("augmentation"),
            class_balance=balance,
            num_classes=len(self.emotions),
            seed=int(settings["seed"]),
            cache=settings.get("cache"),
        ).repeat()
        steps = steps_per_epoch(len(train), batch_size)
        fine_tuning = self.optimization.get("fine_tuning") or {}
        cap = fine_tuning.get("max_steps_per_epoch") or settings.get("max_steps_per_epoch")
        if cap:
            steps = min(steps, int(cap))
        weights = (
            class_weights(train["label"].to_numpy(), len(self.emotions))
            if balance == "weights"
            else None
        )
        return data, steps, weights

    @property
    def image_size(self) -> int:
        return int(self.settings["image_size"])

    def representative_images(self) -> Any:
        """Model-ready train images for int8 calibration: a seeded sample of the train split."""
        from pediatric_emotion.modeling.inputs import Preprocessing, as_arrays, make_dataset

        train = self.examples[self.examples["split"] == "train"]
        count = min(int(self.optimization.get("representative_images", 100)), len(train))
        sample = train.sample(n=count, random_state=int(self.settings["seed"]))
        data = make_dataset(
            [str(self.crops_root / path) for path in sample["crop_path"]],
            None,
            preprocessing=Preprocessing.from_config(self.architecture, self.image_size),
            batch_size=32,
            training=False,
            num_classes=len(self.emotions),
            cache="none",
        )
        return as_arrays(data)

    def fine_tune(self, model: Any, callbacks: list | None = None) -> Any:
        """A few epochs of training at the fine-tuning learning rate."""
        from pediatric_emotion.modeling.compression import fine_tune
        from pediatric_emotion.modeling.optimizers import DEFAULT_OPTIMIZER

        fine_tuning = self.optimization.get("fine_tuning") or {}
        data, steps, weights = self.train_data()
        return fine_tune(
            model,
            data,
            epochs=int(fine_tuning.get("epochs", 1)),
            steps_per_epoch=steps,
            learning_rate=float(fine_tuning.get("learning_rate", 1e-4)),
            class_weight=weights,
            callbacks=callbacks,
            run_eagerly=bool(fine_tuning.get("run_eagerly", False)),
            optimizer=str(self.settings.get("optimizer", DEFAULT_OPTIMIZER)),
        )

    def quantizable_copy(self, model: Any) -> Any:
        """The float model rebuilt with layers tfmot can quantize (same computation)."""
        from pediatric_emotion.modeling.quantizable import quantizable_twin

        return quantizable_twin(
            model, self.architecture, image_size=self.image_size, num_classes=len(self.emotions)
        )


def _cell(
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
) -> _Cell:
    name = f"{cell['architecture']}.{cell['variant']}"
    check_crops_match(examples, face_crops.root, f"{name}.training_examples")
    return _Cell(
        architecture_name=cell["architecture"],
        variant_name=cell["variant"],
        architecture=architecture,
        settings=cell_settings(training, architecture, variant),
        optimization=optimization,
        emotions=list(emotions),
        face_crop=face_crop,
        examples=examples,
        crops_root=face_crops.root,
    )


def _tflite_files(
    cell: _Cell,
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
        row = _row(cell, technique, quantization)
        try:
            if quantization == "int8" and representative is None:
                representative = cell.representative_images()
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
            rows.append({**row, "status": "failed", "reason": _reason(err, "conversion")})
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


def _row(cell: _Cell, technique: str, quantization: str) -> dict[str, Any]:
    return {
        "architecture": cell.architecture_name,
        "variant": cell.variant_name,
        "technique": technique,
        "quantization": quantization,
    }


# What tfmot says when a layer type is outside what a technique supports (prune_registry,
# clustering_registry, the 8-bit quantize registry and their wrappers): a real limit.
_REFUSAL = re.compile(r"not (yet )?supported|unsupported layer|with a supported layer", re.I)
# Absolute paths of installed packages in messages (the converter's op locations): dropped.
_PACKAGE_PATH = re.compile(r"[^\s\"'(\[]*/(?:site|dist)-packages/")


def _reason(err: BaseException, stage: str = "") -> str:
    """One line for the table (the full traceback goes to the log): the stage, the error's type
    and message, without the interpreter's own paths."""
    text = _PACKAGE_PATH.sub("", " ".join(str(err).split()))
    return f"{stage + ': ' if stage else ''}{type(err).__name__}: {text[:1000]}"


def _not_made(
    cell: _Cell, technique: str, status: str, reason: str
) -> tuple[dict[str, TFLiteModel], list[dict[str, Any]]]:
    """No files for ``technique``: one row per configured quantization with ``status``."""
    log = logger.error if status == "failed" else logger.warning
    log("%s %s: %s: %s", cell.name, technique, status, reason)
    rows = [
        {**_row(cell, technique, q), "status": status, "reason": reason}
        for q in cell.quantizations(technique)
    ]
    return {}, rows


def _no_model(
    cell: _Cell, technique: str, status: str, reason: str
) -> tuple[Any, dict[str, TFLiteModel], list[dict[str, Any]]]:
    """A pruning / clustering node's outputs when it made no model: ``NoModel`` (Kedro saves no
    None; the catalog's dataset removes the file) and the rows saying why."""
    from pediatric_emotion.datasets.models import NoModel

    return NoModel(reason), *_not_made(cell, technique, status, reason)


class _TechniqueStoppedError(Exception):
    """A technique stopped: ``status`` (unsupported | failed) and ``reason`` for its rows."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _attempt(
    cell: _Cell, technique: str, stage: str, run: Callable[[], Any], *, may_refuse: bool = False
) -> Any:
    """Run one stage of a technique (wrapping, fine-tuning, stripping). An exception becomes
    ``_TechniqueStoppedError``: ``unsupported`` where ``may_refuse`` (a tfmot wrapper) and the
    message is tfmot's refusal of a layer, else ``failed``."""
    try:
        return run()
    except Exception as err:
        status = "unsupported" if may_refuse and _REFUSAL.search(str(err)) else "failed"
        log = logger.error if status == "failed" else logger.warning
        log("%s %s: %s %s", cell.name, technique, stage, status, exc_info=err)
        raise _TechniqueStoppedError(status, _reason(err, stage)) from err


def _clustering(context: _Cell, model: Any, *, preserve_sparsity: bool) -> Any:
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
    *, model: Any, cell: Mapping[str, str], **inputs: Any
) -> tuple[dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Post-training quantization of the trained model: every configured quantization (of its
    float32 copy, where it was trained under mixed precision)."""
    from pediatric_emotion.modeling.architectures import float32_copy

    context = _cell(cell, **inputs)
    return _tflite_files(context, float32_copy(model), "baseline")


def prune_classifier(
    *, model: Any, cell: Mapping[str, str], **inputs: Any
) -> tuple[Any, dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Magnitude pruning to the configured sparsity, fine-tuned, stripped, converted. Returns the
    stripped float model too (PQAT and PCQAT start from it); ``NoModel`` where none was made."""
    import tensorflow_model_optimization as tfmot

    from pediatric_emotion.modeling.compression import pruning_wrapped, strip

    context = _cell(cell, **inputs)
    pruning = context.optimization.get("pruning") or {}
    frequency = int(pruning.get("frequency", 100))
    _, steps, _ = context.train_data()
    epochs = int((context.optimization.get("fine_tuning") or {}).get("epochs", 1))
    total = max(1, steps * epochs)
    # Reach the target on a mask update: the last multiple of `frequency` within end_fraction.
    end_step = int(total * float(pruning.get("end_fraction", 0.7))) // frequency * frequency
    end_step = max(end_step, frequency)
    if end_step > total:
        return _no_model(
            context,
            "pruned",
            "unsupported",
            f"pruning.frequency {frequency} exceeds the {total} fine-tuning steps: the mask "
            "would never be updated",
        )
    try:
        wrapped = _attempt(
            context,
            "pruned",
            "wrapping",
            lambda: pruning_wrapped(
                context.quantizable_copy(model),
                sparsity=float(pruning.get("sparsity", 0.5)),
                end_step=end_step,
                frequency=frequency,
            ),
            may_refuse=True,
        )
        _attempt(
            context,
            "pruned",
            "fine-tuning",
            lambda: context.fine_tune(
                wrapped, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
            ),
        )
        pruned = _attempt(context, "pruned", "stripping", lambda: strip(wrapped))
    except _TechniqueStoppedError as stop:
        return _no_model(context, "pruned", stop.status, stop.reason)
    files, rows = _tflite_files(context, pruned, "pruned")
    return pruned, files, rows


def cluster_classifier(
    *, model: Any, cell: Mapping[str, str], **inputs: Any
) -> tuple[Any, dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Weight clustering (the configured number of clusters per kernel), fine-tuned, stripped,
    converted. Returns the stripped float model too (CQAT starts from it); ``NoModel`` where none
    was made."""
    from pediatric_emotion.modeling.compression import strip

    context = _cell(cell, **inputs)
    try:
        wrapped = _attempt(
            context,
            "clustered",
            "wrapping",
            lambda: _clustering(context, context.quantizable_copy(model), preserve_sparsity=False),
            may_refuse=True,
        )
        _attempt(context, "clustered", "fine-tuning", lambda: context.fine_tune(wrapped))
        clustered = _attempt(context, "clustered", "stripping", lambda: strip(wrapped))
    except _TechniqueStoppedError as stop:
        return _no_model(context, "clustered", stop.status, stop.reason)
    files, rows = _tflite_files(context, clustered, "clustered")
    return clustered, files, rows


def train_quantization_aware(
    *, model: Any, cell: Mapping[str, str], technique: str, **inputs: Any
) -> tuple[dict[str, TFLiteModel], list[dict[str, Any]]]:
    """Quantization-aware training, then int8: ``qat`` from the trained model, ``pqat`` from the
    pruned one (zeros kept), ``cqat`` from the clustered one (clusters kept), ``pcqat`` from the
    pruned one clustered with its zeros kept (both kept)."""
    from pediatric_emotion.modeling.architectures import float32_copy
    from pediatric_emotion.modeling.compression import quantization_aware, strip

    if technique not in PRESERVE:
        raise ValueError(f"technique must be one of {sorted(PRESERVE)}, got {technique!r}")
    context = _cell(cell, **inputs)
    if model is None:  # no start model on file (NoModel was saved): its own row says why
        source = {"pqat": "pruned", "cqat": "clustered", "pcqat": "pruned"}[technique]
        return _not_made(
            context, technique, "skipped", f"no {source} model to start from (see the {source} row)"
        )
    try:
        start = _attempt(
            context,
            technique,
            "copying",
            lambda: (
                # the start model as it is when float32: wrapping clones it (a copy of
                # NASNetMobile's graph costs 3 s)
                context.quantizable_copy(model) if technique == "qat" else float32_copy(model)
            ),
        )
        if technique == "pcqat":
            wrapped = _attempt(
                context,
                technique,
                "clustering",
                lambda: _clustering(context, start, preserve_sparsity=True),
                may_refuse=True,
            )
            _attempt(
                context, technique, "fine-tuning the clusters", lambda: context.fine_tune(wrapped)
            )
            start = _attempt(context, technique, "stripping", lambda: strip(wrapped))
        calibration = context.representative_images()
        quantized = _attempt(
            context,
            technique,
            "wrapping",
            lambda: quantization_aware(
                start, preserve=PRESERVE[technique], calibration_images=calibration
            ),
            may_refuse=True,
        )
        _attempt(context, technique, "fine-tuning", lambda: context.fine_tune(quantized))
    except _TechniqueStoppedError as stop:
        return _not_made(context, technique, stop.status, stop.reason)
    return _tflite_files(context, quantized, technique, quantization_aware=True)


def summarize_optimization(**reports: list[dict[str, Any]] | None) -> pd.DataFrame:
    """One table of every file of every cell, with sizes relative to the cell's float32 baseline.

    ``reports``: ``"{arch}.{variant}.{technique}"`` -> that node's report rows, or None where the
    node has not run yet (its report file is absent): one ``not_run`` row says so, and how to run
    it, so a partial run still gives the whole grid's table."""
    rows: list[dict[str, Any]] = []
    missing = []
    for key, report in reports.items():
        if report is not None:
            rows.extend(report)
            continue
        arch, variant, technique = key.rsplit(".", 2)  # grid names hold no '.' (grid.py)
        missing.append(key)
        rows.append(
            {
                "architecture": arch,
                "variant": variant,
                "technique": technique,
                "status": "not_run",
                "reason": "no report yet: kedro run --pipelines=optimization "
                f"--namespaces={arch}.{variant}",
            }
        )
    if missing:
        logger.warning("optimization_summary: %d technique(s) not run yet: %s", len(missing),
                       ", ".join(missing))  # fmt: skip
    table = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    baseline = table[(table["technique"] == "baseline") & (table["quantization"] == "float32")]
    reference = baseline.set_index(["architecture", "variant"])[["size_bytes", "gzip_bytes"]]
    keys = pd.MultiIndex.from_frame(table[["architecture", "variant"]])
    for column, base in (("size", "size_bytes"), ("gzip", "gzip_bytes")):
        reference_values = reference[base].reindex(keys).to_numpy(dtype="float64")
        table[f"{column}_vs_baseline_float32"] = (
            table[base].to_numpy(dtype="float64") / reference_values
        ).round(3)
    table["status"] = table["status"].fillna("ok")
    failed = table[table["status"] == "failed"]
    if len(failed):
        logger.error(
            "optimization_summary: %d file(s) failed (a defect, not a limit; the log above holds "
            "each traceback): %s",
            len(failed),
            ", ".join(
                f"{r.architecture}.{r.variant} {r.technique} {r.quantization}"
                for r in failed.itertuples()
            ),
        )
    return table
