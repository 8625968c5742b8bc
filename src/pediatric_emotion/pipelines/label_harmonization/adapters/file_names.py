"""Adapters for layouts that carry the label in file or folder names: JAFFE, KDEF, RaFD, the
children's sets named by emotion words (CAFE, NIMH-ChEFS, Dartmouth) and one folder per label
(``folder``, LIRIS-CSE)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ._common import ColumnCheckedAdapter, absolute, compile_subject_pattern, pattern_fields
from .base import DropReason, SourceAdapter, SourceRecord
from .tabular import listed_records

logger = logging.getLogger(__name__)


def _option_list(source: str, name: str, value: Any) -> list[Any]:
    """A list option; a single value counts as a list of one."""
    if isinstance(value, (str, int)):
        return [value]
    if not isinstance(value, Iterable):
        raise ValueError(f"source {source!r}: option {name} must be a list: {value!r}")
    return list(value)


class JaffeAdapter(SourceAdapter):
    """JAFFE: ``KA.AN1.39.tiff`` = subject ``KA``, expression code + repeat ``AN1``, image id."""

    format = "jaffe"
    default_options: Mapping[str, Any] = {}
    name_pattern = re.compile(
        r"(?P<subject>[A-Za-z]+)\.(?P<code>[A-Za-z]+)(?P<repeat>\d+)\.(?P<image>\d+)"
    )

    def records(self) -> Iterator[SourceRecord]:
        for path in self.image_files():
            record = SourceRecord(self.relative(path), absolute(path), None)
            match = self.name_pattern.fullmatch(path.stem)
            if match is None:
                record.drop_reason = DropReason.MALFORMED_ROW
                record.detail = f"{record.record_id}: file name is not SUBJECT.CODE<n>.<id>"
            else:
                record.original_label, record.subject_id = match["code"], match["subject"]
            yield record


class KdefAdapter(SourceAdapter):
    """KDEF: ``AF01/AF01ANS.JPG`` = session, sex, id, expression code, angle; subject sex+id."""

    format = "kdef"
    default_options: Mapping[str, Any] = {"angles": ["S", "HL", "HR"]}
    name_pattern = re.compile(
        r"(?P<session>[AB])(?P<sex>[FM])(?P<id>\d{2})(?P<code>[A-Z]{2})(?P<angle>FL|HL|S|HR|FR)",
        re.IGNORECASE,
    )
    sexes: Mapping[str, str] = {"F": "female", "M": "male"}

    def configure(self) -> None:
        angles = _option_list(self.source, "angles", self.options["angles"])
        self.angles = {str(angle).upper() for angle in angles}

    def records(self) -> Iterator[SourceRecord]:
        for path in self.image_files():
            record = SourceRecord(self.relative(path), absolute(path), None)
            match = self.name_pattern.fullmatch(path.stem)
            if match is None:
                record.drop_reason = DropReason.MALFORMED_ROW
                record.detail = (
                    f"{record.record_id}: file name is not <session A/B><sex F/M><id 2 digits>"
                    "<expression><angle FL/HL/S/HR/FR>"
                )
                yield record
                continue
            sex, angle = match["sex"].upper(), match["angle"].upper()
            record.original_label = match["code"]
            record.subject_id = f"{sex}{match['id']}"
            record.metadata = {
                "session": match["session"].upper(),
                "sex": self.sexes[sex],
                "angle": angle,
            }
            if angle not in self.angles:
                record.drop_reason = DropReason.EXCLUDED_ANGLE
                record.detail = f"{record.record_id}: angle {angle} not in {sorted(self.angles)}"
            yield record


class RafdAdapter(SourceAdapter):
    """RaFD: ``Rafd090_01_Caucasian_female_angry_frontal.jpg`` = angle, model, ethnicity (or a
    child marker), sex, emotion word, gaze."""

    format = "rafd"
    default_options: Mapping[str, Any] = {
        "angles": ["045", "090", "135"],
        "child_markers": ["Kid", "Kids"],
    }
    angle_pattern = re.compile(r"rafd(\d{3})", re.IGNORECASE)

    def configure(self) -> None:
        angles = _option_list(self.source, "angles", self.options["angles"])
        try:  # "045", "45" and 45 are the same angle
            self.angles = {int(angle) for angle in angles}
        except ValueError as err:
            raise ValueError(f"source {self.source!r}: angles must be numbers: {angles!r}") from err
        markers = _option_list(self.source, "child_markers", self.options["child_markers"])
        self.child_markers = {str(marker).lower() for marker in markers}

    def records(self) -> Iterator[SourceRecord]:
        for path in self.image_files():
            record = SourceRecord(self.relative(path), absolute(path), None)
            parts = path.stem.split("_")
            angle = self.angle_pattern.fullmatch(parts[0])
            if len(parts) != 6 or angle is None:
                record.drop_reason = DropReason.MALFORMED_ROW
                record.detail = (
                    f"{record.record_id}: file name is not "
                    "Rafd<angle>_<model>_<ethnicity>_<sex>_<emotion>_<gaze>"
                )
                yield record
                continue
            _, model, ethnicity, sex, emotion, gaze = parts
            record.original_label, record.subject_id = emotion, model
            record.metadata = {"sex": sex, "angle": angle[1], "gaze": gaze}
            if ethnicity.lower() in self.child_markers:
                record.population = "child"
            else:
                record.metadata["ethnicity"] = ethnicity
            if int(angle[1]) not in self.angles:
                record.drop_reason = DropReason.EXCLUDED_ANGLE
                record.detail = (
                    f"{record.record_id}: angle {angle[1]} not in {self.options['angles']}"
                )
            yield record


class NamedFilesAdapter(ColumnCheckedAdapter):
    """Images anywhere below ``images_dir``, labelled by a metadata CSV or by a label-map word in
    the file name, then in its folders (nearest first)."""

    default_options: Mapping[str, Any] = {
        "images_dir": None,
        "metadata_csv": None,
        "subject_pattern": None,
    }
    metadata_columns = ("file", "emotion")

    def configure(self) -> None:
        self.subject_pattern = compile_subject_pattern(self.source, self.options["subject_pattern"])

    @property
    def images_root(self) -> Path:
        """The folder searched for images (the root unless ``images_dir`` is set)."""
        images_dir = self.options["images_dir"]
        return self.root / images_dir if images_dir else self.root

    def required_paths(self) -> list[Path]:
        paths = [self.images_root] if self.options["images_dir"] else []
        if self.options["metadata_csv"]:
            paths.append(self.root / self.options["metadata_csv"])
        return paths

    def required_columns(self) -> list[tuple[Path, tuple[str, ...]]]:
        metadata_csv = self.options["metadata_csv"]
        return [(self.root / metadata_csv, self.metadata_columns)] if metadata_csv else []

    def word_label(self, record_id: str) -> str | None:
        """The first label-map word in the file's stem, then in its folders, nearest first."""
        path = PurePosixPath(record_id)
        for text in (path.stem, *reversed(path.parent.parts)):
            word = self.find_vocabulary_word(text)
            if word is not None:
                return word
        return None

    def records(self) -> Iterator[SourceRecord]:
        listed: dict[str, int] = {}
        metadata_csv = self.options["metadata_csv"]
        if metadata_csv:
            yield from listed_records(
                self.root,
                metadata_csv,
                path_column="file",
                label_column="emotion",
                subject_column="subject",
                subject_pattern=self.subject_pattern,
                seen=listed,
            )
        unmatched = 0
        for path in self.image_files(self.images_root):
            record_id = self.relative(path)
            if record_id in listed:
                continue
            subject, metadata = pattern_fields(self.subject_pattern, record_id)
            unmatched += self.subject_pattern is not None and subject is None
            record = SourceRecord(
                record_id, absolute(path), None, subject_id=subject, metadata=metadata
            )
            if metadata_csv:
                record.drop_reason = DropReason.UNLABELLED
                record.detail = f"{record_id}: not listed in {metadata_csv}"
            else:
                record.original_label = self.word_label(record_id)
                if record.original_label is None:
                    record.drop_reason = DropReason.UNLABELLED
                    record.detail = f"{record_id}: no label-map word in the file or folder names"
            yield record
        if unmatched:
            logger.warning(
                "Source %s: subject_pattern matched no subject in %d file paths "
                "(each counts as its own subject)",
                self.source,
                unmatched,
            )


