"""The vectorized per-channel cluster lookup computes what tfmot's channel loop computes: the same
indices, the same clustered kernel and the same gradients, in a graph of a few ops."""

from __future__ import annotations

# isort: split
import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

# isort: split

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_model_optimization.python.core.clustering.keras.cluster_config import (
    GradientAggregation,
)
from tensorflow_model_optimization.python.core.clustering.keras.clustering_algorithm import (
    ClusteringAlgorithmPerChannel,
)

from pediatric_emotion.modeling import per_channel_clustering

OUT_CHANNELS = 24
CLUSTERS = 5


@pytest.fixture
def kernel_and_centroids():
    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.normal(size=(3, 3, 8, OUT_CHANNELS)), dtype=tf.float32)
    centroids = tf.Variable(rng.normal(size=(OUT_CHANNELS, CLUSTERS)), dtype=tf.float32)
    return kernel, centroids


def _lookup(kernel, centroids, aggregation=GradientAggregation.SUM):
    """Indices, clustered kernel, and the gradients of a weighted sum of it."""
    algorithm = ClusteringAlgorithmPerChannel(centroids, aggregation, "channels_last")
    original = tf.Variable(kernel)
    weighting = tf.reshape(tf.range(tf.size(kernel), dtype=tf.float32), kernel.shape) / 100.0
    with tf.GradientTape() as tape:
        indices = algorithm.get_pulling_indices(original)
        clustered = algorithm.get_clustered_weight(indices, original)
        loss = tf.reduce_sum(clustered * weighting)
    centroid_grad, weight_grad = tape.gradient(loss, [centroids, original])
    return [t.numpy() for t in (indices, clustered, centroid_grad, weight_grad)]


def _graph_ops(kernel, centroids) -> int:
    algorithm = ClusteringAlgorithmPerChannel(centroids, GradientAggregation.SUM, "channels_last")

    @tf.function
    def lookup(weight):
        return algorithm.get_clustered_weight(algorithm.get_pulling_indices(weight), weight)

    return len(lookup.get_concrete_function(kernel).graph.get_operations())


def test_vectorized_lookup_matches_tfmots_loop(kernel_and_centroids):
    kernel, centroids = kernel_and_centroids
    per_channel_clustering.uninstall()
    try:
        looped = _lookup(kernel, centroids)
        looped_ops = _graph_ops(kernel, centroids)
    finally:
        per_channel_clustering.install()
    vectorized = _lookup(kernel, centroids)
    for expected, actual in zip(looped, vectorized, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
    # every weight takes a centroid of its own output channel
    indices, clustered = vectorized[0], vectorized[1]
    expected_weights = centroids.numpy()[np.arange(OUT_CHANNELS), indices]
    np.testing.assert_allclose(clustered, expected_weights)
    assert _graph_ops(kernel, centroids) * 10 < looped_ops


def test_averaged_gradients_keep_tfmots_implementation(kernel_and_centroids):
    kernel, centroids = kernel_and_centroids
    per_channel_clustering.install()
    averaged = _lookup(kernel, centroids, GradientAggregation.AVG)
    per_channel_clustering.uninstall()
    try:
        looped = _lookup(kernel, centroids, GradientAggregation.AVG)
    finally:
        per_channel_clustering.install()
    for expected, actual in zip(looped, averaged, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


# Distinct values per output channel of a clustered kernel: an all-zero (pruned) channel, and
# channels whose clusters merged to fewer values than the others.
CHANNEL_COUNTS = (1, 2, 4, 8, 8, 8)


def _clustered_model(seed: int = 0):
    """A Conv2D whose channels hold CHANNEL_COUNTS distinct values each, and a pooled head."""
    import tf_keras as keras

    rng = np.random.default_rng(seed)
    inputs = keras.Input((8, 8, 8), name="image")
    x = keras.layers.Conv2D(len(CHANNEL_COUNTS), 3, use_bias=False, name="mixed")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    kernel = np.stack(
        [
            rng.choice(np.zeros(1) if count == 1 else rng.normal(size=count), size=(3, 3, 8))
            for count in CHANNEL_COUNTS
        ],
        axis=-1,
    ).astype(np.float32)
    for channel, count in enumerate(CHANNEL_COUNTS):
        assert np.unique(kernel[..., channel]).size == count
    model.get_layer("mixed").set_weights([kernel])
    return model


def _centroid_shape(quantized) -> tuple[int, ...]:
    (variable,) = [
        w for w in quantized.weights if "mixed" in w.name and "cluster_centroids" in w.name
    ]
    return tuple(variable.shape)


@pytest.mark.parametrize("preserve", ["clusters", "sparsity_and_clusters"])
def test_cqat_keeps_each_channels_own_clusters_when_channel_counts_differ(preserve):
    from pediatric_emotion.modeling.compression import fine_tune, quantization_aware
    from pediatric_emotion.modeling.tflite_export import convert_to_tflite
    from pediatric_emotion.modeling.tflite_inspection import weight_tensors

    images = np.random.default_rng(1).normal(size=(16, 8, 8, 8)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(16) % 7)).batch(8).repeat()

    per_channel_clustering.uninstall()
    try:  # tfmot: one set of centroids for the whole kernel (1 + 2 + 4 + 8 + 8 + 8 at most)
        assert len(_centroid_shape(quantization_aware(_clustered_model(), preserve=preserve))) == 1
    finally:
        per_channel_clustering.install()

    quantized = quantization_aware(_clustered_model(), preserve=preserve)
    assert _centroid_shape(quantized) == (len(CHANNEL_COUNTS), max(CHANNEL_COUNTS))
    fine_tune(quantized, data, epochs=1, steps_per_epoch=4, learning_rate=1e-2)
    content = convert_to_tflite(
        quantized, "int8", representative_images=images, quantization_aware=True
    )
    (conv,) = [w for w in weight_tensors(content) if w.op == "CONV_2D"]
    assert (conv.unique_per_channel() <= np.array(CHANNEL_COUNTS)).all()
    if preserve == "sparsity_and_clusters":  # the pruned channel stays zero
        assert conv.zero_mask()[0].all()
