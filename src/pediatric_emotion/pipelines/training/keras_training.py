"""The Keras part of training: devices, the validation monitor, one- or two-phase fitting.

Imported lazily by ``nodes.train_classifier`` (it imports TensorFlow).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras as keras
from sklearn.metrics import balanced_accuracy_score

from pediatric_emotion.modeling.architectures import (
    build_classifier,
    resolve_weights,
    set_base_trainable,
    uncompiled_copy,
)
from pediatric_emotion.modeling.inputs import crop_stream, training_batches
from pediatric_emotion.modeling.optimizers import DEFAULT_OPTIMIZER, adam, current_learning_rate

logger = logging.getLogger(__name__)


@contextmanager
def device_strategy(settings: Mapping[str, Any]):
    """Mixed precision and a distribution strategy as configured (``auto``: by visible GPUs).

    Yields the strategy; restores the float32 policy afterwards so one cell never leaks its
    precision into the next.
    """
    gpus = tf.config.list_physical_devices("GPU")
    mixed = settings.get("mixed_precision", "auto")
    mixed = bool(gpus) if mixed == "auto" else bool(mixed)
    distribute = settings.get("distribute", "auto")
    distribute = len(gpus) > 1 if distribute == "auto" else bool(distribute)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    strategy = tf.distribute.MirroredStrategy() if distribute else tf.distribute.get_strategy()
    logger.info(
        "Devices: %d GPU(s), mixed precision %s, %s",
        len(gpus),
        "on" if mixed else "off",
        type(strategy).__name__,
    )
    try:
        yield strategy
    finally:
        keras.mixed_precision.set_global_policy(previous)


class ValidationMonitor(keras.callbacks.Callback):
    """Validation loss, accuracy and balanced accuracy at the end of every epoch, in one pass;
    keeps the best weights by balanced accuracy; stops after ``patience`` epochs without a gain
    of ``min_delta`` when ``early_stopping`` is on, never before epoch ``start_epoch`` of a phase
    (from scratch, models sit near chance for a few epochs before they take off)."""

    def __init__(
        self,
        dataset: tf.data.Dataset,
        labels: np.ndarray,
        *,
        patience: int,
        min_delta: float,
        start_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.dataset, self.labels = dataset, labels
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.start_epoch = int(start_epoch)
        self.early_stopping = False
        self.best_score, self.best_epoch, self.best_weights = -math.inf, 0, None
        self.waited = 0
        self.epoch_offset, self.phase = 0, ""
        self.rows: list[dict[str, Any]] = []

    def start_phase(self, phase: str, early_stopping: bool) -> None:
        self.phase, self.early_stopping, self.waited = phase, early_stopping, 0
        self.epoch_offset = len(self.rows)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        logs = dict(logs or {})
        probabilities = self.model.predict(self.dataset, verbose=0).astype(np.float64)
        picked = probabilities[np.arange(len(self.labels)), self.labels]
        score = float(balanced_accuracy_score(self.labels, probabilities.argmax(axis=1)))
        row = {
            "epoch": self.epoch_offset + epoch + 1,
            "phase": self.phase,
            "loss": float(logs.get("loss", np.nan)),
            "accuracy": float(logs.get("accuracy", np.nan)),
            "val_loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
            "val_accuracy": float((probabilities.argmax(axis=1) == self.labels).mean()),
            "val_balanced_accuracy": score,
            "learning_rate": current_learning_rate(self.model.optimizer),
        }
        self.rows.append(row)
        logger.info(
            "epoch %d (%s): loss %.3f, val loss %.3f, val accuracy %.3f, "
            "val balanced accuracy %.3f",
            row["epoch"],
            self.phase,
            row["loss"],
            row["val_loss"],
            row["val_accuracy"],
            score,
        )
        if score > self.best_score + self.min_delta or self.best_weights is None:
            self.best_score, self.best_epoch = score, row["epoch"]
            self.best_weights = self.model.get_weights()
            self.waited = 0
        else:
            self.waited += 1
            if (
                self.early_stopping
                and self.waited >= self.patience
                and epoch + 1 >= self.start_epoch
            ):
                logger.info(
                    "Early stop: no better val balanced accuracy for %d epochs", self.waited
                )
                self.model.stop_training = True


def set_batch_norm_momentum(model: keras.Model, momentum: float) -> None:
    """Set every BatchNormalization layer's moving-average momentum. keras.applications use
    0.999, tuned for fine-tuning; from scratch on a few hundred steps the moving statistics would
    barely move and validation (inference mode) would see near-initial statistics."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def learning_rate_schedule(
    peak: float, schedule: Mapping[str, Any] | None, *, steps_per_epoch: int, epochs: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate of one phase: ``peak``, after an optional linear warm-up from ``peak *
    warmup_start`` over ``warmup_epochs``, then ``decay: constant`` or ``cosine`` (to ``peak *
    final_fraction`` at the phase's last step). From scratch, a warm-up keeps the first large
    Adam steps from pushing a freshly initialized network where it does not learn for epochs."""
    schedule = dict(schedule or {})
    decay = str(schedule.get("decay", "constant"))
    if decay not in ("constant", "cosine"):
        raise ValueError(f"training.learning_rate_schedule.decay: {decay!r} (constant | cosine)")
    total = max(1, int(steps_per_epoch) * int(epochs))
    warmup = min(total - 1, round(float(schedule.get("warmup_epochs", 0)) * steps_per_epoch))
    if decay == "constant" and warmup <= 0:
        return peak
    return keras.optimizers.schedules.CosineDecay(  # alpha 1: constant after the warm-up
        initial_learning_rate=peak * float(schedule.get("warmup_start", 0.1)) if warmup else peak,
        decay_steps=total - warmup,
        alpha=1.0 if decay == "constant" else float(schedule.get("final_fraction", 0.0)),
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


def _phases(settings: Mapping[str, Any], pretrained: bool) -> list[dict[str, Any]]:
    if pretrained:
        return [
            {"name": "head", "epochs": int(settings["head_epochs"]), "base_trainable": False,
             "learning_rate": float(settings["learning_rate"]), "early_stopping": False},
            {"name": "fine_tune", "epochs": int(settings["fine_tune_epochs"]),
             "base_trainable": True, "learning_rate": float(settings["fine_tune_learning_rate"]),
             "early_stopping": True,
             "train_batch_norm": bool(settings.get("fine_tune_batch_norm", True))},
        ]  # fmt: skip
    return [
        {"name": "scratch", "epochs": int(settings["epochs"]), "base_trainable": True,
         "learning_rate": float(settings["learning_rate"]), "early_stopping": True},
    ]  # fmt: skip


def fit_classifier(
    examples: pd.DataFrame,
    crops_root: Path,
    architecture: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    num_classes: int,
    cell: str = "",
) -> tuple[keras.Model, dict[str, list], dict[str, Any]]:
    """Train a classifier on the train rows of ``examples``, select it on the val rows.

    Returns the model with the best validation balanced accuracy, the per-epoch history and a
    summary (params, epochs, best epoch and score, seconds, images per second).
    """
    keras.utils.set_random_seed(int(settings["seed"]))
    train = examples[examples["split"] == "train"]
    val = examples[examples["split"] == "val"]
    image_size = int(settings["image_size"])
    val_labels = val["label"].to_numpy()
    batch_size = int(settings["batch_size"])
    train_data, steps, fit_weights = training_batches(
        train,
        crops_root,
        architecture=architecture,
        settings=settings,
        num_classes=num_classes,
        max_steps_per_epoch=settings.get("max_steps_per_epoch"),
    )
    val_data = crop_stream(
        val,
        crops_root,
        architecture=architecture,
        settings=settings,
        num_classes=num_classes,
        training=False,
        cache=settings.get("cache"),
    )
    weights_file = resolve_weights(
        architecture,
        settings.get("weights"),
        source=cell,
        image_size=image_size,
        offline=bool(settings.get("offline", False)),
    )
    early = settings.get("early_stopping") or {}
    monitor = ValidationMonitor(
        val_data,
        val_labels,
        patience=int(early.get("patience", 1_000_000)),
        min_delta=float(early.get("min_delta", 0.0)),
        start_epoch=int(early.get("start_epoch", 0)),
    )
    with device_strategy(settings) as strategy:
        with strategy.scope():
            model = build_classifier(
                architecture,
                image_size=image_size,
                num_classes=num_classes,
                weights=weights_file,
                dropout=float(settings.get("dropout", 0.0)),
            )
        momentum = settings.get("batch_norm_momentum")
        if momentum is not None and weights_file is None:
            set_batch_norm_momentum(model, float(momentum))
        started = time.perf_counter()
        images_seen = 0
        for phase in _phases(settings, pretrained=weights_file is not None):
            if phase["epochs"] <= 0:
                continue
            set_base_trainable(
                model,
                phase["base_trainable"],
                train_batchnorm=phase.get("train_batch_norm", True),
            )
            with strategy.scope():
                model.compile(
                    optimizer=adam(
                        learning_rate_schedule(
                            phase["learning_rate"],
                            settings.get("learning_rate_schedule"),
                            steps_per_epoch=steps,
                            epochs=phase["epochs"],
                        ),
                        implementation=str(settings.get("optimizer", DEFAULT_OPTIMIZER)),
                    ),
                    loss=keras.losses.SparseCategoricalCrossentropy(),
                    metrics=["accuracy"],
                )
            monitor.start_phase(phase["name"], phase["early_stopping"])
            run = model.fit(
                train_data,
                epochs=phase["epochs"],
                steps_per_epoch=steps,
                class_weight=fit_weights,
                callbacks=[monitor],
                verbose=1 if sys.stdout.isatty() else 0,
            )
            images_seen += len(run.history.get("loss", [])) * steps * batch_size
        seconds = time.perf_counter() - started
    model.set_weights(monitor.best_weights)
    model = uncompiled_copy(model)
    history = pd.DataFrame(monitor.rows).to_dict("list")
    summary = {
        "weights": "scratch" if weights_file is None else Path(weights_file).name,
        "image_size": image_size,
        "params": int(model.count_params()),
        "train_images": len(train),
        "val_images": len(val),
        "epochs": len(monitor.rows),
        "best_epoch": monitor.best_epoch,
        "best_val_balanced_accuracy": round(monitor.best_score, 4),
        "train_seconds": round(seconds, 1),
        "images_per_second": round(images_seen / seconds, 1) if seconds else None,
    }
    logger.info(
        "Best val balanced accuracy %.3f at epoch %d", monitor.best_score, monitor.best_epoch
    )
    return model, history, summary