class CafeAdapter(NamedFilesAdapter):
    """CAFE (children 2-8, the test set): emotion words in names or a metadata CSV."""

    format = "cafe"


class NimhChefsAdapter(NamedFilesAdapter):
    """NIMH-ChEFS (children 10-17): emotion words/codes in names or a metadata CSV."""

    format = "nimh_chefs"


class DartmouthAdapter(NamedFilesAdapter):
    """Dartmouth Database of Children's Faces: emotion words in names or a metadata CSV."""

    format = "dartmouth"


class FolderAdapter(SourceAdapter):
    """One folder per label: ``<label>/**/<image>``; the label is the top folder's name."""

    format = "folder"
    default_options: Mapping[str, Any] = {"subject_pattern": None}

    def configure(self) -> None:
        self.subject_pattern = compile_subject_pattern(self.source, self.options["subject_pattern"])

    def records(self) -> Iterator[SourceRecord]:
        for path in self.image_files():
            record_id = self.relative(path)
            subject, metadata = pattern_fields(self.subject_pattern, record_id)
            record = SourceRecord(
                record_id, absolute(path), None, subject_id=subject, metadata=metadata
            )
            parts = PurePosixPath(record_id).parts
            if len(parts) > 1:
                record.original_label = parts[0]
            else:
                record.drop_reason = DropReason.UNLABELLED
                record.detail = f"{record_id}: directly under the root, not in a label folder"
            yield record


class LirisCseAdapter(FolderAdapter):
    """LIRIS-CSE: frames extracted from children's clips, sorted into one folder per expression."""

    format = "liris_cse"
