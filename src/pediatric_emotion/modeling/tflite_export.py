"""Keras classifier -> TFLite flatbuffer, and the spec an app needs to run it.

Quantizations (``optimization_summary.quantization``):

- ``float32``: plain conversion;
- ``dynamic_range``: weights int8, activations float (no representative data);
- ``float16``: weights float16;
- ``int8``: full integer (weights and activations int8, integer-only ops) with int8 or uint8
  input and output; post-training from representative images, or from the ranges a
  quantization-aware model learned.

The spec (:func:`tflite_spec`) says everything needed to feed the file without this code: class
labels in output order, the input size and colour order, the pixel scaling
(``x = pixel * scale + offset`` on RGB 0-255 pixels), the input/output quantization parameters,
and how the face crop was made (:func:`pediatric_emotion.faces.align.crop_spec`: size, margin,
and whether the eyes were levelled).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from pediatric_emotion.faces.align import crop_spec
from pediatric_emotion.modeling.inputs import Preprocessing
from pediatric_emotion.modeling.quantizable import CUSTOM_OBJECTS
from pediatric_emotion.modeling.tflite_inspection import (
    editable_model,
    input_output_details,
    pack_model,
)

logger = logging.getLogger(__name__)

QUANTIZATIONS: tuple[str, ...] = ("float32", "dynamic_range", "float16", "int8")
IO_DTYPES: dict[str, Any] = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}
SPEC_FORMAT = "pediatric_emotion.tflite_spec/1"


def _inference_converter(model: keras.Model) -> tf.lite.TFLiteConverter:
    """A converter of ``model``'s inference graph alone, signed as Keras signs a model (input and
    output named after the model's).

    ``TFLiteConverter.from_keras_model`` first saves the whole Keras model as a SavedModel: every
    layer's call traced for training and for inference. For a quantization-aware model the
    training traces are the heavy part (tfmot's sparsity masks are constants in each of them):
    NASNetMobile's PCQAT model took 12.7 min and 16 GB to convert that way. Here the converter
    gets one inference function and the variables it reads; the file computes the same (outputs
    equal, byte for byte, on MobileNetV2 PCQAT).

    The function is frozen (its variables made constants) and converted as a graph, instead of
    the converter's default of saving it as a SavedModel and loading that back first: the same
    outputs (tested), 2.5-3x faster (NASNetMobile with one block per stage at 64 px: float32
    8 s -> 3 s, its QAT int8 file 32 s -> 12 s). That route writes no signature:
    :func:`_signed` adds Keras's."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"{model.name}: one input and one output expected")
    (input_name,), (output_name,) = model.input_names, model.output_names
    spec = tf.TensorSpec([None, *model.input_shape[1:]], model.inputs[0].dtype, name=input_name)

    @tf.function(input_signature=[spec])
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {output_name: model(image, training=False)}

    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        function = serve.get_concrete_function()
    holder = tf.Module()  # keeps the variables alive for the converter: nothing else is saved
    holder.model_variables = list(model.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], holder)
    converter.experimental_lower_to_saved_model = False
    return converter


def _signed(content: bytes, model: keras.Model) -> bytes:
    """``content`` with the ``serving_default`` signature the SavedModel route writes: the
    model's input and output names mapped to the graph's input and output tensors."""
    from tensorflow.lite.python import schema_py_generated as schema_fb

    flatbuffer = editable_model(content)
    if flatbuffer.signatureDefs:
        return content
    subgraph = flatbuffer.subgraphs[0]

    def tensor_map(name: str, index: int) -> Any:
        entry = schema_fb.TensorMapT()
        entry.name, entry.tensorIndex = name.encode("utf-8"), int(index)
        return entry

    signature = schema_fb.SignatureDefT()
    signature.signatureKey = b"serving_default"
    signature.subgraphIndex = 0
    signature.inputs = [tensor_map(model.input_names[0], subgraph.inputs[0])]
    signature.outputs = [tensor_map(model.output_names[0], subgraph.outputs[0])]
    flatbuffer.signatureDefs = [signature]
    return pack_model(flatbuffer)


def convert_to_tflite(
    model: keras.Model,
    quantization: str,
    *,
    representative_images: np.ndarray | None = None,
    io_dtype: str = "int8",
    quantization_aware: bool = False,
    per_channel: bool = True,
) -> bytes:
    """Convert ``model`` to a TFLite flatbuffer with one of :data:`QUANTIZATIONS`.

    ``int8`` needs ``representative_images`` (model-ready float32 inputs, a few hundred at most;
    a ``quantization_aware`` model keeps the ranges it learned). ``io_dtype`` is the int8
    file's input and output type: int8, uint8 or float32 (float in and out, int8 inside).
    ``per_channel: False`` quantizes post-training weights with one scale per tensor instead of
    one per output channel: a smaller file (no float32 scale and int64 zero point per channel),
    usually at some accuracy cost; quantization-aware models keep their own (per-channel)
    quantizers.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"io_dtype must be one of {sorted(IO_DTYPES)}, got {io_dtype!r}")
    if quantization_aware and quantization != "int8":
        raise ValueError("a quantization-aware model converts to int8 only")
    converter = _inference_converter(model)
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # the converter's only switch for this (TF 2.21); without it weights are per channel
        converter._experimental_disable_per_channel = not per_channel
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        # The converter wants representative data for integer-only ops even from a
        # quantization-aware model (it calibrates only what the model did not learn).
        if representative_images is None or len(representative_images) == 0:
            raise ValueError("int8 conversion needs representative images")
        images = np.asarray(representative_images, dtype=np.float32)

        def representative() -> Iterator[list[np.ndarray]]:
            for image in images:
                yield [image[np.newaxis]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = IO_DTYPES[io_dtype]
        converter.inference_output_type = IO_DTYPES[io_dtype]
    content = _signed(converter.convert(), model)
    logger.debug("%s -> TFLite %s: %d bytes", model.name, quantization, len(content))
    return content


def tflite_spec(
    content: bytes,
    *,
    labels: list[str],
    preprocessing: Preprocessing,
    face_crop: Mapping[str, Any],
    description: Mapping[str, Any],
) -> dict[str, Any]:
    """The spec of one TFLite file: what to feed it and how to read what it returns.

    ``description`` (architecture, variant, technique, quantization, ...) is copied in as is.
    """
    details = input_output_details(content)
    inputs, outputs = details["input"], details["output"]
    if outputs["shape"][-1] != len(labels):
        raise ValueError(
            f"the model has {outputs['shape'][-1]} outputs but {len(labels)} labels were given"
        )
    return {
        "format": SPEC_FORMAT,
        **dict(description),
        "labels": list(labels),
        "input": {
            **inputs,
            "colour_order": "RGB",
            "layout": "NHWC",
            "pixel_range": [0, 255],
            "scale": preprocessing.scale,
            "offset": preprocessing.offset,
            "recipe": (
                "crop the face as in face_crop, resize to the input size (bilinear, "
                "antialiased), x = pixel * scale + offset; for an int8/uint8 input, "
                "q = round(x / quantization.scale + quantization.zero_point)"
            ),
        },
        "output": {
            **outputs,
            "activation": "softmax",
            "recipe": "for int8/uint8: p = (q - quantization.zero_point) * quantization.scale",
        },
        "face_crop": crop_spec({"size": preprocessing.image_size, "margin": 0.0, **face_crop}),
    }
