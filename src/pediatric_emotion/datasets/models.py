"""A Keras model file that may be absent on purpose: pruning or clustering a model can be
unsupported (its report row says why), and Kedro refuses to save None, so such a node returns
:class:`NoModel` and the file is removed; loading an absent file gives None, which the techniques
that start from it (PQAT, CQAT, PCQAT) turn into an ``unsupported`` row of their own.

Imports TensorFlow (kedro-datasets' TensorFlowModelDataset): not re-exported from
``pediatric_emotion.datasets``, so data-only code does not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kedro.io.core import get_filepath_str
from kedro_datasets.tensorflow import TensorFlowModelDataset


@dataclass(frozen=True)
class NoModel:
    """What a node returns in place of a model it could not make, with the reason."""

    reason: str


class OptionalTensorFlowModelDataset(TensorFlowModelDataset):
    """``tensorflow.TensorFlowModelDataset`` that saves :class:`NoModel` as no file (removing an
    older one, so no stale model is picked up) and loads None while the file does not exist."""

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
