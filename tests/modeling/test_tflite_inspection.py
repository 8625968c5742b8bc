"""tflite_inspection on tiny tf_keras models converted the ways the project converts them."""

from __future__ import annotations

from collections.abc import Callable

# isort: split
import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

# isort: split

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from pediatric_emotion.modeling.tflite_inspection import (
    input_output_details,
    operator_names,
    tensor_types,
    weight_statistics,
    weight_tensors,
)

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")

CENTROIDS = np.array([-0.3, -0.1, 0.1, 0.3], dtype=np.float32)
LAYERS = ("conv1", "depthwise", "conv2", "dense1", "dense2")
# conv1 432 + depthwise 144 + conv2 512 + dense1 2048 + dense2 256 weights
WEIGHT_COUNT = 432 + 144 + 512 + 2048 + 256


def _model() -> keras.Model:
    """Five weight layers; dense1 is large enough (>= 1024) for dynamic-range quantization."""
    return keras.Sequential(
        [
            keras.layers.Input((32, 32, 3)),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv1"),
            keras.layers.DepthwiseConv2D(3, activation="relu", name="depthwise"),
            keras.layers.Conv2D(32, 1, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(64, activation="relu", name="dense1"),
            keras.layers.Dense(4, name="dense2"),
        ]
    )


def _set_kernel(layer: keras.layers.Layer, kernel: np.ndarray) -> None:
    weights = layer.get_weights()
    layer.set_weights([kernel.astype(np.float32), *weights[1:]])


def _clustered_kernel(shape: tuple[int, ...]) -> np.ndarray:
    """Every output channel (last keras axis) holds the same 4 centroids: the int8 per-channel
    scales then agree and the raw int8 values take 4 values per tensor too."""
    per_channel = CENTROIDS[np.arange(int(np.prod(shape[:-1]))) % len(CENTROIDS)]
    return np.repeat(per_channel[:, None], shape[-1], axis=1).reshape(shape)


def _representative() -> Callable[[], object]:
    def data():
        rng = np.random.default_rng(0)
        for _ in range(4):
            yield [rng.random((1, 32, 32, 3), dtype=np.float32)]

    return data


def _convert(model: keras.Model, mode: str) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative()
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif mode == "sparse":
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return converter.convert()


@pytest.fixture(scope="module")
def pruned() -> dict[str, object]:
    """Random kernels, conv1's exactly half zero (by position, so every channel has zeros)."""
    keras.utils.set_random_seed(1)
    model = _model()
    conv1 = model.get_layer("conv1")
    kernel = conv1.get_weights()[0]
    kernel.reshape(-1)[: kernel.size // 2] = 0.0
    _set_kernel(conv1, kernel)
    kernels = {name: model.get_layer(name).get_weights()[0] for name in LAYERS}
    tflite = {mode: _convert(model, mode) for mode in ("float32", "dynamic", "float16", "int8")}
    return {"kernels": kernels, **tflite}


@pytest.fixture(scope="module")
def clustered() -> dict[str, bytes]:
    """Every kernel drawn from 4 centroids; depthwise channel c constant (one value per channel)."""
    keras.utils.set_random_seed(2)
    model = _model()
    for name in ("conv1", "conv2", "dense1", "dense2"):
        layer = model.get_layer(name)
        _set_kernel(layer, _clustered_kernel(layer.get_weights()[0].shape))
    depthwise = model.get_layer("depthwise")
    shape = depthwise.get_weights()[0].shape  # (3, 3, 16, 1)
    per_channel = CENTROIDS[np.arange(shape[2]) % len(CENTROIDS)]
    _set_kernel(depthwise, np.broadcast_to(per_channel[None, None, :, None], shape))
    return {mode: _convert(model, mode) for mode in ("float32", "int8", "sparse")}


def _tflite_layout(kernels: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Keras kernels in TFLite's filter layout, in operator order."""
    return [
        kernels["conv1"].transpose(3, 0, 1, 2),  # HWIO -> OHWI
        kernels["depthwise"].transpose(3, 0, 1, 2),  # HWC1 -> 1HWC
        kernels["conv2"].transpose(3, 0, 1, 2),
        kernels["dense1"].T,  # (in, out) -> (out, in)
        kernels["dense2"].T,
    ]


def test_float32_weights_are_the_keras_kernels_in_tflite_layout(pruned):
    weights = weight_tensors(pruned["float32"])
    assert [w.op for w in weights] == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "CONV_2D",
        "FULLY_CONNECTED",
        "FULLY_CONNECTED",
    ]
    for weight, expected in zip(weights, _tflite_layout(pruned["kernels"]), strict=True):
        assert weight.dtype == "float32"
        assert weight.shape == expected.shape
        np.testing.assert_array_equal(weight.values, expected)
        assert weight.scale is None and weight.zero_point is None
        assert not weight.values.flags.writeable


def test_float32_operators_and_types(pruned):
    names = operator_names(pruned["float32"])
    assert names == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "CONV_2D",
        "MEAN",
        "FULLY_CONNECTED",
        "FULLY_CONNECTED",
    ]
    types = tensor_types(pruned["float32"])
    assert types["input"] == types["output"] == "float32"
    assert "float32" in types["all"]
    details = input_output_details(pruned["float32"])
    assert details["input"] == {
        "shape": [1, 32, 32, 3],
        "dtype": "float32",
        "quantization": {"scale": 0.0, "zero_point": 0},
    }
    assert details["output"]["shape"] == [1, 4]


def test_sparsity_counts_exact_zeros(pruned):
    expected = (432 // 2) / WEIGHT_COUNT
    for mode in ("float32", "float16"):
        stats = weight_statistics(pruned[mode])
        assert stats["weight_count"] == WEIGHT_COUNT
        assert stats["weight_tensor_count"] == 5
        assert stats["sparsity"] == pytest.approx(expected, abs=1e-12), mode
    # int8 rounds a few small weights to 0 as well, never fewer zeros than the float model.
    int8 = weight_statistics(pruned["int8"])["sparsity"]
    assert expected <= int8 < expected + 0.02


def test_float16_weights_decode_as_float16(pruned):
    assert "DEQUANTIZE" in operator_names(pruned["float16"])
    weights = weight_tensors(pruned["float16"])
    assert [w.dtype for w in weights] == ["float16"] * 5
    for weight, expected in zip(weights, _tflite_layout(pruned["kernels"]), strict=True):
        assert weight.values.dtype == np.float16
        np.testing.assert_array_equal(weight.values, expected.astype(np.float16))
    assert weight_statistics(pruned["float16"])["dtypes"] == ["float16"]
    assert tensor_types(pruned["float16"])["input"] == "float32"


def test_dynamic_range_quantizes_only_large_weights(pruned):
    weights = weight_tensors(pruned["dynamic"])
    assert {w.dtype for w in weights} == {"float32", "int8"}
    dense1 = weights[3]
    assert dense1.op == "FULLY_CONNECTED" and dense1.dtype == "int8"
    assert dense1.scale is not None and dense1.scale.shape == (64,)
    np.testing.assert_array_equal(dense1.zero_point, np.zeros(64))
    dequantized = dense1.values.astype(np.float32) * dense1.scale[:, None]
    np.testing.assert_allclose(dequantized, pruned["kernels"]["dense1"].T, atol=dense1.scale.max())


def test_full_int8_model_has_only_int8_weights_and_no_float_boundaries(pruned):
    content = pruned["int8"]
    names = operator_names(content)
    assert "DEQUANTIZE" not in names and "QUANTIZE" not in names
    assert names.count("FULLY_CONNECTED") == 2
    stats = weight_statistics(content)
    assert stats["dtypes"] == ["int8"]  # biases are int32 and not weight tensors
    assert stats["weight_count"] == WEIGHT_COUNT
    weights = weight_tensors(content)
    assert weights[1].op == "DEPTHWISE_CONV_2D" and weights[1].quantized_dimension == 3
    assert all(w.scale is not None and w.scale.size == w.shape[w.channel_axis] for w in weights)
    types = tensor_types(content)
    assert types["input"] == types["output"] == "int8"
    assert "float32" not in types["all"] and "int32" in types["all"]
    details = input_output_details(content)
    assert details["input"]["dtype"] == details["output"]["dtype"] == "int8"
    assert details["input"]["quantization"]["scale"] > 0
    assert isinstance(details["input"]["quantization"]["zero_point"], int)


@pytest.mark.parametrize("mode", ["float32", "int8", "sparse"])
def test_clustered_weights_have_at_most_four_values(clustered, mode):
    stats = weight_statistics(clustered[mode])
    assert stats["max_unique_per_tensor"] <= 4
    assert stats["max_unique_per_channel"] <= 4
    assert stats["sparsity"] == 0.0


def test_unique_per_channel_uses_the_output_channel_axis(clustered):
    depthwise, conv2 = weight_tensors(clustered["float32"])[1:3]
    assert depthwise.op == "DEPTHWISE_CONV_2D" and depthwise.shape == (1, 3, 3, 16)
    np.testing.assert_array_equal(depthwise.unique_per_channel(), np.ones(16))
    assert np.unique(depthwise.values).size == 4
    np.testing.assert_array_equal(conv2.unique_per_channel(), np.full(32, 4))
    assert weight_statistics(clustered["float32"])["max_unique_per_channel"] == 4


def test_sparse_encoded_weights_are_densified():
    sparse_model = _convert_sparse_pruned()
    assert "DENSIFY" in operator_names(sparse_model["sparse"])
    for dense, sparse in zip(
        weight_tensors(sparse_model["float32"]),
        weight_tensors(sparse_model["sparse"]),
        strict=True,
    ):
        assert sparse.shape == dense.shape
        np.testing.assert_array_equal(sparse.values, dense.values)
    assert weight_statistics(sparse_model["sparse"])["sparsity"] == pytest.approx(
        weight_statistics(sparse_model["float32"])["sparsity"]
    )


def _convert_sparse_pruned() -> dict[str, bytes]:
    keras.utils.set_random_seed(3)
    model = _model()
    rng = np.random.default_rng(3)
    for name in LAYERS:
        layer = model.get_layer(name)
        kernel = layer.get_weights()[0]
        kernel[rng.random(kernel.shape) < 0.8] = 0.0
        _set_kernel(layer, kernel)
    return {mode: _convert(model, mode) for mode in ("float32", "sparse")}


def test_rejects_bytes_that_are_not_tflite():
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        operator_names(b"not a model at all")
