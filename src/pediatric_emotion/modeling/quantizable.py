"""What tensorflow-model-optimization's quantization-aware training lacks for keras.applications.

tfmot's default 8-bit scheme refuses four things the five architectures contain:

- MobileNetV3 builds hard-sigmoid and hard-swish from ``TFOpLambda`` ops (``x + 3``, ``* 1/6``):
  :func:`quantizable_twin` rebuilds the classifier with :class:`HardSigmoid` / :class:`HardSwish`
  layers instead (same computation, same weights, copied layer by layer);
- EfficientNetB0 starts with ``Rescaling`` and ``Normalization`` layers;
- MobileNetV3 and EfficientNetB0 scale channels with ``Multiply`` (squeeze-and-excitation);
- NASNetMobile has BatchNormalization layers that follow no convolution (after ``Concatenate`` or
  ``Activation``), which tfmot cannot fold.

:func:`annotate_for_quantization` annotates each of those with :class:`OutputQuantizeConfig`
(weights kept float during training and quantized by the converter, output quantized like any
other activation) and every other layer with tfmot's defaults. The model computes exactly what it
did; only fake-quantization nodes are added by ``quantize_apply``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tf_keras.src.applications import mobilenet_v3

from pediatric_emotion.modeling.architectures import build_classifier
from pediatric_emotion.modeling.quantize_layout import KeepWeightsScheme

logger = logging.getLogger(__name__)

_PACKAGE = "pediatric_emotion"
# Layers that follow a convolution are folded by tfmot's transforms; any other BatchNormalization
# is "standalone" and gets an OutputQuantizeConfig.
_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HardSigmoid(keras.layers.Layer):
    """``relu6(x + 3) / 6``, the hard sigmoid of MobileNetV3, as one layer."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HardSwish(keras.layers.Layer):
    """``x * relu6(x + 3) / 6``, MobileNetV3's hard swish, as one layer (TFLite: HARD_SWISH)."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs * (tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """Quantize a layer's output only (8 bit, asymmetric, moving averages); its weights, if any,
    stay float during training (the TFLite converter quantizes the folded constants)."""

    def get_weights_and_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def get_activations_and_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: list) -> None:
        pass

    def set_quantize_activations(
        self, layer: keras.layers.Layer, quantize_activations: list
    ) -> None:
        pass

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list:
        return [
            tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]

    def get_config(self) -> dict[str, Any]:
        return {}


CUSTOM_OBJECTS: dict[str, Any] = {
    "HardSigmoid": HardSigmoid,
    "HardSwish": HardSwish,
    "OutputQuantizeConfig": OutputQuantizeConfig,
}


@contextlib.contextmanager
def _layer_activations() -> Iterator[None]:
    """While building, MobileNetV3's hard-sigmoid/hard-swish helpers make one layer each."""

    def hard_sigmoid(x: tf.Tensor) -> tf.Tensor:
        return HardSigmoid()(x)  # a new layer at every call, as the helper made new ops

    def hard_swish(x: tf.Tensor) -> tf.Tensor:
        return HardSwish()(x)

    originals = mobilenet_v3.hard_sigmoid, mobilenet_v3.hard_swish
    mobilenet_v3.hard_sigmoid, mobilenet_v3.hard_swish = hard_sigmoid, hard_swish
    try:
        yield
    finally:
        mobilenet_v3.hard_sigmoid, mobilenet_v3.hard_swish = originals


def quantizable_twin(
    model: keras.Model, architecture: Mapping[str, Any], *, image_size: int, num_classes: int
) -> keras.Model:
    """The same classifier rebuilt with layer activations, the trained weights copied over.

    Raises ``ValueError`` when the weighted layers of ``model`` and the twin do not pair up (the
    architecture entry does not describe the model).
    """
    dropout_layer = next(
        (layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)), None
    )
    with _layer_activations():
        twin = build_classifier(
            architecture,
            image_size=image_size,
            num_classes=num_classes,
            dropout=float(dropout_layer.rate) if dropout_layer is not None else 0.0,
            name=model.name,
        )
    # Weighted layers pair up in graph order (auto-generated names like "normalization_1" differ
    # between two builds in one session); class and weight shapes must agree.
    sources = [layer for layer in model.layers if layer.weights]
    targets = [layer for layer in twin.layers if layer.weights]
    for source, target in zip(sources, targets, strict=False):
        if type(source) is not type(target) or [w.shape for w in source.weights] != [
            w.shape for w in target.weights
        ]:
            raise ValueError(
                f"{model.name}: layer {source.name!r} ({type(source).__name__}) does not match "
                f"{target.name!r} ({type(target).__name__}) of the rebuilt "
                f"{architecture.get('application')} classifier; was the model built from this "
                "architecture entry?"
            )
        target.set_weights(source.get_weights())
    if len(sources) != len(targets):
        raise ValueError(
            f"{model.name}: {len(sources)} weighted layers, the rebuilt "
            f"{architecture.get('application')} classifier has {len(targets)}"
        )
    copied = len(sources)
    logger.debug("%s: quantizable twin, weights of %d layers copied", model.name, copied)
    return twin


