"""A TFLite model and its preprocessing spec, saved as one unit.

The spec (a JSON-able dict: labels, input size, normalisation, ...) travels three ways:

* embedded in the flatbuffer's ``metadata`` table under :data:`SPEC_METADATA_NAME` (a Metadata entry
  pointing at a Buffer holding the JSON), so the ``.tflite`` file alone is self-describing;
* as a sidecar ``<model>.json`` (indent 2, sorted keys), readable without TFLite tooling;
* as ``<model>.labels.txt``, one label per line (the Android convention).

All three files are written in one fsspec transaction: a failure leaves none of them behind.
Embedding a spec does not change how the model runs: the interpreter ignores metadata entries.
"""

from __future__ import annotations

import json
import logging
import os
from copy import deepcopy
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import fsspec
import numpy as np
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str, get_protocol_and_path

logger = logging.getLogger(__name__)

SPEC_METADATA_NAME = "pediatric_emotion.spec"
"""Name of the flatbuffer metadata entry holding the spec as UTF-8 JSON."""

_TFLITE_IDENTIFIER = b"TFL3"
_FLATBUFFER_LIMIT = 2**31 - 2**20  # the Python flatbuffers builder stops at 2 GB


@dataclass(frozen=True)
class TFLiteModel:
    """A TFLite flatbuffer and its spec (a JSON-able dict with at least ``"labels"``)."""

    content: bytes
    spec: dict[str, Any]


def _check_flatbuffer(content: bytes) -> None:
    if len(content) < 8 or bytes(content[4:8]) != _TFLITE_IDENTIFIER:
        raise ValueError("not a TFLite flatbuffer (file identifier 'TFL3' missing)")


def _decoded_name(name: bytes | str | None) -> str | None:
    return name.decode("utf-8") if isinstance(name, bytes) else name


def embed_spec(content: bytes, spec: dict[str, Any]) -> bytes:
    """Return ``content`` with ``spec`` stored as JSON in its metadata, replacing an earlier spec.

    Models whose buffers live outside the flatbuffer (``buffer_location`` offsets, written for
    models over 2 GB) are rewritten with the buffers inline, which only works below 2 GB.
    """
    from tensorflow.lite.python import schema_py_generated as schema_fb

    from pediatric_emotion.modeling.tflite_inspection import editable_model, pack_model

    _check_flatbuffer(content)
    payload = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode("utf-8")
    model = editable_model(content)  # offset buffers inlined, as numpy arrays
    if sum(0 if b.data is None else len(b.data) for b in model.buffers) >= _FLATBUFFER_LIMIT:
        raise ValueError("model weights exceed 2 GB: they cannot be stored inside a flatbuffer")
    if model.metadata:
        # The offsets were inlined above: drop the marker saying buffers sit after the flatbuffer.
        model.metadata = [m for m in model.metadata if _decoded_name(m.name) != "buffer_location"]
    else:
        model.metadata = []

    new_buffer = schema_fb.BufferT()
    new_buffer.data = np.frombuffer(payload, dtype=np.uint8)
    entry = next((m for m in model.metadata if _decoded_name(m.name) == SPEC_METADATA_NAME), None)
    if entry is not None and _buffer_used_only_by(model, entry.buffer, entry):
        model.buffers[entry.buffer] = new_buffer
    else:
        model.buffers.append(new_buffer)
        if entry is None:
            entry = schema_fb.MetadataT()
            entry.name = SPEC_METADATA_NAME
            model.metadata.append(entry)
        entry.buffer = len(model.buffers) - 1
    return pack_model(model)


def _buffer_used_only_by(model: Any, index: int, entry: Any) -> bool:
    if index == 0 or index >= len(model.buffers):
        return False
    if any(m is not entry and m.buffer == index for m in model.metadata):
        return False
    return all(t.buffer != index for subgraph in model.subgraphs for t in subgraph.tensors or [])


def read_embedded_spec(content: bytes) -> dict[str, Any] | None:
    """The spec embedded by :func:`embed_spec`, or ``None`` if the model has none."""
    from tensorflow.lite.python import schema_py_generated as schema_fb

    _check_flatbuffer(content)
    model = schema_fb.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _decoded_name(entry.Name()) != SPEC_METADATA_NAME:
            continue
        buffer = model.Buffers(entry.Buffer())
        if buffer.Offset() > 1:  # stored after the flatbuffer
            payload = bytes(content[buffer.Offset() : buffer.Offset() + buffer.Size()])
        else:
            payload = buffer.DataAsNumpy().tobytes() if not buffer.DataIsNone() else b""
        try:
            spec = json.loads(payload.decode("utf-8"))
        except ValueError as error:
            raise ValueError(
                f"embedded '{SPEC_METADATA_NAME}' is not valid JSON: {error}"
            ) from None
        if not isinstance(spec, dict):
            raise ValueError(f"embedded '{SPEC_METADATA_NAME}' is not a JSON object")
        return spec
    return None


