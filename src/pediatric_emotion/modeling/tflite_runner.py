"""Run a TFLite file the way the phone app does: the LiteRT interpreter, fed exactly as its spec
says (``spec["input"]``: shape, dtype, ``x = pixel * scale + offset`` on RGB
0-255 pixels, then ``q = round(x / quantization.scale + quantization.zero_point)`` for an integer
input; ``spec["output"]``: ``p = (q - zero_point) * scale`` for an integer output).

Nothing here uses the Keras input pipeline: images are decoded by the project's one decoder
(:func:`pediatric_emotion.images.read_image`: real or printable path, pixel limit from the header)
and converted to gray or resized with Pillow (bilinear, antialiased) only when the spec's colour or
size differs, so a wrong spec shows up as wrong predictions instead of being papered over by
the training input code.

Images run in batches (the interpreter's input resized from the spec's ``[1, h, w, c]`` to
``[batch, h, w, c]``): the same kernels per image as one at a time, without an ``invoke`` per
image. A file whose graph cannot take another batch size (a reshape with the batch baked in)
runs one image at a time, as the phone does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from pediatric_emotion.images import read_image

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter

logger = logging.getLogger(__name__)

DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float16": np.float16,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
}
COLOURS = {"RGB": ("RGB", 3), "GRAY": ("L", 1), "L": ("L", 1)}


def check_spec_labels(spec: dict[str, Any], emotions: Sequence[str], where: str) -> None:
    """Raise unless the file's labels are ``emotions`` in the same order."""
    labels = list(spec.get("labels") or [])
    if labels != list(emotions):
        raise ValueError(
            f"{where}: the spec's labels {labels} differ from params:emotions {list(emotions)}; "
            "its outputs would be read as the wrong classes"
        )


def _quantization(section: dict[str, Any]) -> tuple[float, int]:
    quantization = section.get("quantization") or {}
    return float(quantization.get("scale", 0.0) or 0.0), int(quantization.get("zero_point", 0) or 0)


