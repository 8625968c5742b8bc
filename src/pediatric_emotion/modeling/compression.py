"""Pruning, weight clustering and quantization-aware training with tensorflow-model-optimization,
layer by layer so that every architecture can be wrapped.

Whole-model wrapping (``prune_low_magnitude(model)``) refuses any model holding a layer tfmot does
not know (MobileNetV3's TFOpLambda ops, EfficientNet's Rescaling). Here a model is cloned with a
``clone_function`` that wraps only the layers tfmot's registries list with weights to prune or
cluster (Conv2D, SeparableConv2D's pointwise kernel, Dense) and keeps every other layer as it is.
Depthwise kernels are left dense and unclustered, as in tfmot's own registries.

Techniques, each from a trained float model (the technique names of ``optimization_summary``):

- ``pruned``: magnitude pruning to ``sparsity`` (polynomial schedule), fine-tuned, stripped;
- ``clustered``: ``clusters`` shared weight values per kernel (k-means++), fine-tuned, stripped;
- ``qat``: quantization-aware training (:mod:`pediatric_emotion.modeling.quantizable`);
- ``pqat``: the pruned model, quantization-aware trained with its zeros kept;
- ``cqat``: the clustered model, quantization-aware trained with its clusters kept;
- ``pcqat``: the pruned model clustered with its zeros kept, then quantization-aware trained
  keeping both (tfmot's experimental collaborative schemes).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry
from tensorflow_model_optimization.python.core.clustering.keras.experimental import (
    cluster as experimental_cluster,
)
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

from pediatric_emotion.modeling import per_channel_clustering
from pediatric_emotion.modeling.optimizers import DEFAULT_OPTIMIZER, adam
from pediatric_emotion.modeling.quantizable import (
    CUSTOM_OBJECTS,
    calibrate_activation_ranges,
    quantize_for_training,
)

logger = logging.getLogger(__name__)
# CQAT / PCQAT look clusters up per output channel; tfmot's loop over channels makes graphs of
# tens of thousands of ops (see per_channel_clustering): use the vectorized lookup.
per_channel_clustering.install()

CENTROID_INITS: dict[str, Any] = {
    "kmeans_plus_plus": tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS,
    "linear": tfmot.clustering.keras.CentroidInitialization.LINEAR,
    "density_based": tfmot.clustering.keras.CentroidInitialization.DENSITY_BASED,
    "random": tfmot.clustering.keras.CentroidInitialization.RANDOM,
}


def _layers_with_kernels(model: keras.Model, registry: Any) -> list[str]:
    return [
        layer.name
        for layer in model.layers
        if registry.supports(layer) and registry._weight_names(layer)  # noqa: SLF001
    ]


def prunable_layer_names(model: keras.Model) -> list[str]:
    """Layers with weights tfmot prunes (its PruneRegistry lists a kernel for them)."""
    return _layers_with_kernels(model, prune_registry.PruneRegistry)


def clusterable_layer_names(model: keras.Model) -> list[str]:
    """Layers with weights tfmot clusters (its ClusteringRegistry lists a kernel for them)."""
    return _layers_with_kernels(model, clustering_registry.ClusteringRegistry)


def _wrap_layers(
    model: keras.Model, names: set[str], wrap: Callable[[keras.layers.Layer], keras.layers.Layer]
) -> keras.Model:
    """Clone ``model`` wrapping the layers named in ``names``; the other layers are shared."""
    if not names:
        raise ValueError(f"{model.name}: no layer to wrap")

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        return wrap(layer) if layer.name in names else layer

    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        return keras.models.clone_model(model, clone_function=clone)


def pruning_wrapped(
    model: keras.Model, *, sparsity: float, end_step: int, frequency: int
) -> keras.Model:
    """``model`` with magnitude-pruning wrappers on every prunable layer: sparsity rises from 0 to
    ``sparsity`` along a polynomial schedule over ``end_step`` steps, masks updated every
    ``frequency`` steps (train with :class:`tfmot.sparsity.keras.UpdatePruningStep`)."""
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be between 0 and 1, got {sparsity}")
    if frequency < 1 or end_step < 1:
        raise ValueError(f"end_step and frequency must be positive, got {end_step}, {frequency}")
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=float(sparsity),
        begin_step=0,
        end_step=int(end_step),
        frequency=int(frequency),
    )
    return _wrap_layers(
        model,
        set(prunable_layer_names(model)),
        lambda layer: tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule),
    )


def clustering_wrapped(
    model: keras.Model, *, clusters: int, init: str = "kmeans_plus_plus", preserve_sparsity: bool
) -> keras.Model:
    """``model`` with weight-clustering wrappers on every clusterable layer (``clusters`` values
    per kernel); ``preserve_sparsity`` keeps zero weights at zero (sparsity-preserving clustering,
    for a pruned model)."""
    if clusters < 2:
        raise ValueError(f"clusters must be at least 2, got {clusters}")
    if init not in CENTROID_INITS:
        raise ValueError(f"cluster init must be one of {sorted(CENTROID_INITS)}, got {init!r}")
    names = set(clusterable_layer_names(model))
    inits = {name: CENTROID_INITS[init] for name in names}
    if init == "kmeans_plus_plus":
        short = [
            name
            for name in sorted(names)
            if not _kmeans_plus_plus_fits(model.get_layer(name), clusters, preserve_sparsity)
        ]
        for name in short:
            inits[name] = CENTROID_INITS["linear"]
        if short:
            logger.warning(
                "%s: k-means++ cannot place %d centroids in %d layers' weights (fewer weights "
                "than centroids on one side of zero, e.g. after pruning): linear "
                "initialization there: %s",
                model.name,
                clusters,
                len(short),
                ", ".join(short),
            )
    return _wrap_layers(
        model,
        names,
        lambda layer: experimental_cluster.cluster_weights(
            layer,
            number_of_clusters=int(clusters),
            cluster_centroids_init=inits[layer.name],
            preserve_sparsity=preserve_sparsity,
        ),
    )


def _kmeans_plus_plus_fits(
    layer: keras.layers.Layer, clusters: int, preserve_sparsity: bool
) -> bool:
    """Whether tfmot's k-means++ initialization can place ``clusters`` centroids in each of the
    layer's clusterable weights: it needs at least as many weights as centroids, and with
    ``preserve_sparsity`` (one centroid at zero, the others shared between the negative and the
    positive weights in proportion to their counts, rounded half to even as tfmot does) on each
    side of zero."""
    for name in clustering_registry.ClusteringRegistry._weight_names(layer):  # noqa: SLF001
        values = np.asarray(getattr(layer, name).numpy())
        if not preserve_sparsity:
            if values.size < clusters:
                return False
            continue
        negative, positive = int((values < 0).sum()), int((values > 0).sum())
        if negative + positive == 0:
            continue
        negative_clusters = int(np.round((clusters - 1) * negative / (negative + positive)))
        if negative_clusters > negative or clusters - 1 - negative_clusters > positive:
            return False
    return True


def strip(model: keras.Model) -> keras.Model:
    """Remove pruning and clustering wrappers (the weights keep their zeros and shared values)."""
    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        stripped = tfmot.sparsity.keras.strip_pruning(model)
        return tfmot.clustering.keras.strip_clustering(stripped)


def quantization_aware(
    model: keras.Model, *, preserve: str | None = None, calibration_images: Any = None
) -> keras.Model:
    """Quantization-aware copy of ``model``; ``preserve``: None (plain QAT), ``"sparsity"``
    (PQAT), ``"clusters"`` (CQAT) or ``"sparsity_and_clusters"`` (PCQAT). With
    ``calibration_images`` (model-ready inputs) the activation ranges start at what ``model``'s
    layers output on them instead of tfmot's [-6, 6]."""
    combine = tfmot.experimental.combine
    schemes: dict[str | None, Callable[[], Any] | None] = {
        None: None,
        "sparsity": combine.Default8BitPrunePreserveQuantizeScheme,
        "clusters": lambda: combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity=False
        ),
        "sparsity_and_clusters": lambda: combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity=True
        ),
    }
    if preserve not in schemes:
        raise ValueError(f"preserve must be one of {list(schemes)}, got {preserve!r}")
    factory = schemes[preserve]
    quantized = quantize_for_training(model, factory() if factory is not None else None)
    if calibration_images is not None:
        calibrate_activation_ranges(quantized, model, calibration_images)
    return quantized


