"""tfmot's 8-bit layout transforms, weight quantization kept on a convolution that feeds a ReLU.

tfmot's ``LayerReLUQuantize`` is written for ``Add`` + ``ReLU`` (no fake-quant between the two),
but its pattern also matches ``Conv2D`` / ``DepthwiseConv2D`` / ``Dense`` + ``ReLU``, and it then
gives the layer a ``NoOpQuantizeConfig``: no weight quantizer at all. In MobileNetV3's
squeeze-and-excitation blocks (a 1x1 ``Conv2D`` on the pooled map, then ``ReLU``) that means plain
QAT trains those kernels without fake-quant, and cluster-preserving QAT (CQAT, PCQAT) lets them
drift off their clusters, since the cluster-preserving quantizer is a weight quantizer.

Here such a layer is treated the way tfmot treats ``Conv2D`` + ``BatchNormalization``: its own
activation becomes ``NoOpActivation`` (no fake-quant between it and the ReLU, which TFLite fuses),
its quantize config is left to the scheme's registry (weights quantized, or clusters / sparsity
preserved by a collaborative scheme), and the ReLU quantizes the output. ``Add`` + ``ReLU`` keeps
tfmot's behaviour. Every other transform is tfmot's own, in tfmot's order.
"""

from __future__ import annotations

from typing import Any

from tensorflow_model_optimization.python.core.quantization.keras import (
    quantize_aware_activation,
    quantize_scheme,
)
from tensorflow_model_optimization.python.core.quantization.keras import (
    utils as quantize_utils,
)
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_layout_transform as default_layout,
)
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_scheme,
)
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_transforms as default_transforms,
)
from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations import (
    model_transformer,
)
from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations.transforms import (  # noqa: E501
    LayerPattern,
)

_WEIGHTED = "Conv2D|DepthwiseConv2D|Dense"


class AddReLUQuantize(default_transforms.LayerReLUQuantize):
    """tfmot's ``LayerReLUQuantize`` on the graph it was written for: ``Add`` + ``ReLU``."""

    def pattern(self) -> LayerPattern:
        return LayerPattern("ReLU", inputs=[LayerPattern("Add")])


class AddReluActivationQuantize(default_transforms.LayerReLUQuantize):
    """The same for ``Add`` + ``Activation("relu")``."""

    def pattern(self) -> LayerPattern:
        return LayerPattern(
            "Activation", config={"activation": "relu"}, inputs=[LayerPattern("Add")]
        )


class WeightedReLUQuantize(default_transforms.LayerReLUQuantize):
    """``Conv2D`` / ``DepthwiseConv2D`` / ``Dense`` (linear) + ``ReLU``: no fake-quant between
    them, the weights quantized by the scheme's registry (see the module docstring)."""

    def pattern(self) -> LayerPattern:
        return LayerPattern(
            "ReLU", inputs=[LayerPattern(_WEIGHTED, config={"activation": "linear"})]
        )

    def replacement(self, match_layer: Any) -> Any:
        weighted = match_layer.input_layers[0]
        chosen = [node.metadata.get("quantize_config") for node in (match_layer, weighted)]
        if any(config is not None for config in chosen):
            return match_layer  # a config the user chose stays
        weighted.layer["config"]["activation"] = quantize_utils.serialize_activation(
            quantize_aware_activation.NoOpActivation(), use_legacy_format=True
        )
        return match_layer

    def custom_objects(self) -> dict[str, Any]:
        return {"NoOpActivation": quantize_aware_activation.NoOpActivation}


class WeightedReluActivationQuantize(WeightedReLUQuantize):
    """The same for ``Activation("relu")``."""

    def pattern(self) -> LayerPattern:
        return LayerPattern(
            "Activation",
            config={"activation": "relu"},
            inputs=[LayerPattern(_WEIGHTED, config={"activation": "linear"})],
        )


# tfmot 0.8's Default8BitQuantizeLayoutTransform.apply list, the ReLU transforms replaced
# (tests/modeling/test_quantize_layout.py checks it against the installed tfmot).
REPLACED = {
    default_transforms.LayerReLUQuantize: (AddReLUQuantize, WeightedReLUQuantize),
    default_transforms.LayerReluActivationQuantize: (
        AddReluActivationQuantize,
        WeightedReluActivationQuantize,
    ),
}
TFMOT_TRANSFORMS = (
    default_transforms.InputLayerQuantize,
    default_transforms.SeparableConv1DQuantize,
    default_transforms.SeparableConvQuantize,
    default_transforms.Conv2DReshapeBatchNormReLUQuantize,
    default_transforms.Conv2DReshapeBatchNormActivationQuantize,
    default_transforms.Conv2DBatchNormReLUQuantize,
    default_transforms.Conv2DBatchNormActivationQuantize,
    default_transforms.Conv2DReshapeBatchNormQuantize,
    default_transforms.Conv2DBatchNormQuantize,
    default_transforms.ConcatTransform6Inputs,
    default_transforms.ConcatTransform5Inputs,
    default_transforms.ConcatTransform4Inputs,
    default_transforms.ConcatTransform3Inputs,
    default_transforms.ConcatTransform,
    default_transforms.DenseBatchNormQuantize,
    default_transforms.DenseBatchNormReLUQuantize,
    default_transforms.DenseBatchNormActivationQuantize,
    default_transforms.LayerReLUQuantize,
    default_transforms.LayerReluActivationQuantize,
)


class KeepWeightsLayoutTransform(default_layout.Default8BitQuantizeLayoutTransform):
    """tfmot's default 8-bit layout, ReLU after a weighted layer handled as described above."""

    def apply(self, model: Any, layer_quantize_map: dict[str, Any]) -> tuple[Any, dict]:
        transforms = [
            replacement()
            for transform in TFMOT_TRANSFORMS
            for replacement in REPLACED.get(transform, (transform,))
        ]
        return model_transformer.ModelTransformer(
            model, transforms, set(layer_quantize_map.keys()), layer_quantize_map
        ).transform()


class KeepWeightsScheme(quantize_scheme.QuantizeScheme):
    """A tfmot 8-bit scheme (the default or a collaborative one) laid out by
    :class:`KeepWeightsLayoutTransform`; its registry (which quantizers each layer gets) as is."""

    def __init__(self, scheme: quantize_scheme.QuantizeScheme | None = None) -> None:
        self.scheme = scheme or default_8bit_quantize_scheme.Default8BitQuantizeScheme()

    def get_layout_transformer(self) -> KeepWeightsLayoutTransform:
        return KeepWeightsLayoutTransform()

    def get_quantize_registry(self) -> Any:
        return self.scheme.get_quantize_registry()
