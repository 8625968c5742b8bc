"""The contract every source adapter follows.

An adapter knows one native layout (../shared/DATASETS.md, docs/data_sets.md). It checks that the
layout's required files exist (before any heavy work) and yields one ``SourceRecord`` per image it
finds (per face, for layouts with several boxes per image). It never decodes images, never maps
labels to the 7 classes (the label maps in conf do that) and never drops a record silently: a record
it cannot use is yielded with ``drop_reason`` and ``detail`` set. Image links that lead nowhere (an
unfetched git-annex or DVC copy) are records too: ``checked_records`` drops them as ``broken_link``.
"""

from __future__ import annotations

import errno
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pediatric_emotion.images import printable

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")

# Metadata keys the manifest keeps as columns (anything else an adapter finds is ignored).
METADATA_KEYS = (
    "ethnicity",
    "age",
    "sex",
    "mouth",
    "agreement",
    "angle",
    "gaze",
    "session",
    "source_split",
)


class DropReason:
    """Reasons a record is not kept. Adapters use the first group; later stages the second."""

    MALFORMED_ROW = "malformed_row"  # a row/line/file name that does not parse
    MISSING_IMAGE = "missing_image"  # the row names an image file that does not exist
    BROKEN_LINK = "broken_link"  # the image is a symbolic link to nothing (dangling or a loop)
    NOT_PEAK_FRAME = (
        "not_peak_frame"  # CK+: a frame that is neither the labelled peak nor the first
    )
    UNLABELLED = "unlabelled"  # no label given for this image (CK+ sequence without Emotion file)
    TIE_VOTE = "tie_vote"  # FER+: no single majority label
    EXCLUDED_ANGLE = "excluded_angle"  # KDEF / RaFD: a camera angle the options leave out
    LOW_BOX_CONFIDENCE = (
        "low_box_confidence"  # ExpW: face box confidence under the option's minimum
    )
    # set by the harmonization stages, not by adapters
    EXCLUDED_LABEL = (
        "excluded_label"  # label mapped to null in conf (contempt, unknown, no face, ...)
    )
    UNKNOWN_LABEL = "unknown_label"  # label absent from the label map
    UNREADABLE_IMAGE = "unreadable_image"
    IMAGE_TOO_LARGE = "image_too_large"  # header over face_crop.max_image_pixels: not decoded
    NO_FACE_FOUND = "no_face_found"
    DUPLICATE = "duplicate"  # near-duplicate of a kept training image
    DUPLICATE_OF_TEST = "duplicate_of_test"  # training image that duplicates a test image


@dataclass
class SourceRecord:
    """One image (or one face of an image) as a source describes it."""

    record_id: str  # unique and stable within the source: relative path, row number, path#face
    image_path: str | None  # absolute path of the image file; None for inline pixels
    original_label: str | None  # the label exactly as the source writes it (as text)
    subject_id: str | None = None  # the person within the source; None: unknown (one per image)
    population: str | None = None  # "child"/"adult" when the record says; None: the source's
    bbox: tuple[float, float, float, float] | None = None  # x, y, w, h in pixels, when shipped
    pixels: str | None = None  # FER2013-style space-separated gray values, for inline images
    metadata: dict[str, Any] = field(default_factory=dict)  # keys from METADATA_KEYS
    drop_reason: str | None = None  # a DropReason value when the adapter cannot use the record
    detail: str = ""  # what exactly is wrong (file, line, value), for the drop report


class SourceLayoutError(FileNotFoundError):
    """A configured source whose root or required file is missing or unusable."""

    def __init__(self, source: str, path: Path | str, problem: str) -> None:
        self.source, self.path, self.problem = source, printable(path), problem
        super().__init__(f"source {source!r}: {problem}: {self.path}")


def broken_link(path: str | Path) -> str:
    """What is wrong when ``path`` is a symbolic link that leads to no file ("broken symbolic
    link -> target" or "symbolic link loop"); "" when it is not such a link."""
    if not os.path.islink(path) or os.path.exists(path):
        return ""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop"
    return f"broken symbolic link -> {printable(os.readlink(path))}"


