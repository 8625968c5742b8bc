"""Knowledge distillation: the Hinton loss (alpha = 1 is plain cross-entropy), the teacher's
logits computed once per image and cached, and on a tiny problem a student distilled from a
strong teacher agrees with it more than the same student trained on the labels alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras as keras
from PIL import Image

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.modeling.distillation import (
    DistillationLoss,
    distill,
    distillation_table,
    ensemble_logits,
    hinton_loss,
    logits_model,
)
from pediatric_emotion.pipelines.optimization.distillation import (
    compute_teacher_logits,
    distillation_settings,
    teacher_logits_of,
)

EMOTIONS = ["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"]
SIZE = 16
ARCHITECTURE = {"input_scale": 1 / 127.5, "input_offset": -1.0}
SETTINGS = {"image_size": SIZE, "batch_size": 16, "seed": 0, "cache": "memory"}
# the teacher's rule: logits linear in the picture's mean colour (in [-1, 1])
TEACHER_WEIGHTS = np.random.default_rng(3).normal(size=(3, len(EMOTIONS))).astype(np.float32) * 4


def linear_classifier(name: str, weights: np.ndarray | None = None) -> keras.Model:
    """Mean colour -> 7 logits -> softmax: a grid model's head in miniature."""
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(len(EMOTIONS), name="logits")(pooled)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="head_softmax")(logits)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        model.get_layer("logits").set_weights([weights, np.zeros(len(EMOTIONS), np.float32)])
    return model


def test_with_alpha_one_the_loss_is_plain_cross_entropy():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 12)
    student = rng.normal(size=(12, 7)).astype(np.float32)
    teacher = rng.normal(size=(12, 7)).astype(np.float32)
    expected = keras.losses.sparse_categorical_crossentropy(labels, student, from_logits=True)
    ours = hinton_loss(labels, student, teacher, alpha=1.0, temperature=4.0)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-5)
    # through the Keras loss on row numbers, with the softmax model's probabilities as Keras
    # sees them: the same mean
    loss = DistillationLoss(distillation_table(labels, teacher, None), alpha=1.0, temperature=4.0)
    mean = loss(np.arange(12), student).numpy()
    probabilities = tf.nn.softmax(student)
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probabilities).numpy()
    assert mean == pytest.approx(plain, rel=1e-4)


def test_the_soft_term_is_t_squared_kl_and_vanishes_when_student_matches_teacher():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 5)
    teacher = rng.normal(size=(5, 7)).astype(np.float32)
    student = rng.normal(size=(5, 7)).astype(np.float32)
    same = hinton_loss(labels, teacher, teacher, alpha=0.0, temperature=3.0).numpy()
    np.testing.assert_allclose(same, 0.0, atol=1e-5)
    p = tf.nn.softmax(teacher / 3.0).numpy()
    q = tf.nn.softmax(student / 3.0).numpy()
    by_hand = 9.0 * (p * (np.log(p) - np.log(q))).sum(axis=1)
    ours = hinton_loss(labels, student, teacher, alpha=0.0, temperature=3.0).numpy()
    np.testing.assert_allclose(ours, by_hand, rtol=1e-4)
    weighted = DistillationLoss(
        distillation_table(labels, teacher, dict.fromkeys(range(7), 2.0)),
        alpha=0.0,
        temperature=3.0,
    )
    assert weighted(np.arange(5), student).numpy() == pytest.approx(2 * by_hand.mean(), rel=1e-4)


def test_bad_settings_and_models_are_refused_naming_them():
    with pytest.raises(ValueError, match="alpha"):
        DistillationLoss(np.zeros((1, 9)), alpha=1.5, temperature=2.0)
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(np.zeros((1, 9)), alpha=0.5, temperature=0.0)
    with pytest.raises(ValueError, match="optimization.distillation.teacher"):
        distillation_settings({"distillation": {"teacher": "oracle"}})
    with pytest.raises(ValueError, match=r"members: \['resnet'\]"):
        distillation_settings({"distillation": {"members": ["resnet"]}}, {"tiny": {}})
    with pytest.raises(ValueError, match="file_architecture"):
        distillation_settings({"distillation": {"teacher": "file", "file": "t.keras"}}, {"a": {}})
    with pytest.raises(ValueError, match="unknown keys"):
        distillation_settings({"distillation": {"temprature": 2}})
    inputs = keras.Input((4,))
    no_softmax = keras.Model(inputs, keras.layers.Dense(7)(inputs), name="plain")
    with pytest.raises(ValueError, match="plain.*not a softmax"):
        logits_model(no_softmax)


