"""Knowledge distillation (Hinton, Vinyals & Dean 2015) into a grid model, from cached teacher
logits.

The loss of one image with label ``y``, student logits ``s`` and teacher logits ``t``:

    alpha * CE(y, softmax(s)) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

The teacher's logits are computed once per train image (``teacher_logits``, on the clean crop)
and travel to the loss through the image's row number: the training stream's label is the row
number, and the loss looks up the row's label, class weight and teacher logits in a constant
table, so augmentation, shuffling and class-balanced sampling are training's own
(:func:`pediatric_emotion.modeling.inputs.make_dataset`) and the teacher never runs again.

Grid models end in a float32 softmax layer (``head_softmax``); the student trains through a view
of the same layers that stops before it (its logits), so the model that is saved and converted
keeps its softmax output.

Imported lazily (it imports TensorFlow).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras as keras

from pediatric_emotion.harmonized_crops import crop_paths
from pediatric_emotion.modeling.inputs import (
    Preprocessing,
    class_weights,
    crop_stream,
    make_dataset,
    steps_per_epoch,
)
from pediatric_emotion.modeling.optimizers import DEFAULT_OPTIMIZER, adam

logger = logging.getLogger(__name__)


def check_distillation(alpha: float, temperature: float) -> tuple[float, float]:
    """``alpha`` in [0, 1] and ``temperature`` > 0 as floats, else a ValueError naming them."""
    alpha, temperature = float(alpha), float(temperature)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"optimization.distillation.alpha: {alpha} is outside [0, 1]")
    if temperature <= 0.0:
        raise ValueError(f"optimization.distillation.temperature: {temperature} must be > 0")
    return alpha, temperature


def hinton_loss(
    labels: tf.Tensor,
    student_logits: tf.Tensor,
    teacher_logits: tf.Tensor,
    *,
    alpha: float,
    temperature: float,
) -> tf.Tensor:
    """The per-image distillation loss (module docstring); ``labels`` integer classes."""
    student_logits = tf.cast(student_logits, tf.float32)
    teacher_logits = tf.cast(teacher_logits, tf.float32)
    hard = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=student_logits
    )
    if alpha >= 1.0:
        return hard
    soft_teacher = tf.nn.softmax(teacher_logits / temperature)
    log_teacher = tf.nn.log_softmax(teacher_logits / temperature)
    log_student = tf.nn.log_softmax(student_logits / temperature)
    divergence = tf.reduce_sum(soft_teacher * (log_teacher - log_student), axis=-1)
    return alpha * hard + (1.0 - alpha) * temperature**2 * divergence


class DistillationLoss(keras.losses.Loss):
    """``hinton_loss`` for a stream whose labels are row numbers of ``table``: each row holds the
    image's class, its class weight and its teacher logits (``distillation_table``)."""

    def __init__(self, table: np.ndarray, *, alpha: float, temperature: float) -> None:
        super().__init__(name="distillation")
        self.table = tf.constant(np.asarray(table, dtype=np.float32))
        self.alpha, self.temperature = check_distillation(alpha, temperature)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        rows = tf.gather(self.table, tf.reshape(tf.cast(y_true, tf.int32), [-1]))
        labels, weights, teacher = rows[:, 0], rows[:, 1], rows[:, 2:]
        loss = hinton_loss(labels, y_pred, teacher, alpha=self.alpha, temperature=self.temperature)
        return loss * weights


def distillation_table(
    labels: np.ndarray, teacher: np.ndarray, weights: Mapping[int, float] | None
) -> np.ndarray:
    """Rows of ``[label, class weight, teacher logits...]`` (weight 1 without class weights)."""
    labels = np.asarray(labels, dtype=np.int64)
    teacher = np.asarray(teacher, dtype=np.float32)
    if teacher.ndim != 2 or len(teacher) != len(labels):
        raise ValueError(f"teacher logits of shape {teacher.shape} for {len(labels)} images")
    per_image = (
        np.ones(len(labels)) if weights is None else np.array([weights[int(c)] for c in labels])
    )
    return np.column_stack([labels, per_image, teacher]).astype(np.float32)


