"""The layout used for quantization-aware training: tfmot's own transforms, in tfmot's order, but a
convolution feeding a ReLU keeps its weight quantizer and gets no fake-quant before the ReLU."""

from __future__ import annotations

# isort: split
import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

# isort: split

import pytest
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_layout_transform as default_layout,
)
from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations import (
    model_transformer,
)
from tensorflow_model_optimization.python.core.quantization.keras.quantize_aware_activation import (
    NoOpActivation,
)

from pediatric_emotion.modeling.quantizable import quantize_for_training
from pediatric_emotion.modeling.quantize_layout import REPLACED, TFMOT_TRANSFORMS


def test_transform_list_is_the_installed_tfmots(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a tfmot release changes its list, this fails and TFMOT_TRANSFORMS must follow."""
    seen: list[type] = []

    class Recorder:
        def __init__(self, model, transforms, *args, **kwargs) -> None:
            seen.extend(type(transform) for transform in transforms)

        def transform(self) -> tuple[None, dict]:
            return None, {}

    monkeypatch.setattr(model_transformer, "ModelTransformer", Recorder)
    default_layout.Default8BitQuantizeLayoutTransform().apply(None, {})
    assert tuple(seen) == TFMOT_TRANSFORMS
    assert set(REPLACED) <= set(TFMOT_TRANSFORMS)


def _squeeze_excite() -> keras.Model:
    inputs = keras.Input((8, 8, 16))
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(inputs)
    x = keras.layers.Conv2D(4, 1, name="squeeze")(x)
    x = keras.layers.ReLU(name="squeeze_relu")(x)
    y = keras.layers.Conv2D(16, 1, name="residual")(inputs)
    z = keras.layers.Conv2D(16, 1, name="residual_b")(inputs)
    added = keras.layers.Add(name="add")([y, z])
    added = keras.layers.ReLU(name="add_relu")(added)
    pooled = keras.layers.GlobalAveragePooling2D()(added)
    outputs = keras.layers.Dense(7, activation="softmax", name="logits")(
        keras.layers.Concatenate()([keras.layers.Flatten()(x), pooled])
    )
    return keras.Model(inputs, outputs)


def _wrapper(model: keras.Model, name: str) -> keras.layers.Layer:
    return next(layer for layer in model.layers if getattr(layer, "layer", None) is not None
                and layer.layer.name == name)  # fmt: skip


def test_conv_before_relu_keeps_its_weight_quantizer_and_no_output_fake_quant() -> None:
    """tfmot alone gives ``squeeze`` a NoOpQuantizeConfig: no weight quantizer at all."""
    quantized = quantize_for_training(_squeeze_excite())
    squeeze = _wrapper(quantized, "squeeze")
    assert [weight.name for weight, _ in squeeze.quantize_config.get_weights_and_quantizers(
        squeeze.layer)] == [squeeze.layer.kernel.name]  # fmt: skip
    # no fake-quant between the conv and its ReLU (TFLite fuses them)
    assert isinstance(squeeze.layer.activation.activation, NoOpActivation)
    relu = _wrapper(quantized, "squeeze_relu")
    assert relu.quantize_config.get_output_quantizers(relu.layer)  # the ReLU quantizes the output
    # Add + ReLU: tfmot's behaviour (nothing quantized on the Add, the ReLU quantizes)
    add = _wrapper(quantized, "add")
    assert type(add.quantize_config).__name__ == "NoOpQuantizeConfig"


def _concatenated_branches() -> keras.Model:
    """Two 1x1 convolutions feeding a concatenation, as in NASNetMobile's adjust blocks; half of
    each kernel zero (as after pruning)."""
    inputs = keras.Input((8, 8, 8))
    branches = [keras.layers.Conv2D(4, 1, name=f"branch_{i}")(inputs) for i in (1, 2)]
    x = keras.layers.Concatenate(name="concat")(branches)
    x = keras.layers.BatchNormalization(name="concat_bn")(x)
    outputs = keras.layers.Dense(7, activation="softmax", name="logits")(
        keras.layers.GlobalAveragePooling2D()(x)
    )
    model = keras.Model(inputs, outputs)
    for i in (1, 2):
        layer = model.get_layer(f"branch_{i}")
        kernel, bias = layer.get_weights()
        kernel[..., ::2] = 0.0
        layer.set_weights([kernel, bias])
    return model


@pytest.mark.parametrize(
    ("preserve", "quantizer"),
    [
        (None, "Default8BitConvWeightsQuantizer"),
        ("sparsity", "PrunePreserveDefault8BitConvWeightsQuantizer"),
        ("clusters", "ClusterPreserveDefault8BitConvWeightsQuantizer"),
        ("sparsity_and_clusters", "ClusterPreserveDefault8BitConvWeightsQuantizer"),
    ],
)
def test_layers_feeding_a_concatenation_get_the_schemes_weight_quantizer(preserve, quantizer):
    """tfmot's ConcatTransform gives them the default registry's config: under PQAT / CQAT /
    PCQAT their zeros and clusters were not kept."""
    from pediatric_emotion.modeling.compression import quantization_aware

    quantized = quantization_aware(_concatenated_branches(), preserve=preserve)
    for name in ("branch_1", "branch_2"):
        branch = _wrapper(quantized, name)
        assert type(branch.quantize_config.weight_quantizer).__name__ == quantizer
        assert not branch.quantize_config.get_output_quantizers(branch.layer)  # as tfmot: quantized
        # after the concatenation only
