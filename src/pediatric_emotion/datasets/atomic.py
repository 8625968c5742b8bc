"""kedro-datasets file datasets that never leave a half-written file behind.

Each class is the kedro-datasets class it names, saving inside an fsspec transaction: the file is
written to a temporary sibling and moved into place only when the whole write succeeded. A failure
mid-write leaves the previous file (or none) in place.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro_datasets.json import JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset
from kedro_datasets.text import TextDataset

logger = logging.getLogger(__name__)


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


class OptionalJSONDataset(AtomicJSONDataset):
    """``AtomicJSONDataset`` whose ``load`` gives None while the file does not exist yet (a report
    of a node that has not run), so a grid-wide summary can say what is missing."""

    def load(self) -> Any:
        if not self._exists():
            return None
        return super().load()


class AtomicMatplotlibDataset(_AtomicSaveMixin, MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` with an all-or-nothing save."""


class _AnnounceMixin:
    """After a successful save, log ``"{announce}: {path}"`` when ``announce`` is set."""

    _filepath: Any

    def __init__(self, *args: Any, announce: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self._announce = announce

    def save(self, data: Any) -> None:
        super().save(data)  # type: ignore[misc]
        if self._announce:
            logger.info("%s: %s", self._announce, self._filepath)


class AtomicTextDataset(_AnnounceMixin, _AtomicSaveMixin, TextDataset):
    """``text.TextDataset`` with an all-or-nothing save (UTF-8) and an optional announcement."""


class AnnouncedCSVDataset(_AnnounceMixin, AtomicCSVDataset):
    """``AtomicCSVDataset`` that logs its path after each save when ``announce`` is set."""