def missing_image(path: str | Path, where: str, shown: str) -> tuple[str, str]:
    """(drop reason, detail) of a row whose image file ``path`` (``shown`` in the detail) is not
    there: ``broken_link`` for a link that leads nowhere, else ``missing_image``."""
    problem = broken_link(path)
    if problem:
        return DropReason.BROKEN_LINK, f"{where}: image {shown}: {problem}"
    return DropReason.MISSING_IMAGE, f"{where}: image {shown} not found"


class SourceAdapter(ABC):
    """Base of the per-format adapters.

    Args:
        source: the source's name in the ``sources`` parameter (used in errors and ids).
        root: the source's root folder.
        options: format options from conf (each adapter documents and defaults its own).
        vocabulary: the original labels the format's label map knows (keys of the map), for
            layouts that find the label as a word inside a file or folder name.
    """

    format: ClassVar[str]
    default_options: ClassVar[Mapping[str, Any]] = {}

    def __init__(
        self,
        source: str,
        root: str | Path,
        options: Mapping[str, Any] | None = None,
        vocabulary: Iterable[str] = (),
    ) -> None:
        self.source = source
        self.root = Path(root)
        unknown = set(options or {}) - set(self.default_options)
        if unknown:
            raise ValueError(
                f"source {source!r} ({self.format}): unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(self.default_options)}"
            )
        self.options = {**self.default_options, **(options or {})}
        self.vocabulary = [str(v) for v in vocabulary]
        self.configure()

    def configure(self) -> None:
        """Validate and resolve ``self.options`` (called at the end of ``__init__``); raise
        ``ValueError`` naming the source and the option when a value cannot work."""
        return None

    def required_paths(self) -> list[Path]:
        """Files and folders that must exist for the layout to be read (root excluded)."""
        return []

    def check(self) -> None:
        """Raise ``SourceLayoutError`` naming the source and path when the layout is not there."""
        if self.root.exists() and not self.root.is_dir():
            raise SourceLayoutError(self.source, self.root, "root is a file, not a folder")
        if not self.root.is_dir():
            raise SourceLayoutError(self.source, self.root, "root folder not found")
        for path in self.required_paths():
            if not path.exists():
                raise SourceLayoutError(self.source, path, "required file or folder not found")

    @abstractmethod
    def records(self) -> Iterator[SourceRecord]:
        """Yield every record of the source, usable or not (never skip silently)."""

    def checked_records(self) -> Iterator[SourceRecord]:
        """``records()``, with every usable record whose image is a symbolic link that leads to
        no file dropped as ``broken_link`` (what the harmonization reads)."""
        for record in self.records():
            if record.drop_reason is None and record.image_path:
                problem = broken_link(record.image_path)
                if problem:
                    record.drop_reason = DropReason.BROKEN_LINK
                    record.detail = f"{record.record_id}: {problem}"
            yield record

    # helpers shared by adapters -------------------------------------------------------------
    def image_files(self, folder: Path | None = None) -> list[Path]:
        """Every image file below ``folder`` (default: root), sorted, hidden files excluded;
        symbolic links that lead nowhere included (``checked_records`` drops them)."""
        folder = folder or self.root
        return sorted(
            p
            for p in folder.rglob("*")
            if (p.is_file() or (p.is_symlink() and not p.exists()))
            and p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )

    def relative(self, path: Path) -> str:
        """POSIX path of ``path`` relative to the root: the usual record id."""
        return path.relative_to(self.root).as_posix()

    def find_vocabulary_word(self, text: str) -> str | None:
        """The first token of ``text`` (split on non-alphanumerics) that the label map knows."""
        known = {v.lower(): v for v in self.vocabulary}
        for token in re.split(r"[^0-9A-Za-z]+", text):
            if token.lower() in known:
                return known[token.lower()]
        return None
