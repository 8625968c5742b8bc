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


def _outputs(content: bytes, images: np.ndarray) -> np.ndarray:
    interpreter = tf.lite.Interpreter(model_content=content)
    interpreter.allocate_tensors()
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for image in images:
        fed = image
        if given["dtype"] != np.float32:
            scale, zero_point = given["quantization"]
            fed = np.round(image / scale + zero_point).astype(given["dtype"])
        interpreter.set_tensor(given["index"], fed[np.newaxis])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(taken["index"]).copy())
    return np.concatenate(rows)


@pytest.mark.parametrize("quantization", ["float32", "dynamic_range", "int8", "qat_int8"])
def test_frozen_graph_route_computes_what_the_saved_model_route_computes(
    quantization: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The converter runs on the frozen inference function (fast); the file computes exactly
    what the converter's default SavedModel route makes of the same function, and is signed."""
    from pediatric_emotion.modeling import tflite_export
    from pediatric_emotion.modeling.compression import quantization_aware

    images = np.random.default_rng(1).uniform(-1, 1, (8, 8, 8, 3)).astype(np.float32)
    model = small_model()
    kwargs: dict = {}
    if quantization in ("int8", "qat_int8"):
        kwargs["representative_images"] = images
    if quantization == "qat_int8":
        model = quantization_aware(model, calibration_images=images)
        kwargs["quantization_aware"] = True
    target = "int8" if quantization == "qat_int8" else quantization
    frozen = convert_to_tflite(model, target, **kwargs)

    frozen_converter = tflite_export._inference_converter
    assert frozen_converter(model).experimental_lower_to_saved_model is False

    def saved_model_route(keras_model: keras.Model) -> tf.lite.TFLiteConverter:
        converter = frozen_converter(keras_model)
        converter.experimental_lower_to_saved_model = True
        return converter

    monkeypatch.setattr(tflite_export, "_inference_converter", saved_model_route)
    reference = convert_to_tflite(model, target, **kwargs)
    np.testing.assert_array_equal(_outputs(frozen, images), _outputs(reference, images))
    signatures = tf.lite.Interpreter(model_content=frozen).get_signature_list()
    assert signatures == tf.lite.Interpreter(model_content=reference).get_signature_list()
