"""A PartitionedDataset that may be empty: a technique whose every TFLite conversion was refused
writes no file (its report row says why), and whoever reads the folder gets no partitions instead
of kedro-datasets' "No partitions found" error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro_datasets.partitions import PartitionedDataset


class OptionalPartitionedDataset(PartitionedDataset):
    """``partitions.PartitionedDataset`` whose ``load`` returns ``{}`` for a missing or empty
    folder; everything else (saving, overwrite, the partition datasets) is the stock class's."""

    def load(self) -> dict[str, Callable[[], Any]]:
        self._invalidate_caches()
        if not self._filesystem.exists(self._normalized_path) or not self._list_partitions():
            return {}
        return super().load()
