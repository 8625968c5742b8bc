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
