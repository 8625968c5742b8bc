"""The Keras side of training on tiny synthetic crops: both initializations, devices, exports."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras as keras

from pediatric_emotion.modeling.architectures import build_classifier, get_base, uncompiled_copy
from pediatric_emotion.pipelines.training.keras_training import (
    ValidationMonitor,
    device_strategy,
    fit_classifier,
    learning_rate_schedule,
    set_batch_norm_momentum,
)

ARCHITECTURE = {
    "application": "MobileNetV3Small",
    "application_kwargs": {"alpha": 1.0, "minimalistic": True, "include_preprocessing": False},
    "input_scale": 1 / 127.5,
    "input_offset": -1.0,
    "imagenet_cache_glob": "weights_mobilenet_v3_small_*.h5",
}
SETTINGS = {
    "image_size": 32,
    "batch_size": 8,
    "weights": None,
    "epochs": 2,
    "head_epochs": 1,
    "fine_tune_epochs": 2,
    "learning_rate": 0.001,
    "fine_tune_learning_rate": 0.0001,
    "dropout": 0.1,
    "batch_norm_momentum": 0.9,
    "class_balance": "weights",
    "augmentation": {"flip": True},
    "early_stopping": {"patience": 5, "min_delta": 0.0},
    "cache": "memory",
    "seed": 3,
    "mixed_precision": False,
    "distribute": False,
    "max_steps_per_epoch": 2,
}


def batch_norm_momenta(model) -> set[float]:
    return {
        layer.momentum
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    rows = []
    for index in range(42):
        label = index % 7
        image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        image[:, :, label % 3] = 35 * (label + 1)  # a learnable colour cue (<= 245)
        cv2.imwrite(str(root / f"{index}.png"), image)
        rows.append({"crop_path": f"{index}.png", "label": label,
                     "split": "val" if index >= 28 else "train"})  # fmt: skip
    return root, pd.DataFrame(rows)


def test_from_scratch_is_one_phase_and_returns_an_uncompiled_best_model(crops):
    root, examples = crops
    settings = {**SETTINGS, "fine_tune_batch_norm": False}  # a pretrained start's setting only
    model, history, summary = fit_classifier(examples, root, ARCHITECTURE, settings, num_classes=7)
    assert history["phase"] == ["scratch", "scratch"]
    assert np.abs(moving_means(model)).max() > 0  # from scratch BatchNormalization learns
    assert summary["weights"] == "scratch"
    assert summary["epochs"] == 2 and summary["best_epoch"] in (1, 2)
    assert summary["train_images"] == 28 and summary["val_images"] == 14
    assert model.optimizer is None  # saved without optimizer state
    assert batch_norm_momenta(model) == {0.9}


def test_under_mixed_precision_the_model_trains_in_float16_and_is_returned_in_float32(
    crops, caplog
):
    root, examples = crops
    settings = {**SETTINGS, "mixed_precision": True, "epochs": 1}  # forced, as a GPU run gets it
    with caplog.at_level(logging.INFO):
        model, history, _ = fit_classifier(examples, root, ARCHITECTURE, settings, num_classes=7)
    assert "mixed precision on" in caplog.text
    assert np.isfinite(history["loss"]).all()
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    assert keras.mixed_precision.global_policy().name == "float32"


def test_pretrained_weights_train_head_then_everything(crops, tmp_path):
    root, examples = crops
    donor = build_classifier(ARCHITECTURE, image_size=32, num_classes=7)
    weights_file = tmp_path / "base_weights.h5"
    get_base(donor).save_weights(str(weights_file))
    settings = {**SETTINGS, "weights": str(weights_file)}
    model, history, summary = fit_classifier(examples, root, ARCHITECTURE, settings, num_classes=7)
    assert history["phase"] == ["head", "fine_tune", "fine_tune"]
    assert history["learning_rate"][0] == pytest.approx(0.001)
    assert history["learning_rate"][-1] == pytest.approx(0.0001)
    assert summary["weights"] == "base_weights.h5"
    # pretrained: the application's BatchNormalization momentum is left as it is
    assert batch_norm_momenta(model) == {0.999}


def moving_means(model) -> np.ndarray:
    return np.concatenate(
        [
            layer.moving_mean.numpy()
            for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
    )


@pytest.mark.parametrize("train_batch_norm", [True, False])
def test_fine_tune_batch_norm_says_whether_phase_2_moves_the_imagenet_statistics(
    crops, tmp_path, train_batch_norm
):
    root, examples = crops
    donor = build_classifier(ARCHITECTURE, image_size=32, num_classes=7)
    weights_file = tmp_path / "base_weights.h5"
    get_base(donor).save_weights(str(weights_file))
    settings = {**SETTINGS, "weights": str(weights_file), "head_epochs": 0,  # phase 2 alone
                "fine_tune_batch_norm": train_batch_norm}  # fmt: skip
    model, history, _ = fit_classifier(examples, root, ARCHITECTURE, settings, num_classes=7)
    assert history["phase"] == ["fine_tune", "fine_tune"]
    first_conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert not np.array_equal(  # the base trained either way
        first_conv.get_weights()[0], donor.get_layer(first_conv.name).get_weights()[0]
    )
    kept = np.array_equal(moving_means(model), moving_means(donor))
    assert kept == (not train_batch_norm)


def test_constant_learning_rate_is_the_peak():
    assert learning_rate_schedule(0.002, None, steps_per_epoch=10, epochs=3) == 0.002
    constant = learning_rate_schedule(0.002, {"decay": "constant"}, steps_per_epoch=10, epochs=3)
    assert constant == 0.002


def test_warm_up_then_constant():
    schedule = learning_rate_schedule(0.001, {"warmup_epochs": 1}, steps_per_epoch=10, epochs=3)
    rates = [float(schedule(step)) for step in (0, 5, 10, 20, 30)]
    assert rates[0] == pytest.approx(0.0001)
    assert rates[0] < rates[1] < rates[2]
    assert rates[2:] == pytest.approx([0.001] * 3)


def test_cosine_schedule_warms_up_to_the_peak_then_decays_to_the_final_fraction():
    schedule = learning_rate_schedule(
        0.002,
        {"warmup_epochs": 1, "warmup_start": 0.1, "decay": "cosine", "final_fraction": 0.05},
        steps_per_epoch=10,
        epochs=4,
    )
    rates = [float(schedule(step)) for step in (0, 5, 10, 25, 40)]
    assert rates[0] == pytest.approx(0.0002)
    assert rates[0] < rates[1] < rates[2] == pytest.approx(0.002)
    assert rates[2] > rates[3] > rates[4] == pytest.approx(0.0001)


def test_unknown_decay_is_refused():
    with pytest.raises(ValueError, match="learning_rate_schedule.decay"):
        learning_rate_schedule(0.002, {"decay": "linear"}, steps_per_epoch=10, epochs=2)


def test_scheduled_learning_rate_is_logged_per_epoch(crops):
    root, examples = crops
    settings = {**SETTINGS, "learning_rate_schedule": {"decay": "cosine", "final_fraction": 0.1}}
    _, history, _ = fit_classifier(examples, root, ARCHITECTURE, settings, num_classes=7)
    # the rate of each epoch's last step: decaying from the peak towards 0.1 of it
    assert 0.0001 < history["learning_rate"][-1] < history["learning_rate"][0] < 0.001


def test_device_strategy_restores_the_precision_policy():
    with device_strategy({"mixed_precision": True, "distribute": False}):
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "float32"
    with device_strategy({"mixed_precision": "auto", "distribute": "auto"}) as strategy:
        assert keras.mixed_precision.global_policy().name == "float32"  # no GPU here
        assert type(strategy).__name__ != "MirroredStrategy"


def test_batch_norm_momentum_and_uncompiled_copy():
    model = build_classifier(ARCHITECTURE, image_size=32, num_classes=7)
    set_batch_norm_momentum(model, 0.8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    copy = uncompiled_copy(model)
    assert copy.optimizer is None
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    assert np.allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_early_stopping_waits_for_start_epoch() -> None:
    """A model that never improves is stopped after `patience` epochs, not before `start_epoch`."""
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    features = np.zeros((6, 2), dtype=np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    for start_epoch, expected_epochs in ((0, 2), (4, 4)):
        monitor = ValidationMonitor(
            tf.data.Dataset.from_tensor_slices(features).batch(6),
            labels,
            patience=1,
            min_delta=0.0,
            start_epoch=start_epoch,
        )
        monitor.start_phase("scratch", early_stopping=True)
        model.fit(features, labels, epochs=10, verbose=0, callbacks=[monitor])
        assert len(monitor.rows) == expected_epochs, start_epoch
