"""Vectorized per-channel cluster lookup for tfmot's cluster-preserving QAT (CQAT, PCQAT).

tfmot's ``ClusteringAlgorithmPerChannel`` (used by the cluster-preserving quantize scheme for every
Conv2D kernel whose output channels each hold the same number of distinct values) finds and
gathers the centroids with a Python loop over output channels: one slice, subtract, argmin and
gather per channel, in the forward pass and again in the gradient. On MobileNetV2 that is tens of
thousands of ops per training step; the fine-tuning graph grew the process to ~19 GB in 46 steps
and the TFLite conversion of the resulting graph took minutes.

:func:`install` replaces the two methods with broadcast / batched-gather versions that compute the
same indices and the same clustered weights (and gradients) in a handful of ops per layer. Cases
the vectorized code does not cover (channels_first kernels, averaged centroid gradients) keep
tfmot's own implementation. Idempotent; :mod:`pediatric_emotion.modeling.compression` installs it.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow_model_optimization.python.core.clustering.keras import clustering_algorithm
from tensorflow_model_optimization.python.core.clustering.keras.cluster_config import (
    GradientAggregation,
)

_PerChannel = clustering_algorithm.ClusteringAlgorithmPerChannel
_LOOPED = {
    "get_pulling_indices": _PerChannel.get_pulling_indices,
    "get_clustered_weight": _PerChannel.get_clustered_weight,
}


def _vectorizable(algorithm: Any) -> bool:
    return algorithm.data_format != "channels_first"


def pulling_indices(algorithm: Any, weight: tf.Tensor) -> tf.Tensor:
    """Index of the nearest centroid of its output channel for every kernel weight.

    ``weight``: [..., out]; ``algorithm.cluster_centroids``: [out, clusters]."""
    if not _vectorizable(algorithm):
        return _LOOPED["get_pulling_indices"](algorithm, weight)
    distances = tf.abs(tf.expand_dims(weight, axis=-1) - algorithm.cluster_centroids)
    return tf.argmin(distances, axis=-1)


def clustered_weight(algorithm: Any, pulling_indices: tf.Tensor, original_weight: tf.Tensor):
    """The kernel rebuilt from its channels' centroids, with tfmot's straight-through gradient to
    the original weight and summed gradients to the centroids."""
    if (
        not _vectorizable(algorithm)
        or algorithm.cluster_gradient_aggregation != GradientAggregation.SUM
    ):
        return _LOOPED["get_clustered_weight"](algorithm, pulling_indices, original_weight)
    rank = len(pulling_indices.shape)
    channels_first = [rank - 1, *range(rank - 1)]
    by_channel = tf.transpose(pulling_indices, perm=channels_first)  # [out, ...]
    gathered = tf.gather(algorithm.cluster_centroids, by_channel, batch_dims=1)
    weight = tf.transpose(gathered, perm=[*range(1, rank), 0])
    return algorithm.add_gradient_to_original_weight(weight, tf.identity(original_weight))


def install() -> None:
    """Use the vectorized lookup in every ``ClusteringAlgorithmPerChannel`` from now on."""
    _PerChannel.get_pulling_indices = pulling_indices
    _PerChannel.get_clustered_weight = clustered_weight


def uninstall() -> None:
    """tfmot's own looped implementation again (tests compare the two)."""
    for name, method in _LOOPED.items():
        setattr(_PerChannel, name, method)
