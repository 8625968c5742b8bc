"""A TFLite file as an MLflow pyfunc model: face crops in, emotions out, through LiteRT.

The model is the ``.tflite`` file alone (logged as the artifact ``tflite``): its embedded spec
says how to feed it and what its outputs are (:func:`pediatric_emotion.datasets.load_tflite`),
and it runs through the same LiteRT runner evaluation uses
(:func:`pediatric_emotion.modeling.tflite_runner.tflite_probabilities`), so ``mlflow models
serve`` answers with the classes evaluation reported.

Input: a DataFrame with a column ``image`` (or a single column) of base64-encoded face crops
(PNG, JPEG, ...: anything :func:`pediatric_emotion.images.decode_image` reads), already cropped
as the spec's ``face_crop`` says (``pediatric-emotion predict`` finds and crops faces in whole
pictures; this model does not). Output: a DataFrame with ``emotion`` and one ``p_<label>``
column per label of the spec, in its order.

Imported by the tracking hook when it registers the recommended file (tracking/registry.py),
never by the pipelines.
"""

from __future__ import annotations

import base64
import binascii
import os
from importlib import metadata
from typing import Any

import mlflow
import numpy as np
import pandas as pd

IMAGE_COLUMN = "image"
"""The input column of base64-encoded crops."""

ARTIFACT = "tflite"
"""The artifact key of the TFLite file in the logged model."""

RUNTIME_PACKAGES = (
    "ai-edge-litert",
    "tensorflow",  # reads the spec embedded in the flatbuffer (schema_py_generated)
    "kedro",
    "numpy",
    "pandas",
    "pillow",
    "opencv-python-headless",
    "tqdm",
    "fsspec",
)
"""What the pyfunc imports besides MLflow and this package (pinned to the installed versions)."""


def _pinned(package: str) -> str:
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return package


def pip_requirements() -> list[str]:
    """The model's pip requirements: MLflow and :data:`RUNTIME_PACKAGES` at their installed
    versions. ``pediatric_emotion`` itself is not on PyPI: serve the model with
    ``--env-manager local`` from this project's environment."""
    return [_pinned("mlflow"), *(_pinned(p) for p in RUNTIME_PACKAGES)]


def encode_crop(data: bytes) -> str:
    """Base64 text of encoded image bytes, as the model's ``image`` column holds them."""
    return base64.b64encode(data).decode("ascii")


def _image_bytes(value: Any, row: int) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise ValueError(f"row {row}: expected base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"row {row}: not valid base64 ({error})") from None


def _image_column(frame: pd.DataFrame) -> pd.Series:
    if IMAGE_COLUMN in frame.columns:
        return frame[IMAGE_COLUMN]
    if len(frame.columns) == 1:
        return frame.iloc[:, 0]
    raise ValueError(
        f"expected a column {IMAGE_COLUMN!r} of base64-encoded face crops, got columns "
        f"{list(frame.columns)}"
    )


class TFLiteEmotionModel(mlflow.pyfunc.PythonModel):
    """Classify base64-encoded face crops with the logged TFLite file, fed as its spec says."""

    def load_context(self, context: Any) -> None:
        from pediatric_emotion.datasets import load_tflite
        from pediatric_emotion.modeling.tflite_runner import InputRecipe

        path = context.artifacts[ARTIFACT]
        model = load_tflite(path)
        self._where = os.path.basename(path)
        self._content = model.content
        self._spec = model.spec
        self._labels = list(model.spec["labels"])
        self._recipe = InputRecipe.from_spec(model.spec, self._where)

    def predict(self, context, model_input, params=None):  # no hints: MLflow reads them
        from pediatric_emotion.images import decode_image
        from pediatric_emotion.modeling.tflite_runner import tflite_probabilities

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        column = _image_column(frame)
        names = [f"row {row}" for row in range(len(column))]
        channels = 3 if self._recipe.colour == "RGB" else 1
        pixels = np.empty((len(names), self._recipe.height, self._recipe.width, channels), np.uint8)
        for row, value in enumerate(column):
            rgb = decode_image(_image_bytes(value, row), names[row])
            pixels[row] = self._recipe.fit(rgb)
        if names:
            scores = tflite_probabilities(
                self._content, self._spec, names, where=self._where, pixels=pixels
            )
        else:
            scores = np.empty((0, len(self._labels)), np.float32)
        output = pd.DataFrame(scores, columns=[f"p_{label}" for label in self._labels])
        output.insert(0, "emotion", [self._labels[i] for i in scores.argmax(axis=1)])
        return output


def _example_input() -> pd.DataFrame:
    """A gray gradient (no face, no person): the input example stored with the model."""
    from pediatric_emotion.images import encode_image

    ramp = np.linspace(0, 255, 16, dtype=np.uint8)
    image = np.stack([np.tile(ramp, (16, 1))] * 3, axis=-1)
    return pd.DataFrame({IMAGE_COLUMN: [encode_crop(encode_image(image, ".png"))]})


def log_tflite_model(
    path: str | os.PathLike[str],
    registered_model_name: str | None = None,
    tags: dict[str, Any] | None = None,
    *,
    name: str = "model",
) -> Any:
    """Log the TFLite file at ``path`` as a pyfunc model (in the active run, if any), register
    it as ``registered_model_name`` when given, and put ``tags`` on the logged model and on the
    registered version. Returns MLflow's ``ModelInfo``.

    The file must carry its spec (embedded or as a sidecar ``.json``): it is read once here, so
    a file without one is refused before anything is logged."""
    from pediatric_emotion.datasets import load_tflite
    from pediatric_emotion.modeling.tflite_runner import InputRecipe

    path = os.fspath(path)
    spec = load_tflite(path).spec
    InputRecipe.from_spec(spec, os.path.basename(path))
    tags = {str(k): str(v) for k, v in (tags or {}).items()}
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=TFLiteEmotionModel(),
        artifacts={ARTIFACT: path},
        pip_requirements=pip_requirements(),
        input_example=_example_input(),
        registered_model_name=registered_model_name,
        tags=tags or None,
    )
    if registered_model_name and tags and info.registered_model_version is not None:
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(
                registered_model_name, str(info.registered_model_version), key, value
            )
    return info
