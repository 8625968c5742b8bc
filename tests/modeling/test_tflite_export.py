"""convert_to_tflite: the file holds the model's inference graph, signed with the model's own
input and output names."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from pediatric_emotion.modeling.tflite_export import convert_to_tflite


def small_model() -> keras.Model:
    """A model whose training call differs from its inference call (dropout, batch statistics)."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dropout(0.9, name="drop")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    bn.set_weights([w + 0.5 for w in bn.get_weights()])  # moving statistics away from 0 / 1
    return model


def test_the_file_computes_inference_and_keeps_the_models_names() -> None:
    model = small_model()
    content = convert_to_tflite(model, "float32")
    interpreter = tf.lite.Interpreter(model_content=content)
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["image"], "outputs": ["probabilities"]}
    }
    runner = interpreter.get_signature_runner()
    images = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    for image in images:
        got = runner(image=image[np.newaxis])["probabilities"]
        expected = model(image[np.newaxis], training=False).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_model_with_two_inputs_is_refused() -> None:
    first, second = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    model = keras.Model([first, second], keras.layers.Add()([first, second]))
    with pytest.raises(ValueError, match="one input and one output"):
        convert_to_tflite(model, "float32")
