"""Per-channel cluster lookup for tfmot's cluster-preserving QAT (CQAT, PCQAT): vectorized, and
per channel for every clustered Conv2D kernel.

tfmot's ``ClusteringAlgorithmPerChannel`` (used by the cluster-preserving quantize scheme for every
Conv2D kernel whose output channels each hold the same number of distinct values) finds and
gathers the centroids with a Python loop over output channels: one slice, subtract, argmin and
gather per channel, in the forward pass and again in the gradient. On MobileNetV2 that is tens of
thousands of ops per training step; the fine-tuning graph grew the process to ~19 GB in 46 steps
and the TFLite conversion of the resulting graph took minutes.

:func:`install` replaces the two methods with broadcast / batched-gather versions that compute the
same indices and the same clustered weights (and gradients) in a handful of ops per layer. Cases
the vectorized code does not cover (channels_first kernels, averaged centroid gradients) keep
tfmot's own implementation.

tfmot also reads a Conv2D kernel's clusters per channel only when its channels hold the same number
of distinct values, give or take one (``get_centroids``). Otherwise (a pruned channel left with
only zeros, a channel whose clusters merged) it takes the whole kernel's distinct values as one set
of centroids: more than 1024 of them and the layer is not preserved at all (QAT then spreads its
weights over 256 levels), fewer and every weight is compared with every centroid at each step (a
weights x centroids tensor per layer). :func:`channel_centroids` keeps each channel's own values,
padding the shorter ones with a centroid no weight is near (tfmot pads with 1.0, which weights
near 1 would take).

Idempotent; :mod:`pediatric_emotion.modeling.compression` installs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tensorflow_model_optimization.python.core.clustering.keras import clustering_algorithm
from tensorflow_model_optimization.python.core.clustering.keras.cluster_config import (
    GradientAggregation,
)
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (  # noqa: E501
    cluster_preserve_quantize_registry as cluster_preserve,
)

_PerChannel = clustering_algorithm.ClusteringAlgorithmPerChannel
_LOOPED = {
    "get_pulling_indices": _PerChannel.get_pulling_indices,
    "get_clustered_weight": _PerChannel.get_clustered_weight,
}
_TFMOT_CENTROIDS = cluster_preserve.get_centroids
# A channel with more distinct values than this was not clustered: tfmot's own handling (which
# leaves such a kernel unpreserved) applies.
MAX_CHANNEL_CENTROIDS = 256
# Pads a channel's centroids up to the kernel's largest count: so far from any weight that it is
# never the nearest, so it pulls no weight, gets no gradient and never moves.
PADDING_CENTROID = 1e30


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


def channel_centroids(layer: Any, weight: Any, data_format: str | None):
    """tfmot's ``get_centroids`` (centroids, their count, a lookup index, per channel or not) with
    a Conv2D kernel's centroids always taken per output channel.

    Each channel's distinct values, padded to the largest count with :data:`PADDING_CENTROID`,
    so that every channel keeps exactly its own values through training."""
    per_channel_layer = isinstance(getattr(layer, "layer", None), keras.layers.Conv2D)
    if not per_channel_layer or data_format == "channels_first":
        return _TFMOT_CENTROIDS(layer, weight, data_format)
    values = np.asarray(weight)
    channels = [values[..., channel] for channel in range(values.shape[-1])]
    uniques = [np.unique(channel, return_inverse=True) for channel in channels]
    count = max(len(unique) for unique, _ in uniques)
    if count > MAX_CHANNEL_CENTROIDS:
        return _TFMOT_CENTROIDS(layer, weight, data_format)
    centroids = np.stack(
        [
            np.pad(unique, (0, count - len(unique)), constant_values=PADDING_CENTROID)
            for unique, _ in uniques
        ]
    )
    lookup = np.stack([inverse.reshape(values.shape[:-1]) for _, inverse in uniques], axis=-1)
    return (
        tf.constant(centroids, dtype=weight.dtype),
        count,
        tf.constant(lookup, dtype=tf.int32),
        True,
    )


def install() -> None:
    """Use the vectorized lookup in every ``ClusteringAlgorithmPerChannel``, and per-channel
    centroids for every clustered Conv2D kernel under CQAT / PCQAT, from now on."""
    _PerChannel.get_pulling_indices = pulling_indices
    _PerChannel.get_clustered_weight = clustered_weight
    cluster_preserve.get_centroids = channel_centroids


def uninstall() -> None:
    """tfmot's own implementation again (tests compare the two)."""
    for name, method in _LOOPED.items():
        setattr(_PerChannel, name, method)
    cluster_preserve.get_centroids = _TFMOT_CENTROIDS