def fine_tune(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    learning_rate: float,
    class_weight: Mapping[int, float] | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    run_eagerly: bool = False,
    optimizer: str = DEFAULT_OPTIMIZER,
) -> keras.Model:
    """Train a wrapped model for a few epochs (Adam in ``optimizer``'s implementation,
    :mod:`pediatric_emotion.modeling.optimizers`; sparse categorical cross-entropy on the
    softmax output); returns it, still wrapped.

    ``run_eagerly``: run each step eagerly instead of tracing the training step into a graph
    first. Tracing a wrapped model's training step costs about as much as 10 eager steps of
    MobileNetV3-Small (~25 s on 2 cores) and minutes for NASNetMobile: for a handful of steps,
    eager is faster; for hundreds, the graph."""
    if epochs <= 0 or steps_per_epoch <= 0:
        return model
    model.compile(
        optimizer=adam(float(learning_rate), implementation=optimizer),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
        run_eagerly=bool(run_eagerly),
    )
    model.fit(
        train_data,
        epochs=int(epochs),
        steps_per_epoch=int(steps_per_epoch),
        class_weight=dict(class_weight) if class_weight else None,
        callbacks=list(callbacks or []),
        verbose=1 if sys.stdout.isatty() else 0,
    )
    return model


def kernel_sparsity(model: keras.Model) -> float:
    """Share of exact zeros over the kernels tfmot prunes (unwrapped model)."""
    names = set(prunable_layer_names(model))
    kernels = [
        weight.numpy()
        for layer in model.layers
        if layer.name in names
        for weight in layer.weights
        if "kernel" in weight.name and "depthwise" not in weight.name
    ]
    total = sum(kernel.size for kernel in kernels)
    return float(sum(int(np.sum(kernel == 0)) for kernel in kernels) / total) if total else 0.0