def _needs_output_config(layer: keras.layers.Layer) -> bool:
    if isinstance(
        layer,
        (HardSigmoid, HardSwish, keras.layers.Multiply, keras.layers.Rescaling,
         keras.layers.Normalization),
    ):  # fmt: skip
        return True
    if isinstance(layer, keras.layers.BatchNormalization):
        inbound = [
            inbound_layer
            for node in layer.inbound_nodes
            for inbound_layer in tf.nest.flatten(node.inbound_layers)
        ]
        return not all(isinstance(parent, _CONVOLUTIONS) for parent in inbound)
    return False


def annotate_for_quantization(model: keras.Model) -> keras.Model:
    """Annotate every layer for ``quantize_apply``: tfmot's default where tfmot knows the layer,
    :class:`OutputQuantizeConfig` for what it lacks (see the module docstring)."""
    quantize_annotate_layer = tfmot.quantization.keras.quantize_annotate_layer
    special = {layer.name for layer in model.layers if _needs_output_config(layer)}

    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        if layer.name in special:
            return quantize_annotate_layer(layer, OutputQuantizeConfig())
        return quantize_annotate_layer(layer)

    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        return keras.models.clone_model(model, clone_function=annotate)


_RANGE_PREFIXES = ("output", "post_activation", "quantize_layer")


def _range_variables(layer: keras.layers.Layer) -> tuple[Any, Any] | None:
    """The (min, max) variables of the quantizer on ``layer``'s output, if it has one."""
    variables = {w.name.rsplit("/", 1)[-1].split(":")[0]: w for w in layer.non_trainable_weights}
    for prefix in _RANGE_PREFIXES:
        if f"{prefix}_min" in variables and f"{prefix}_max" in variables:
            return variables[f"{prefix}_min"], variables[f"{prefix}_max"]
    return None


def calibrate_activation_ranges(
    quantized: keras.Model, reference: keras.Model, images: Any, *, batch_size: int = 16
) -> int:
    """Start every activation quantizer of ``quantized`` at the range the float ``reference``
    model's matching layer output takes on ``images``; returns how many ranges were set.

    tfmot starts activation ranges at [-6, 6] and moves them by 0.1% per training step (moving
    average, decay 0.999), so a short fine-tuning keeps ranges far from the real ones (NASNet's
    uncapped ReLUs saturate and the model collapses to one answer). Layers keep their names
    through ``quantize_apply`` (``quant_<name>`` wrapping ``<name>``), which pairs them up.
    """
    original_weights = reference.get_weights()
    inner_names: dict[str, tuple[Any, Any]] = {}
    input_ranges: list[tuple[Any, Any]] = []
    for layer in quantized.layers:
        variables = _range_variables(layer)
        if variables is None:
            continue
        inner = getattr(layer, "layer", None)
        if inner is None:  # QuantizeLayer: quantizes the model input
            input_ranges.append(variables)
        elif inner.name in {ref.name for ref in reference.layers}:
            inner_names[inner.name] = variables
    names = list(inner_names)
    # A copy: the reference's layers may also belong to other models (wrapping shares them), and
    # then `layer.output` is ambiguous.
    reference = keras.models.clone_model(reference)
    reference.set_weights(original_weights)
    probe = keras.Model(reference.inputs, [reference.get_layer(name).output for name in names])
    images = np.asarray(images, dtype=np.float32)
    low = np.full(len(names), np.inf)
    high = np.full(len(names), -np.inf)
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start : start + batch_size], training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for index, output in enumerate(outputs):
            low[index] = min(low[index], float(tf.reduce_min(output)))
            high[index] = max(high[index], float(tf.reduce_max(output)))
    for (min_variable, max_variable), lo, hi in zip(
        [inner_names[name] for name in names], low, high, strict=True
    ):
        min_variable.assign(min(lo, 0.0))  # TFLite wants 0 inside every range
        max_variable.assign(max(hi, 0.0))
    for min_variable, max_variable in input_ranges:
        min_variable.assign(min(float(images.min()), 0.0))
        max_variable.assign(max(float(images.max()), 0.0))
    logger.debug("Calibrated %d activation ranges", len(names) + len(input_ranges))
    return len(names) + len(input_ranges)


def quantize_for_training(model: keras.Model, scheme: Any = None) -> keras.Model:
    """Quantization-aware copy of ``model`` (annotated here, then tfmot's ``quantize_apply`` with
    ``scheme``: the default 8-bit one, or a collaborative prune/cluster-preserving scheme), laid
    out by :class:`KeepWeightsLayoutTransform` so a convolution feeding a ReLU keeps its weight
    quantizer (tfmot drops it; see modeling/quantize_layout.py)."""
    annotated = annotate_for_quantization(model)
    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        return tfmot.quantization.keras.quantize_apply(annotated, KeepWeightsScheme(scheme))
