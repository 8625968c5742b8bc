"""Keras model files, saved whole or not at all, and a model file that may be absent on purpose.

:class:`AtomicTensorFlowModelDataset` is kedro-datasets' ``tensorflow.TensorFlowModelDataset``
saving into a temporary sibling of the target that is renamed over it once complete (the stock
class copies from a temporary folder onto the target, so an interrupted copy leaves a truncated
model there). :class:`OptionalTensorFlowModelDataset` adds the absent model: pruning or clustering
a model can be unsupported (its report row says why), and Kedro refuses to save None, so such a
node returns :class:`NoModel` and the file is removed; loading an absent file gives None, which
the techniques that start from it (PQAT, CQAT, PCQAT) turn into an ``unsupported`` row of their
own.

Imports TensorFlow (kedro-datasets' TensorFlowModelDataset): not re-exported from
``pediatric_emotion.datasets``, so data-only code does not pay for it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io.core import get_filepath_str
from kedro_datasets.tensorflow import TensorFlowModelDataset


@dataclass(frozen=True)
class NoModel:
    """What a node returns in place of a model it could not make, with the reason."""

    reason: str


class AtomicTensorFlowModelDataset(TensorFlowModelDataset):
    """``tensorflow.TensorFlowModelDataset`` with an all-or-nothing save.

    On the local filesystem the model is written to ``.{name}.partial-{token}.keras`` (``.h5``
    with ``save_format: h5``) in the target's folder and moved over the target with
    ``os.replace``; a failed or interrupted save leaves the previous file (or none) and removes
    its partial file. Other protocols keep the stock save (object stores write an object whole).
    Versioning works as in the stock class: the partial file sits in the version's folder.
    """

    def save(self, data: Any) -> None:
        if self._protocol != "file":
            super().save(data)
            return
        target = Path(get_filepath_str(self._get_save_path(), self._protocol))
        target.parent.mkdir(parents=True, exist_ok=True)
        suffix = ".h5" if self._is_h5 else ".keras"  # Keras picks the format by the suffix
        partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}{suffix}")
        try:
            data.save(str(partial), **self._save_args)
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        finally:
            self._invalidate_cache()


class OptionalTensorFlowModelDataset(AtomicTensorFlowModelDataset):
    """``AtomicTensorFlowModelDataset`` that saves :class:`NoModel` as no file (removing an older
    one, so no stale model is picked up) and loads None while the file does not exist."""

    def load(self) -> Any:
        if not self._exists():
            return None
        return super().load()

    def save(self, data: Any) -> None:
        if isinstance(data, NoModel):
            path = get_filepath_str(self._get_save_path(), self._protocol)
            if self._fs.exists(path):
                self._fs.rm(path)
            self._invalidate_cache()
            return
        super().save(data)