def test_the_logits_view_shares_the_models_weights():
    model = linear_classifier("m", TEACHER_WEIGHTS)
    view = logits_model(model)
    images = np.random.default_rng(0).uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(
        tf.nn.softmax(view(images)).numpy(), model(images).numpy(), rtol=1e-5, atol=1e-6
    )
    assert view.get_layer("logits") is model.get_layer("logits")


def test_an_ensemble_averages_its_members_probabilities():
    a, b = np.log([[0.7, 0.2, 0.1]]), np.log([[0.1, 0.2, 0.7]])
    np.testing.assert_allclose(
        tf.nn.softmax(ensemble_logits([a, b])).numpy(), [[0.4, 0.2, 0.4]], rtol=1e-5
    )


def pictures(root, count: int, seed: int, prefix: str) -> tuple[list[str], np.ndarray]:
    """``count`` flat-coloured pictures (a little noise) and the teacher's class of each."""
    rng = np.random.default_rng(seed)
    paths, colours = [], []
    for index in range(count):
        colour = rng.uniform(0, 255, 3)
        noise = rng.normal(0, 4, (SIZE, SIZE, 3))
        image = np.clip(colour + noise, 0, 255).astype(np.uint8)
        path = f"{prefix}{index:03d}.png"
        Image.fromarray(image).save(root / path)
        paths.append(path)
        colours.append(image.reshape(-1, 3).mean(axis=0) / 127.5 - 1.0)
    classes = (np.array(colours, dtype=np.float32) @ TEACHER_WEIGHTS).argmax(axis=1)
    return paths, classes


class CountImages(keras.layers.Layer):
    """Passes its input through and counts the images it saw."""

    def build(self, input_shape):
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros", trainable=False)

    def call(self, images):
        self.seen.assign_add(tf.cast(tf.shape(images)[0], tf.float32))
        return images


def test_the_teachers_logits_are_computed_once_per_image_and_cached(tmp_path):
    paths, classes = pictures(tmp_path, 30, seed=0, prefix="img")
    split = ["train"] * 18 + ["val"] * 6 + ["test"] * 6
    examples = pd.DataFrame({"crop_path": paths, "label": classes, "split": split})
    examples = examples[examples["split"] != "test"]
    manifest = pd.DataFrame(
        {
            "image_id": paths[24:],
            "crop_path": paths[24:],
            "role": "test",
            "emotion": [EMOTIONS[c] for c in classes[24:]],
        }
    )
    inputs = keras.Input((SIZE, SIZE, 3))
    counter = CountImages()
    pooled = keras.layers.GlobalAveragePooling2D()(counter(inputs))
    logits = keras.layers.Dense(7, name="logits")(pooled)
    teacher = keras.Model(inputs, keras.layers.Activation("softmax")(logits), name="teacher")
    teacher.get_layer("logits").set_weights([TEACHER_WEIGHTS, np.zeros(7, np.float32)])
    weaker = linear_classifier("weaker")
    table, record = compute_teacher_logits(
        variant_name="copy",
        examples=examples,
        face_manifest=manifest,
        face_crops=FileTree(tmp_path),
        architectures={"big": ARCHITECTURE, "small": ARCHITECTURE},
        variant={},
        training=SETTINGS,
        optimization={"distillation": {"teacher": "best_of_grid"}},
        evaluation={},
        emotions=EMOTIONS,
        big_model=teacher,
        big_training_metrics={"best_val_balanced_accuracy": 0.9},
        small_model=weaker,
        small_training_metrics={"best_val_balanced_accuracy": 0.3},
    )
    assert int(counter.seen.numpy()) == 30  # 18 train + 6 val + 6 test, each once
    assert record["teacher"] == "big.copy" and record["kind"] == "best_of_grid"
    assert record["images"] == len(table) == 18
    assert record["test_balanced_accuracy"] == pytest.approx(1.0)  # the rule that made the labels
    assert list(table.columns) == ["crop_path", *EMOTIONS]
    train = examples[examples["split"] == "train"]
    cached = teacher_logits_of(table, train.iloc[::-1], EMOTIONS, "copy")
    np.testing.assert_array_equal(cached.argmax(axis=1), train["label"].to_numpy()[::-1])
    with pytest.raises(ValueError, match="copy: 1 train image.*no teacher logits.*img000"):
        teacher_logits_of(table.iloc[1:], train, EMOTIONS, "copy")


