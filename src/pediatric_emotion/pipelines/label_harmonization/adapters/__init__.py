"""One adapter per native data-set layout (docs/data_sets.md), chosen by a source's ``format``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .base import DropReason, SourceAdapter, SourceLayoutError, SourceRecord
from .file_names import (
    CafeAdapter,
    DartmouthAdapter,
    FolderAdapter,
    JaffeAdapter,
    KdefAdapter,
    LirisCseAdapter,
    NimhChefsAdapter,
    RafdAdapter,
)
from .sequences import CkPlusAdapter
from .tabular import (
    AffectNetAdapter,
    CsvAdapter,
    ExpwAdapter,
    Fer2013Adapter,
    FerPlusAdapter,
    RafDbAdapter,
)

ADAPTERS: dict[str, type[SourceAdapter]] = {
    adapter.format: adapter
    for adapter in (
        Fer2013Adapter,
        FerPlusAdapter,
        CkPlusAdapter,
        JaffeAdapter,
        KdefAdapter,
        RafdAdapter,
        AffectNetAdapter,
        ExpwAdapter,
        RafDbAdapter,
        CafeAdapter,
        NimhChefsAdapter,
        DartmouthAdapter,
        LirisCseAdapter,
        FolderAdapter,
        CsvAdapter,
    )
}


def make_adapter(
    source: str, config: Mapping[str, Any], vocabulary: Iterable[str] = ()
) -> SourceAdapter:
    """The adapter for one entry of the ``sources`` parameter.

    Args:
        source: the source's name.
        config: its entry: ``format`` and ``path`` (required), ``options`` (optional); other keys
            (population, role, face_box, label_map) are for later stages and ignored here.
        vocabulary: the keys of the source's label map (for labels found as words in names).

    Raises:
        ValueError: no format or path, an unknown format or an unknown option.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"source {source!r}: expected a mapping with format and path: {config!r}")
    known = ", ".join(sorted(ADAPTERS))
    fmt = config.get("format")
    if not fmt:
        raise ValueError(f"source {source!r}: `format` is required (known formats: {known})")
    if not isinstance(fmt, str) or fmt not in ADAPTERS:
        raise ValueError(f"source {source!r}: unknown format {fmt!r} (known formats: {known})")
    path = config.get("path")
    if path is None or str(path).strip() == "":
        raise ValueError(f"source {source!r}: `path` (the source's root folder) is required")
    options = config.get("options") or {}
    if not isinstance(options, Mapping):
        raise ValueError(f"source {source!r}: `options` must be a mapping: {options!r}")
    return ADAPTERS[fmt](source, path, options, vocabulary)


__all__ = [
    "ADAPTERS",
    "DropReason",
    "SourceAdapter",
    "SourceLayoutError",
    "SourceRecord",
    "make_adapter",
]
