"""A folder of files saved as one unit: a raw data set in its native layout, or a folder of crops.

Saving takes a mapping of relative path -> file content (``bytes``, or a zero-argument callable
returning bytes, called one at a time so that content can be produced lazily). The files are written
into a temporary sibling folder, which replaces the target folder only once every file is written;
a failure leaves the previous folder untouched and removes the partial one. A process killed
between the two renames leaves its swap folders (``.{name}.partial-*``, ``.{name}.old-*``)
behind: the next save of the same folder removes them first, and load never reads them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

FileContent = bytes | Callable[[], bytes]


class FileTree(Mapping[str, bytes]):
    """Read-only view of a saved folder: relative POSIX path -> bytes, read on access."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._files = sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )

    def path(self, relative_path: str) -> Path:
        """Absolute path of a file in the tree."""
        return self.root / relative_path

    def __getitem__(self, relative_path: str) -> bytes:
        if relative_path not in self._files:
            raise KeyError(relative_path)
        return self.path(relative_path).read_bytes()

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"FileTree(root={str(self.root)!r}, files={len(self)})"


def _checked_relative_path(relative_path: str) -> PurePosixPath:
    path = PurePosixPath(relative_path)
    if not relative_path or path.is_absolute() or ".." in path.parts:
        raise DatasetError(
            f"FileTreeDataset: refusing to write outside the folder: {relative_path!r}"
        )
    return path


class FileTreeDataset(AbstractDataset[Mapping[str, FileContent], FileTree]):
    """Save a mapping of relative path -> bytes as a folder, atomically; load it as a ``FileTree``.

    Example catalog entry::

        face_crops:
          type: pediatric_emotion.datasets.FileTreeDataset
          path: data/02_intermediate/face_crops
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> FileTree:
        if not self._path.is_dir():
            raise DatasetError(f"FileTreeDataset: folder {self._path} does not exist")
        return FileTree(self._path)

    def _swap_folder(self, kind: str) -> Path:
        """A new sibling for a save: ``.{name}.partial-{token}`` or ``.{name}.old-{token}``."""
        return self._path.parent / f".{self._path.name}.{kind}-{uuid.uuid4().hex[:8]}"

    def _stale_swap_folders(self) -> list[Path]:
        """Swap folders of this target left behind by a save that was killed mid-way."""
        pattern = re.compile(rf"\.{re.escape(self._path.name)}\.(partial|old)-[0-9a-f]{{8}}")
        return sorted(p for p in self._path.parent.iterdir() if pattern.fullmatch(p.name))

    def save(self, data: Mapping[str, FileContent]) -> None:
        parent = self._path.parent
        parent.mkdir(parents=True, exist_ok=True)
        for stale in self._stale_swap_folders():
            logger.info("FileTreeDataset: removing %s, left by an interrupted save", stale)
            shutil.rmtree(stale, ignore_errors=True)
        staging = self._swap_folder("partial")
        retired = self._swap_folder("old")
        try:
            staging.mkdir()
            for relative_path, content in data.items():
                target = staging / _checked_relative_path(relative_path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content() if callable(content) else content)
            if self._path.exists():
                os.replace(self._path, retired)
            os.replace(staging, self._path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if retired.exists() and not self._path.exists():
                os.replace(retired, self._path)
            raise
        shutil.rmtree(retired, ignore_errors=True)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
