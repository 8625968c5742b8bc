"""A model trained under mixed precision (``mixed_float16``, what a GPU run gets) converts like a
float32 one: the policy is forced here on CPU. The TFLite converter refuses the float16 ops of the
mixed model itself (``'tf.Conv2D' op is neither a custom op nor a flex op``); the float32 copy
that training saves, and that the baseline converts, computes the same function in float32."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from pediatric_emotion.modeling.architectures import build_classifier, float32_copy
from pediatric_emotion.modeling.tflite_export import convert_to_tflite

ARCHITECTURE = {"application": "MobileNetV3Small", "application_kwargs": {"minimalistic": True}}


@pytest.fixture(scope="module")
def mixed_model() -> keras.Model:
    """MobileNetV3-Small built and stepped once under the mixed_float16 policy."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_classifier(ARCHITECTURE, image_size=32, num_classes=7)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        images = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32) * 255
        model.fit(images, np.arange(8) % 7, epochs=1, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert any(layer.compute_dtype == "float16" for layer in model.layers)
    return model


def test_the_float32_copy_computes_the_same_function_in_float32(mixed_model):
    copy = float32_copy(mixed_model)
    assert copy is not mixed_model
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    images = np.random.default_rng(1).random((4, 32, 32, 3), dtype=np.float32) * 255
    np.testing.assert_allclose(
        copy.predict(images, verbose=0), mixed_model.predict(images, verbose=0), atol=2e-2
    )
    float32_model = build_classifier(ARCHITECTURE, image_size=32, num_classes=7)
    assert float32_copy(float32_model) is float32_model  # nothing to do


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_a_mixed_precision_model_converts_through_its_float32_copy(mixed_model, quantization):
    images = np.random.default_rng(2).random((8, 32, 32, 3), dtype=np.float32) * 255
    content = convert_to_tflite(
        float32_copy(mixed_model), quantization, representative_images=images
    )
    interpreter = tf.lite.Interpreter(model_content=content)
    interpreter.allocate_tensors()
    assert interpreter.get_output_details()[0]["shape"].tolist() == [1, 7]