@dataclass(frozen=True)
class InputRecipe:
    """What the spec says to feed: size, colour order, scaling, dtype and quantization."""

    height: int
    width: int
    colour: str
    dtype: str
    scale: float
    offset: float
    quantization_scale: float
    zero_point: int

    @classmethod
    def from_spec(cls, spec: dict[str, Any], where: str) -> InputRecipe:
        """Read ``spec["input"]``; a missing or odd field is an error naming ``where``."""
        section = spec.get("input")
        if not isinstance(section, dict):
            raise ValueError(f"{where}: the spec has no 'input' section")
        missing = [key for key in ("shape", "dtype", "scale", "offset") if key not in section]
        if missing:
            raise ValueError(f"{where}: spec['input'] lacks {missing}")
        shape = list(section["shape"])
        colour = str(section.get("colour_order", "RGB")).upper()
        if colour not in COLOURS:
            raise ValueError(f"{where}: unknown colour_order {colour!r}")
        if len(shape) != 4 or shape[0] != 1 or shape[3] != COLOURS[colour][1]:
            raise ValueError(
                f"{where}: spec input shape {shape} is not [1, height, width, "
                f"{COLOURS[colour][1]}] ({colour})"
            )
        dtype = str(section["dtype"])
        if dtype not in DTYPES:
            raise ValueError(f"{where}: unsupported input dtype {dtype!r}")
        quantization_scale, zero_point = _quantization(section)
        if np.issubdtype(DTYPES[dtype], np.integer) and quantization_scale <= 0:
            raise ValueError(f"{where}: {dtype} input without a positive quantization scale")
        return cls(
            height=int(shape[1]),
            width=int(shape[2]),
            colour=colour,
            dtype=dtype,
            scale=float(section["scale"]),
            offset=float(section["offset"]),
            quantization_scale=quantization_scale,
            zero_point=zero_point,
        )

    def read(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Decode a file to uint8 [height, width, channels] (resized only if its size differs).

        Decoded by :func:`pediatric_emotion.images.read_image` (an unreadable file, or one over
        its default pixel limit, raises its ``UnreadableImageError``); Pillow converts to gray
        and resizes."""
        return self.fit(read_image(path))

    def fit(self, rgb: np.ndarray) -> np.ndarray:
        """Decoded RGB uint8 pixels [h, w, 3] as :meth:`read` gives them: converted to gray
        and resized with Pillow only where the spec's colour or size differs."""
        mode, channels = COLOURS[self.colour]
        if mode == "RGB" and rgb.shape[:2] == (self.height, self.width):
            return rgb
        image = Image.fromarray(rgb).convert(mode)
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
        return pixels.reshape(self.height, self.width, channels)

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """[1, h, w, c] input tensor from uint8 pixels: scaled, then quantized if integer."""
        return self.prepare_batch(pixels[np.newaxis])

    def prepare_batch(self, pixels: np.ndarray) -> np.ndarray:
        """[n, h, w, c] input tensor from uint8 pixels [n, h, w, c], as :meth:`prepare`."""
        x = pixels.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        dtype = DTYPES[self.dtype]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            q = np.round(x / np.float32(self.quantization_scale) + self.zero_point)
            return np.clip(q, info.min, info.max).astype(dtype)
        return x.astype(dtype)

    def read_all(self, paths: Sequence[str | os.PathLike[str]], *, where: str = "") -> np.ndarray:
        """Every image of ``paths`` decoded by :meth:`read`: uint8 [images, h, w, c]."""
        channels = COLOURS[self.colour][1]
        pixels = np.empty((len(paths), self.height, self.width, channels), dtype=np.uint8)
        for row, path in enumerate(
            tqdm(paths, desc=f"{where} decode".strip(), unit="img", disable=None, leave=False)
        ):
            pixels[row] = self.read(path)
        return pixels


def dequantize_output(raw: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Float class scores from the raw output tensor, as ``spec["output"]`` says."""
    section = spec.get("output") or {}
    if np.issubdtype(raw.dtype, np.integer):
        scale, zero_point = _quantization(section)
        if scale <= 0:
            raise ValueError("integer output without a positive quantization scale in the spec")
        return (raw.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
    return raw.astype(np.float32)


def _check_against_interpreter(
    details: dict[str, Any], spec: dict[str, Any], side: str, where: str
) -> None:
    """The spec must describe the file: same shape, dtype and quantization as the interpreter."""
    section = spec.get(side) or {}
    actual_dtype = np.dtype(details["dtype"]).name
    if "dtype" in section and str(section["dtype"]) != actual_dtype:
        raise ValueError(
            f"{where}: spec {side} dtype {section['dtype']} but the file's is {actual_dtype}"
        )
    if "shape" in section and list(section["shape"]) != [int(v) for v in details["shape"]]:
        raise ValueError(
            f"{where}: spec {side} shape {section['shape']} but the file's is "
            f"{[int(v) for v in details['shape']]}"
        )
    scale, zero_point = details.get("quantization", (0.0, 0))
    spec_scale, spec_zero_point = _quantization(section)
    if np.issubdtype(np.dtype(details["dtype"]), np.integer) and (
        not np.isclose(spec_scale, scale, rtol=1e-6, atol=0) or spec_zero_point != zero_point
    ):
        raise ValueError(
            f"{where}: spec {side} quantization ({spec_scale}, {spec_zero_point}) but the file's "
            f"is ({scale}, {zero_point})"
        )


def litert_interpreter(content: bytes, num_threads: int | None = None) -> Interpreter:
    """A LiteRT interpreter over the TFLite file's bytes (``num_threads``: None, LiteRT's default).
    Tensors are not allocated yet. Every interpreter built from model bytes is made here."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=bytes(content), num_threads=num_threads)


DEFAULT_BATCH_SIZE = 32
"""Images per ``invoke`` unless the caller says otherwise (1: one at a time)."""


def _batched(interpreter: Any, input_index: int, shape: Sequence[int], batch: int) -> int:
    """Resize the input to ``batch`` images and allocate; the batch size that took (1 where the
    graph refuses another batch size: the interpreter is put back to its single-image shape)."""
    if batch <= 1:
        return 1
    try:
        interpreter.resize_tensor_input(input_index, [batch, *shape[1:]], strict=True)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as err:
        logger.info("LiteRT refused batches of %d (%s): one image per invoke", batch, err)
        interpreter.resize_tensor_input(input_index, list(shape), strict=True)
        interpreter.allocate_tensors()
        return 1
    return batch


def tflite_probabilities(
    content: bytes,
    spec: dict[str, Any],
    paths: Sequence[str | os.PathLike[str]],
    *,
    where: str,
    num_threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pixels: np.ndarray | None = None,
) -> np.ndarray:
    """Class scores [images, classes] from the LiteRT interpreter, ``batch_size`` images per
    invoke (1: one at a time, exactly as an app calls it). ``pixels``: the images already
    decoded by :meth:`InputRecipe.read_all` ([images, h, w, c] uint8, in the order of ``paths``), so
    several files of one cell decode them once."""
    recipe = InputRecipe.from_spec(spec, where)
    interpreter = litert_interpreter(content, num_threads)
    interpreter.allocate_tensors()
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"{where}: expected one input and one output tensor")
    _check_against_interpreter(inputs[0], spec, "input", where)
    _check_against_interpreter(outputs[0], spec, "output", where)
    input_index, output_index = inputs[0]["index"], outputs[0]["index"]
    if pixels is not None and len(pixels) != len(paths):
        raise ValueError(f"{where}: {len(pixels)} decoded images for {len(paths)} paths")
    batch = _batched(
        interpreter, input_index, inputs[0]["shape"], min(int(batch_size), max(1, len(paths)))
    )
    scores = np.empty((len(paths), int(outputs[0]["shape"][-1])), dtype=np.float32)
    with tqdm(total=len(paths), desc=where, unit="img", disable=None, leave=False) as progress:
        for start in range(0, len(paths), batch):
            stop = min(start + batch, len(paths))
            images = (
                pixels[start:stop]
                if pixels is not None
                else np.stack([recipe.read(path) for path in paths[start:stop]])
            )
            tensor = recipe.prepare_batch(images)
            if len(tensor) < batch:  # the last, short batch: padded, the padding ignored
                tensor = np.concatenate(
                    [tensor, np.zeros((batch - len(tensor), *tensor.shape[1:]), tensor.dtype)]
                )
            interpreter.set_tensor(input_index, tensor)
            interpreter.invoke()
            raw = interpreter.get_tensor(output_index)
            scores[start:stop] = dequantize_output(raw, spec)[: stop - start]
            progress.update(stop - start)
    logger.info(
        "%s: %d images through the LiteRT interpreter (%d per invoke)", where, len(paths), batch
    )
    return scores