def _checked_labels(spec: Any, where: str) -> list[str]:
    if not isinstance(spec, dict) or "labels" not in spec:
        raise DatasetError(f"{where}: the spec has no 'labels' (list of class names)")
    labels = spec["labels"]
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(label, str) and label and "\n" not in label for label in labels)
    ):
        raise DatasetError(
            f"{where}: spec 'labels' must be a non-empty list of one-line strings, got {labels!r}"
        )
    return labels


class TFLiteModelDataset(AbstractDataset[TFLiteModel, TFLiteModel]):
    """Save a :class:`TFLiteModel` as ``.tflite`` (spec embedded) + ``.json`` + ``.labels.txt``.

    Loading reads the ``.tflite`` and its ``.json`` sidecar, or the embedded spec when the sidecar
    is missing. Works as the ``dataset`` of a ``PartitionedDataset`` with
    ``filename_suffix: ".tflite"`` (the suffix keeps the sidecars from being taken as partitions).

    Example catalog entry::

        tflite_models:
          type: partitions.PartitionedDataset
          path: data/06_models/tflite
          dataset: pediatric_emotion.datasets.TFLiteModelDataset
          filename_suffix: ".tflite"
    """

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """``credentials`` and ``fs_args`` go to ``fsspec.filesystem`` (PartitionedDataset
        passes its own down)."""
        _fs_args = deepcopy(fs_args) or {}
        protocol, path = get_protocol_and_path(filepath)
        if protocol == "file":
            _fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(deepcopy(credentials) or {}), **_fs_args)
        self.metadata = metadata

    @property
    def _spec_path(self) -> PurePosixPath:
        return self._filepath.with_suffix(".json")

    @property
    def _labels_path(self) -> PurePosixPath:
        return self._filepath.with_name(f"{self._filepath.stem}.labels.txt")

    def _str(self, path: PurePosixPath) -> str:
        return get_filepath_str(path, self._protocol)

    def load(self) -> TFLiteModel:
        model_path = self._str(self._filepath)
        with self._fs.open(model_path, "rb") as file:
            content = file.read()
        embedded = read_embedded_spec(content)
        spec_path = self._str(self._spec_path)
        if self._fs.exists(spec_path):
            with self._fs.open(spec_path, "rb") as file:
                spec = json.loads(file.read().decode("utf-8"))
            if embedded is not None and embedded != spec:
                logger.warning(
                    "%s: the sidecar spec differs from the spec embedded in %s; using the sidecar",
                    spec_path,
                    model_path,
                )
        elif embedded is not None:
            spec = embedded
        else:
            raise DatasetError(
                f"{model_path}: the model has no preprocessing spec (no sidecar {spec_path} and "
                f"no '{SPEC_METADATA_NAME}' metadata in the flatbuffer)"
            )
        _checked_labels(spec, model_path)
        return TFLiteModel(content=content, spec=spec)

    def save(self, data: TFLiteModel) -> None:
        model_path = self._str(self._filepath)
        if self._spec_path == self._filepath:
            raise DatasetError(f"{model_path}: the model file would be its own .json sidecar")
        labels = _checked_labels(data.spec, model_path)
        try:
            content = embed_spec(data.content, data.spec)
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{model_path}: cannot embed the spec: {error}") from error
        sidecar = json.dumps(data.spec, indent=2, sort_keys=True) + "\n"
        files = [
            (model_path, content),
            (self._str(self._spec_path), sidecar.encode("utf-8")),
            (self._str(self._labels_path), "".join(f"{x}\n" for x in labels).encode("utf-8")),
        ]
        with self._fs.transaction:
            for path, payload in files:
                with self._fs.open(path, "wb") as file:
                    file.write(payload)
        for path, _ in files:
            self._fs.invalidate_cache(path)

    def _exists(self) -> bool:
        return self._fs.exists(self._str(self._filepath))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol}


def load_tflite(path: str | os.PathLike[str]) -> TFLiteModel:
    """Read a ``.tflite`` file and its spec the way :class:`TFLiteModelDataset` does."""
    return TFLiteModelDataset(filepath=str(path)).load()
