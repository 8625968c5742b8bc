"""TFLite files run in batches give the scores of one image per invoke, for float and int8 files,
a batch that does not divide the images, and a graph that refuses another batch size."""

import numpy as np
import pytest

from pediatric_emotion.modeling.tflite_runner import (
    InputRecipe,
    tflite_probabilities,
)


@pytest.mark.parametrize("quantization", ["float32", "int8"])
@pytest.mark.parametrize("batch_size", [5, 64])
def test_batches_give_the_scores_of_one_image_per_invoke(
    tiny_tflite, crops_root, crop_paths, quantization, batch_size
):
    model = tiny_tflite[quantization]
    paths = [crops_root / path for path in crop_paths]  # 24 images: 5 leaves a short last batch
    one_by_one = tflite_probabilities(
        model.content, model.spec, paths, where="single", num_threads=1, batch_size=1
    )
    batched = tflite_probabilities(
        model.content, model.spec, paths, where="batched", num_threads=1, batch_size=batch_size
    )
    assert batched.shape == one_by_one.shape == (len(paths), 7)
    np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-5)
    assert np.ptp(batched, axis=0).max() > 1e-3  # scores vary by image: the order matters


def test_decoded_pixels_are_used_as_given(tiny_tflite, crops_root, crop_paths):
    model = tiny_tflite["float32"]
    paths = [crops_root / path for path in crop_paths]
    recipe = InputRecipe.from_spec(model.spec, "tiny")
    pixels = recipe.read_all(paths)
    assert pixels.dtype == np.uint8 and pixels.shape[0] == len(paths)
    from_files = tflite_probabilities(model.content, model.spec, paths, where="files")
    from_pixels = tflite_probabilities(
        model.content, model.spec, paths, where="pixels", pixels=pixels
    )
    np.testing.assert_array_equal(from_pixels, from_files)
    reversed_scores = tflite_probabilities(
        model.content, model.spec, paths, where="reversed", pixels=pixels[::-1].copy()
    )
    assert not np.allclose(reversed_scores, from_files)  # the pixels, not the paths, were run
    with pytest.raises(ValueError, match="2 decoded images for 24 paths"):
        tflite_probabilities(model.content, model.spec, paths, where="x", pixels=pixels[:2])


def test_a_graph_with_its_batch_baked_in_runs_one_image_per_invoke(crops_root, crop_paths, caplog):
    import tensorflow as tf
    import tf_keras as keras

    from pediatric_emotion.modeling.inputs import Preprocessing
    from pediatric_emotion.modeling.tflite_export import convert_to_tflite, tflite_spec

    inputs = keras.layers.Input((32, 32, 3), batch_size=1, name="image")
    flat = keras.layers.Lambda(lambda x: tf.reshape(x, [1, 32 * 32 * 3]))(inputs)
    outputs = keras.layers.Dense(7, activation="softmax")(flat)
    model = keras.Model(inputs, outputs)
    content = convert_to_tflite(model, "float32")
    spec = tflite_spec(
        content,
        labels=["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"],
        preprocessing=Preprocessing(32, 2 / 255, -1.0),
        face_crop={"size": 32, "margin": 0.2},
        description={},
    )
    paths = [crops_root / path for path in crop_paths[:6]]
    with caplog.at_level("INFO"):
        scores = tflite_probabilities(content, spec, paths, where="baked", batch_size=4)
    assert scores.shape == (6, 7)
    assert "(1 per invoke)" in caplog.text
    single = tflite_probabilities(content, spec, paths, where="single", batch_size=1)
    np.testing.assert_allclose(scores, single, atol=1e-6)
