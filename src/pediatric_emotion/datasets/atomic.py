"""kedro-datasets file datasets that never leave a half-written file behind.

Each class is the kedro-datasets class it names, saving inside an fsspec transaction: the file is
written to a temporary sibling and moved into place only when the whole write succeeded. A failure
mid-write leaves the previous file (or none) in place.
"""

from __future__ import annotations

from typing import Any

from kedro_datasets.json import JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset


class _AtomicSaveMixin:
    """Wrap ``save`` of an fsspec-backed kedro-datasets class in a filesystem transaction."""

    _fs: Any

    def save(self, data: Any) -> None:
        with self._fs.transaction:
            super().save(data)  # type: ignore[misc]


class AtomicParquetDataset(_AtomicSaveMixin, ParquetDataset):
    """``pandas.ParquetDataset`` with an all-or-nothing save."""


class AtomicCSVDataset(_AtomicSaveMixin, CSVDataset):
    """``pandas.CSVDataset`` with an all-or-nothing save."""


class AtomicJSONDataset(_AtomicSaveMixin, JSONDataset):
    """``json.JSONDataset`` with an all-or-nothing save."""


class AtomicMatplotlibDataset(_AtomicSaveMixin, MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` with an all-or-nothing save."""
