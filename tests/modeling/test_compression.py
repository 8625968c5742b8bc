"""Each tfmot technique does what it claims, read back from the converted TFLite weights: zeros at
the target sparsity, at most N values per clustered kernel channel, int8 tensors and ops, and the
collaborative schemes keeping sparsity and clusters through quantization-aware training."""

from __future__ import annotations

from typing import Any

# isort: split
import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

# isort: split

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from pediatric_emotion.modeling.architectures import uncompiled_copy
from pediatric_emotion.modeling.compression import (
    clusterable_layer_names,
    clustering_wrapped,
    fine_tune,
    kernel_sparsity,
    prunable_layer_names,
    pruning_wrapped,
    quantization_aware,
    strip,
)
from pediatric_emotion.modeling.tflite_export import convert_to_tflite
from pediatric_emotion.modeling.tflite_inspection import (
    operator_names,
    tensor_types,
    weight_tensors,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SIZE = 32
CLASSES = 7
STEPS = 12
FREQUENCY = 4
SPARSITY = 0.5
CLUSTERS = 8
COMPRESSED_OPS = ("CONV_2D", "FULLY_CONNECTED")


def _model() -> keras.Model:
    """Conv-BN-ReLU, depthwise, pointwise, squeeze-excite, pooled head: the layer kinds of the
    mobile nets."""
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(16, 3, strides=2, use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    x = keras.layers.BatchNormalization(name="depthwise_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.Conv2D(32, 1, use_bias=False, name="pointwise")(x)
    x = keras.layers.BatchNormalization(name="pointwise_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    # squeeze-and-excitation as in MobileNetV3: a 1x1 Conv2D + ReLU on the pooled map
    se = keras.layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    se = keras.layers.Conv2D(8, 1, name="squeeze")(se)
    se = keras.layers.ReLU(name="squeeze_relu")(se)
    se = keras.layers.Conv2D(32, 1, name="excite")(se)
    se = keras.layers.Activation("sigmoid", name="excite_sigmoid")(se)
    x = keras.layers.Multiply(name="se_scale")([x, se])
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dense(CLASSES, name="head_logits")(x)
    outputs = keras.layers.Activation("softmax", name="head_softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (64, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def train_data(images: np.ndarray) -> tf.data.Dataset:
    labels = np.arange(len(images)) % CLASSES
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8).repeat()


@pytest.fixture(scope="module")
def trained(train_data: tf.data.Dataset) -> keras.Model:
    keras.utils.set_random_seed(0)
    return fine_tune(_model(), train_data, epochs=1, steps_per_epoch=STEPS, learning_rate=1e-3)


def _tune(model: keras.Model, data: tf.data.Dataset, **kwargs: Any) -> keras.Model:
    return fine_tune(model, data, epochs=1, steps_per_epoch=STEPS, learning_rate=1e-3, **kwargs)


def _pruned(trained: keras.Model, data: tf.data.Dataset) -> keras.Model:
    wrapped = pruning_wrapped(
        uncompiled_copy(trained), sparsity=SPARSITY, end_step=8, frequency=FREQUENCY
    )
    _tune(wrapped, data, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return strip(wrapped)


def _clustered(model: keras.Model, data: tf.data.Dataset, preserve_sparsity: bool) -> keras.Model:
    wrapped = clustering_wrapped(
        uncompiled_copy(model), clusters=CLUSTERS, preserve_sparsity=preserve_sparsity
    )
    _tune(wrapped, data)
    return strip(wrapped)


@pytest.fixture(scope="module")
def pruned(trained: keras.Model, train_data: tf.data.Dataset) -> keras.Model:
    return _pruned(trained, train_data)


@pytest.fixture(scope="module")
def clustered(trained: keras.Model, train_data: tf.data.Dataset) -> keras.Model:
    return _clustered(trained, train_data, preserve_sparsity=False)


def _compressed_weights(content: bytes) -> list:
    return [w for w in weight_tensors(content) if w.op in COMPRESSED_OPS]


def _sparsity(content: bytes) -> float:
    weights = _compressed_weights(content)
    return sum(int(w.zero_mask().sum()) for w in weights) / sum(w.values.size for w in weights)


def _max_unique_per_channel(content: bytes) -> int:
    return max(int(w.unique_per_channel().max()) for w in _compressed_weights(content))


def test_only_kernels_tfmot_compresses_are_wrapped(trained: keras.Model) -> None:
    expected = ["stem", "pointwise", "squeeze", "excite", "head_logits"]  # depthwise stays dense
    assert prunable_layer_names(trained) == expected
    assert clusterable_layer_names(trained) == expected


def test_pruning_reaches_the_target_sparsity_in_the_tflite_weights(
    trained: keras.Model, pruned: keras.Model, images: np.ndarray
) -> None:
    assert kernel_sparsity(trained) == 0.0
    assert kernel_sparsity(pruned) == pytest.approx(SPARSITY, abs=0.02)
    assert not any("prune" in layer.name for layer in pruned.layers)  # stripped
    for quantization in ("float32", "int8"):
        content = convert_to_tflite(pruned, quantization, representative_images=images[:8])
        # BatchNorm is folded into the kernels: zeros stay zeros
        assert _sparsity(content) == pytest.approx(SPARSITY, abs=0.02), quantization
    baseline = convert_to_tflite(trained, "float32")
    assert _sparsity(baseline) < 0.01


def test_clustering_leaves_at_most_n_values_per_kernel_channel(
    trained: keras.Model, clustered: keras.Model, images: np.ndarray
) -> None:
    kernel = clustered.get_layer("pointwise").kernel.numpy()
    assert np.unique(kernel).size <= CLUSTERS  # per whole kernel before BN folding
    assert _max_unique_per_channel(convert_to_tflite(trained, "float32")) > CLUSTERS
    for quantization in ("float32", "int8"):
        content = convert_to_tflite(clustered, quantization, representative_images=images[:8])
        # BN folding scales each output channel: the bound holds per channel
        assert _max_unique_per_channel(content) <= CLUSTERS, quantization


def test_per_tensor_int8_weights_have_one_scale_and_a_smaller_file(
    trained: keras.Model, images: np.ndarray
) -> None:
    per_channel = convert_to_tflite(trained, "int8", representative_images=images[:8])
    per_tensor = convert_to_tflite(
        trained, "int8", representative_images=images[:8], per_channel=False
    )
    assert max(w.scale.size for w in weight_tensors(per_channel) if w.op == "CONV_2D") > 1
    assert {w.scale.size for w in weight_tensors(per_tensor)} == {1}
    assert len(per_tensor) < len(per_channel)


def test_qat_gives_an_integer_only_file(
    trained: keras.Model, train_data: tf.data.Dataset, images: np.ndarray
) -> None:
    model = _tune(quantization_aware(uncompiled_copy(trained)), train_data)
    assert any("quant" in layer.name for layer in model.layers)
    content = convert_to_tflite(
        model, "int8", representative_images=images[:8], quantization_aware=True
    )
    types = tensor_types(content)
    assert types["input"] == "int8" and types["output"] == "int8"
    assert {w.dtype for w in weight_tensors(content)} == {"int8"}
    operators = operator_names(content)
    assert "DEQUANTIZE" not in operators and "CONV_2D" in operators
    assert "float32" not in types["all"]


def test_pqat_keeps_the_pruned_zeros_and_plain_qat_does_not_add_any(
    pruned: keras.Model, trained: keras.Model, train_data: tf.data.Dataset, images: np.ndarray
) -> None:
    pqat = _tune(quantization_aware(uncompiled_copy(pruned), preserve="sparsity"), train_data)
    content = convert_to_tflite(
        pqat, "int8", representative_images=images[:8], quantization_aware=True
    )
    assert _sparsity(content) == pytest.approx(SPARSITY, abs=0.02)
    # the same QAT without the preserving scheme lets pruned weights grow back
    plain = _tune(quantization_aware(uncompiled_copy(pruned)), train_data)
    plain_content = convert_to_tflite(
        plain, "int8", representative_images=images[:8], quantization_aware=True
    )
    assert _sparsity(plain_content) < SPARSITY - 0.1


def test_cqat_keeps_the_clusters(
    clustered: keras.Model, train_data: tf.data.Dataset, images: np.ndarray
) -> None:
    cqat = _tune(quantization_aware(uncompiled_copy(clustered), preserve="clusters"), train_data)
    content = convert_to_tflite(
        cqat, "int8", representative_images=images[:8], quantization_aware=True
    )
    assert _max_unique_per_channel(content) <= CLUSTERS
    assert {w.dtype for w in weight_tensors(content)} == {"int8"}


def test_pcqat_keeps_sparsity_and_clusters(
    pruned: keras.Model, train_data: tf.data.Dataset, images: np.ndarray
) -> None:
    pruned_clustered = _clustered(pruned, train_data, preserve_sparsity=True)
    assert kernel_sparsity(pruned_clustered) == pytest.approx(SPARSITY, abs=0.02)
    pcqat = _tune(
        quantization_aware(uncompiled_copy(pruned_clustered), preserve="sparsity_and_clusters"),
        train_data,
    )
    content = convert_to_tflite(
        pcqat, "int8", representative_images=images[:8], quantization_aware=True
    )
    assert _sparsity(content) == pytest.approx(SPARSITY, abs=0.02)
    assert _max_unique_per_channel(content) <= CLUSTERS


def test_bad_settings_are_refused(trained: keras.Model) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        pruning_wrapped(trained, sparsity=1.5, end_step=10, frequency=2)
    with pytest.raises(ValueError, match="clusters"):
        clustering_wrapped(trained, clusters=1, preserve_sparsity=False)
    with pytest.raises(ValueError, match="init"):
        clustering_wrapped(trained, clusters=4, init="nope", preserve_sparsity=False)
    with pytest.raises(ValueError, match="preserve"):
        quantization_aware(trained, preserve="everything")


def test_a_kernel_with_few_weights_on_one_side_of_zero_is_clustered_linearly(caplog) -> None:
    """k-means++ needs as many weights as centroids on each side of zero when sparsity is kept;
    a pruned kernel with 3 positive weights left (5 of 15 centroids would go there) gets linear
    initialization instead of stopping the technique."""
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4, name="few_positive")(inputs))
    kernel = np.zeros((8, 4), np.float32)
    kernel.flat[:3] = [0.5, 0.25, 0.125]
    kernel.flat[3:12] = -np.linspace(0.1, 0.9, 9)
    model.get_layer("few_positive").set_weights([kernel, np.zeros(4, np.float32)])
    wrapped = clustering_wrapped(model, clusters=16, preserve_sparsity=True)
    values = strip(wrapped).get_layer("few_positive").get_weights()[0]
    assert (values == 0).sum() == (kernel == 0).sum()
    assert len(np.unique(values)) <= 16
    assert "linear initialization there: few_positive" in caplog.text