def test_a_distilled_student_agrees_with_its_teacher_more_than_one_trained_on_labels(tmp_path):
    """Labels that are the teacher's class for a fifth of the pictures and random for the rest:
    the student trained on them alone learns less of the teacher's rule than the same student,
    from the same weights and for the same steps, distilled from the teacher."""
    paths, classes = pictures(tmp_path, 96, seed=1, prefix="train")
    noisy = np.where(
        np.random.default_rng(2).random(96) < 1 / 5,
        classes,
        np.random.default_rng(4).integers(0, 7, 96),
    )
    train = pd.DataFrame({"crop_path": paths, "label": noisy, "split": "train"})
    held_out, truth = pictures(tmp_path, 64, seed=5, prefix="held")
    teacher = linear_classifier("teacher", TEACHER_WEIGHTS)
    images = np.stack([np.asarray(Image.open(tmp_path / p), np.float32) for p in held_out])
    images = images / 127.5 - 1.0
    cached = logits_model(teacher).predict(
        np.stack([np.asarray(Image.open(tmp_path / p), np.float32) for p in paths]) / 127.5 - 1.0,
        verbose=0,
    )
    agreement = {}
    for alpha in (1.0, 0.1):
        keras.utils.set_random_seed(0)
        student = distill(
            linear_classifier(f"student_{alpha}"),
            train,
            tmp_path,
            cached,
            architecture=ARCHITECTURE,
            settings=SETTINGS,
            num_classes=7,
            alpha=alpha,
            temperature=2.0,
            epochs=12,
            max_steps_per_epoch=None,
            learning_rate=0.05,
        )
        agreement[alpha] = float(
            (student.predict(images, verbose=0).argmax(axis=1) == truth).mean()
        )
    assert agreement[0.1] > agreement[1.0] + 0.1, agreement


def small_copy(tmp_path) -> dict:
    """The inputs of a teacher node on 12 pictures: 6 train, 3 val, 3 test."""
    paths, classes = pictures(tmp_path, 12, seed=6, prefix="pic")
    split = ["train"] * 6 + ["val"] * 3 + ["test"] * 3
    frame = pd.DataFrame({"crop_path": paths, "label": classes, "split": split})
    return {
        "variant_name": "copy",
        "examples": frame[frame["split"] != "test"],
        "face_manifest": pd.DataFrame(
            {
                "image_id": paths[9:],
                "crop_path": paths[9:],
                "role": "test",
                "emotion": [EMOTIONS[c] for c in classes[9:]],
            }
        ),
        "face_crops": FileTree(tmp_path),
        "architectures": {"big": ARCHITECTURE, "small": ARCHITECTURE},
        "variant": {},
        "training": SETTINGS,
        "evaluation": {},
        "emotions": EMOTIONS,
    }


def test_an_ensemble_teacher_averages_its_members_and_a_file_teacher_is_read(tmp_path):
    inputs = small_copy(tmp_path)
    strong = linear_classifier("strong", TEACHER_WEIGHTS)
    opposite = linear_classifier("opposite", -TEACHER_WEIGHTS)
    members = {
        "big_model": strong,
        "big_training_metrics": {"best_val_balanced_accuracy": 0.9},
        "small_model": opposite,
        "small_training_metrics": {"best_val_balanced_accuracy": 0.1},
    }
    table, record = compute_teacher_logits(
        **inputs, optimization={"distillation": {"teacher": "ensemble"}}, **members
    )
    assert (record["teacher"], record["kind"]) == ("ensemble of 2", "ensemble")
    assert record["members"] == "big.copy;small.copy"
    assert record["params"] == strong.count_params() + opposite.count_params()
    train = inputs["examples"][inputs["examples"]["split"] == "train"]
    pixels = np.stack(
        [np.asarray(Image.open(tmp_path / p), np.float32) for p in train["crop_path"]]
    )
    each = [logits_model(m).predict(pixels / 127.5 - 1.0, verbose=0) for m in (strong, opposite)]
    np.testing.assert_allclose(table[EMOTIONS].to_numpy(), ensemble_logits(each), atol=1e-4)

    strong.save(tmp_path / "teacher.keras")
    table, record = compute_teacher_logits(
        **inputs,
        optimization={
            "distillation": {
                "teacher": "file",
                "file": str(tmp_path / "teacher.keras"),
                "file_architecture": "big",
            }
        },
    )
    assert (record["teacher"], record["kind"], record["members"]) == (
        "teacher.keras",
        "file",
        str(tmp_path / "teacher.keras"),
    )
    np.testing.assert_allclose(table[EMOTIONS].to_numpy(), each[0], atol=1e-4)
    with pytest.raises(FileNotFoundError, match="optimization.distillation.file: no model"):
        compute_teacher_logits(
            **inputs,
            optimization={
                "distillation": {
                    "teacher": "file",
                    "file": str(tmp_path / "absent.keras"),
                    "file_architecture": "big",
                }
            },
        )
