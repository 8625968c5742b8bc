"""A model trained under mixed precision (``mixed_float16``, what a GPU run gets), the policy forced
here on CPU: its float32 copy, which training saves and the baseline converts, computes the same
function in float32. (The TFLite converter refuses the float16 ops of the mixed model itself,
``'tf.Conv2D' op is neither a custom op nor a flex op``: the conversion of a mixed MobileNetV3
through the baseline node is tested in tests/pipelines/optimization/test_nodes.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras as keras

from pediatric_emotion.modeling.architectures import float32_copy


def small_classifier() -> keras.Model:
    """Conv, batch norm, depthwise conv, pooling and a softmax head kept in float32, as the
    project's classifiers have them."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(7, kernel_initializer=keras.initializers.RandomNormal(stddev=20.0))(x)
    outputs = keras.layers.Activation("softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def mixed_model() -> keras.Model:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = small_classifier()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert any(layer.compute_dtype == "float16" for layer in model.layers)
    return model


def test_the_float32_copy_computes_the_same_function_in_float32(mixed_model):
    copy = float32_copy(mixed_model)
    assert copy is not mixed_model
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    images = np.random.default_rng(1).random((16, 16, 16, 3), dtype=np.float32) * 2 - 1
    expected = mixed_model.predict(images, verbose=0)
    assert expected.max(axis=1).min() > 0.3  # not a uniform guess that any model would match
    got = copy.predict(images, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-2)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_a_float32_model_is_its_own_float32_copy():
    model = small_classifier()
    assert float32_copy(model) is model
