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
tfmot's behaviour.

tfmot's ``ConcatTransform`` family (quantize only after a ``Concatenate``) gives each weighted
layer feeding the concatenation the *default* registry's quantize config, whatever the scheme:
under PQAT / CQAT / PCQAT those layers lose their sparsity- or cluster-preserving weight quantizer
(NASNetMobile's ``adjust_conv`` 1x1 convolutions, which feed a concatenation: 0.12-0.32 zeros left
after PQAT, up to 148 values per channel after CQAT). Here the same transforms run, and each such
layer then gets the scheme's own config, its output quantization disabled as tfmot intends.
Every other transform is tfmot's own, in tfmot's order.
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
_WEIGHTED_CLASSES = frozenset(_WEIGHTED.split("|"))


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


class SchemeConcat:
    """Mixin for tfmot's concatenation transforms: records the weighted layers to which the
    transform gave the default registry's config, so that the layout can give them the scheme's
    (:class:`KeepWeightsLayoutTransform`)."""

    def __init__(self, rebind: set[str]) -> None:
        super().__init__()
        self.rebind = rebind

    def replacement(self, match_layer: Any) -> Any:
        inputs = match_layer.input_layers
        unset = [node for node in inputs if not node.metadata.get("quantize_config")]
        result = super().replacement(match_layer)  # type: ignore[misc]
        for node in unset:
            if (
                node.layer["class_name"] in _WEIGHTED_CLASSES
                and node.metadata.get("quantize_config") is not None
            ):
                self.rebind.add(node.layer["config"]["name"])
        return result


class ConcatQuantize(SchemeConcat, default_transforms.ConcatTransform):
    """tfmot's ``ConcatTransform``, feeding layers recorded."""


class Concat3Quantize(SchemeConcat, default_transforms.ConcatTransform3Inputs):
    """tfmot's ``ConcatTransform3Inputs``, feeding layers recorded."""


class Concat4Quantize(SchemeConcat, default_transforms.ConcatTransform4Inputs):
    """tfmot's ``ConcatTransform4Inputs``, feeding layers recorded."""


class Concat5Quantize(SchemeConcat, default_transforms.ConcatTransform5Inputs):
    """tfmot's ``ConcatTransform5Inputs``, feeding layers recorded."""


class Concat6Quantize(SchemeConcat, default_transforms.ConcatTransform6Inputs):
    """tfmot's ``ConcatTransform6Inputs``, feeding layers recorded."""


# tfmot 0.8's Default8BitQuantizeLayoutTransform.apply list, the ReLU transforms replaced
# (tests/modeling/test_quantize_layout.py checks it against the installed tfmot).
REPLACED = {
    default_transforms.LayerReLUQuantize: (AddReLUQuantize, WeightedReLUQuantize),
    default_transforms.LayerReluActivationQuantize: (
        AddReluActivationQuantize,
        WeightedReluActivationQuantize,
    ),
    default_transforms.ConcatTransform6Inputs: (Concat6Quantize,),
    default_transforms.ConcatTransform5Inputs: (Concat5Quantize,),
    default_transforms.ConcatTransform4Inputs: (Concat4Quantize,),
    default_transforms.ConcatTransform3Inputs: (Concat3Quantize,),
    default_transforms.ConcatTransform: (ConcatQuantize,),
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
    """tfmot's default 8-bit layout, a ReLU after a weighted layer and the layers feeding a
    concatenation handled as described above. ``scheme`` gives the feeding layers' configs
    (tfmot's default 8-bit scheme when None)."""

    def __init__(self, scheme: quantize_scheme.QuantizeScheme | None = None) -> None:
        super().__init__()
        self.scheme = scheme or default_8bit_quantize_scheme.Default8BitQuantizeScheme()

    def apply(self, model: Any, layer_quantize_map: dict[str, Any]) -> tuple[Any, dict]:
        rebind: set[str] = set()
        transforms = [
            replacement(rebind) if issubclass(replacement, SchemeConcat) else replacement()
            for transform in TFMOT_TRANSFORMS
            for replacement in REPLACED.get(transform, (transform,))
        ]
        transformed, quantize_map = model_transformer.ModelTransformer(
            model, transforms, set(layer_quantize_map.keys()), layer_quantize_map
        ).transform()
        for name in sorted(rebind):
            layer = transformed.get_layer(name)
            registry = self.scheme.get_quantize_registry()  # fresh configs for each layer
            if not registry.supports(layer):
                continue
            config = registry.get_quantize_config(layer)
            default_transforms.ConcatTransform()._disable_output_quantize(config)  # noqa: SLF001
            quantize_map.setdefault(name, {})["quantize_config"] = config
        return transformed, quantize_map


class KeepWeightsScheme(quantize_scheme.QuantizeScheme):
    """A tfmot 8-bit scheme (the default or a collaborative one) laid out by
    :class:`KeepWeightsLayoutTransform`; its registry (which quantizers each layer gets) as is."""

    def __init__(self, scheme: quantize_scheme.QuantizeScheme | None = None) -> None:
        self.scheme = scheme or default_8bit_quantize_scheme.Default8BitQuantizeScheme()

    def get_layout_transformer(self) -> KeepWeightsLayoutTransform:
        return KeepWeightsLayoutTransform(self.scheme)

    def get_quantize_registry(self) -> Any:
        return self.scheme.get_quantize_registry()