def logits_model(model: keras.Model) -> keras.Model:
    """A view of ``model`` (same layers, same weights) that outputs the input of its final softmax
    layer: the logits. A model whose last layer is no softmax is refused, naming it."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    if not isinstance(last, keras.layers.Activation) or activation is not keras.activations.softmax:
        raise ValueError(
            f"{model.name}: its last layer {last.name!r} ({type(last).__name__}) is not a softmax "
            "activation layer; distillation needs the logits before it"
        )
    return keras.Model(model.inputs, last.input, name=f"{model.name}_logits")


def predicted_logits(
    model: keras.Model,
    rows: pd.DataFrame,
    crops_root: str | Path,
    *,
    architecture: Mapping[str, Any],
    settings: Mapping[str, Any],
    num_classes: int,
    batch_size: int = 64,
) -> np.ndarray:
    """``model``'s logits [images, classes] on the clean crops of ``rows`` (row order), with the
    preprocessing and image size of its own architecture and settings."""
    data = crop_stream(
        rows,
        crops_root,
        architecture=architecture,
        settings=settings,
        num_classes=num_classes,
        training=False,
        cache="none",
        batch_size=batch_size,
    )
    return np.asarray(logits_model(model).predict(data, verbose=0), dtype=np.float32)


def ensemble_logits(member_logits: list[np.ndarray]) -> np.ndarray:
    """The logits of an ensemble that averages its members' probabilities: log of the mean
    softmax (softmax of it is that mean)."""
    probabilities = np.mean([tf.nn.softmax(m).numpy() for m in member_logits], axis=0)
    return np.log(np.maximum(probabilities, 1e-12)).astype(np.float32)


def distill(
    student: keras.Model,
    train: pd.DataFrame,
    crops_root: str | Path,
    teacher: np.ndarray,
    *,
    architecture: Mapping[str, Any],
    settings: Mapping[str, Any],
    num_classes: int,
    alpha: float,
    temperature: float,
    epochs: int,
    max_steps_per_epoch: int | None,
    learning_rate: float,
    run_eagerly: bool = False,
) -> keras.Model:
    """Train ``student`` (in place; returned) on the ``train`` rows with the Hinton loss against
    ``teacher`` (logits in row order), on training's augmented, shuffled, class-balanced stream."""
    alpha, temperature = check_distillation(alpha, temperature)
    labels = train["label"].to_numpy()
    balance = str(settings.get("class_balance", "none"))
    weights = class_weights(labels, num_classes) if balance == "weights" else None
    table = distillation_table(labels, teacher, weights)
    batch_size = int(settings["batch_size"])
    data = make_dataset(
        crop_paths(crops_root, train),
        np.arange(len(train)),  # row numbers: the loss looks the row up in `table`
        preprocessing=Preprocessing.from_config(architecture, int(settings["image_size"])),
        batch_size=batch_size,
        training=True,
        augmentation=settings.get("augmentation"),
        class_balance="sampling" if balance == "sampling" else "none",
        num_classes=len(train),
        strata=labels,
        seed=int(settings.get("seed", 0)),
        cache=settings.get("cache"),
    ).repeat()
    steps = steps_per_epoch(len(train), batch_size, max_steps_per_epoch)
    if epochs <= 0 or steps <= 0:
        return student
    trainable = logits_model(student)
    trainable.compile(
        optimizer=adam(
            float(learning_rate), implementation=str(settings.get("optimizer", DEFAULT_OPTIMIZER))
        ),
        loss=DistillationLoss(table, alpha=alpha, temperature=temperature),
        run_eagerly=bool(run_eagerly),
    )
    logger.info(
        "Distilling into %s: %d images, alpha %.2f, T %.1f, %d epoch(s) of %d steps",
        student.name,
        len(train),
        alpha,
        temperature,
        epochs,
        steps,
    )
    trainable.fit(
        data,
        epochs=int(epochs),
        steps_per_epoch=steps,
        verbose=1 if sys.stdout.isatty() else 0,
    )
    return student
