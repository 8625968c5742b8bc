"""File datasets of the reporting pipeline: an all-or-nothing text file (the HTML report, the model
cards) and CSV, both able to log where they were written (``announce``), so a run ends with the
report's and the leaderboard's paths in its log."""

from __future__ import annotations

import logging
from typing import Any

from kedro_datasets.text import TextDataset

from pediatric_emotion.datasets import AtomicCSVDataset
from pediatric_emotion.datasets.atomic import _AtomicSaveMixin

logger = logging.getLogger(__name__)


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
