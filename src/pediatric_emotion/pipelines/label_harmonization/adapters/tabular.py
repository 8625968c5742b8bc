"""Adapters for layouts described by a CSV or list file: FER2013, FER+, AffectNet, ExpW, RAF-DB
and the generic ``csv`` format."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pediatric_emotion.native_layouts import FERPLUS_VOTE_COLUMNS

from ._common import (
    ColumnCheckedAdapter,
    absolute,
    cell_text,
    csv_rows,
    integer_code,
    metadata_from_row,
    pattern_fields,
    pixels_problem,
    positive_int_option,
    posix_id,
)
from .base import DropReason, SourceAdapter, SourceRecord, missing_image

BOX_COLUMNS = ("face_x", "face_y", "face_width", "face_height")


class Fer2013Adapter(ColumnCheckedAdapter):
    """FER2013: one CSV of inline gray images (``pixels``), ``emotion`` 0-6 and ``Usage``."""

    format = "fer2013"
    default_options: Mapping[str, Any] = {"csv": "fer2013.csv", "image_size": 48}
    columns = ("emotion", "pixels", "Usage")

    def configure(self) -> None:
        positive_int_option(self.source, "image_size", self.options["image_size"])

    def required_paths(self) -> list[Path]:
        return [self.root / self.options["csv"]]

    def required_columns(self) -> list[tuple[Path, tuple[str, ...]]]:
        return [(self.root / self.options["csv"], self.columns)]

    def records(self) -> Iterator[SourceRecord]:
        name = self.options["csv"]
        expected = self.options["image_size"] ** 2
        for row in csv_rows(self.root / name):
            emotion, pixels = row.values.get("emotion", ""), row.values.get("pixels", "")
            record = SourceRecord(f"row{row.index:05d}", None, integer_code(emotion))
            if row.values.get("Usage"):
                record.metadata["source_split"] = row.values["Usage"]
            problem = row.problem or pixels_problem(pixels, expected)
            if not problem and emotion and record.original_label is None:
                problem = f"emotion {cell_text(emotion)} is not an integer code"
            if problem:
                record.drop_reason = DropReason.MALFORMED_ROW
                record.detail = f"{name} line {row.line}: {problem}"
            elif not emotion:
                record.drop_reason = DropReason.UNLABELLED
                record.detail = f"{name} line {row.line}: blank emotion"
            else:
                record.pixels = pixels
            yield record


class FerPlusAdapter(ColumnCheckedAdapter):
    """FER+: annotator votes per FER2013 image; the label is the column with the most votes."""

    format = "ferplus"
    default_options: Mapping[str, Any] = {
        "csv": "fer2013new.csv",
        "fer2013_csv": "fer2013.csv",
        "images_dir": None,
    }
    vote_columns = FERPLUS_VOTE_COLUMNS
    columns = ("Usage", "Image name", *vote_columns)

    def required_paths(self) -> list[Path]:
        images_dir = self.options["images_dir"]
        second = self.root / (images_dir if images_dir else self.options["fer2013_csv"])
        return [self.root / self.options["csv"], second]

    def required_columns(self) -> list[tuple[Path, tuple[str, ...]]]:
        checks = [(self.root / self.options["csv"], self.columns)]
        if not self.options["images_dir"]:
            checks.append((self.root / self.options["fer2013_csv"], ("pixels",)))
        return checks

    def _votes(self, values: Mapping[str, str]) -> tuple[str | None, str, str]:
        """(label, why the votes do not parse, why there is no single majority)."""
        try:
            votes = {column: float(values.get(column) or 0) for column in self.vote_columns}
        except ValueError:
            return None, "votes are not all numbers", ""
        best = max(votes.values())
        winners = [column for column, count in votes.items() if count == best]
        if len(winners) > 1:
            return None, "", f"tie between {', '.join(winners)} ({best:g} votes each)"
        return winners[0], "", ""

    def records(self) -> Iterator[SourceRecord]:
        name, fer_name = self.options["csv"], self.options["fer2013_csv"]
        images_dir = self.options["images_dir"]
        fer_rows = None if images_dir else csv_rows(self.root / fer_name)
        for row in csv_rows(self.root / name):
            where = f"{name} line {row.line}"
            fer_row = next(fer_rows, None) if fer_rows is not None else None
            record = SourceRecord(f"row{row.index:05d}", None, None)
            if row.values.get("Usage"):
                record.metadata["source_split"] = row.values["Usage"]
            image_name = row.values.get("Image name", "")
            record.original_label, bad_votes, tie = self._votes(row.values)
            reason, detail = None, ""
            if row.problem or bad_votes:
                reason, detail = DropReason.MALFORMED_ROW, f"{where}: {row.problem or bad_votes}"
            elif not image_name:
                reason, detail = DropReason.UNLABELLED, f"{where}: blank Image name"
            elif images_dir:
                path = self.root / images_dir / image_name
                record.image_path = absolute(path)
                if not path.is_file():
                    shown = Path(images_dir, image_name).as_posix()
                    reason, detail = missing_image(path, where, shown)
            elif fer_row is None:
                reason = DropReason.MALFORMED_ROW
                detail = f"{where}: {fer_name} has no data row {row.index}"
            else:
                pixels = fer_row.values.get("pixels", "")
                problem = fer_row.problem or pixels_problem(pixels)
                if problem:
                    reason = DropReason.MALFORMED_ROW
                    detail = f"{where}: pixels from {fer_name} line {fer_row.line}: {problem}"
                else:
                    record.pixels = pixels
            if reason is None and tie:
                reason, detail = DropReason.TIE_VOTE, f"{where}: {tie}"
            record.drop_reason, record.detail = reason, detail
            yield record


class AffectNetAdapter(ColumnCheckedAdapter):
    """AffectNet: ``training.csv`` / ``validation.csv`` with a face box and ``expression`` 0-10."""

    format = "affectnet"
    default_options: Mapping[str, Any] = {
        "csv_files": ["training.csv", "validation.csv"],
        "images_dir": "Manually_Annotated_Images",
    }
    columns = ("subDirectory_filePath", *BOX_COLUMNS, "expression")

    def configure(self) -> None:
        files = self.options["csv_files"]
        self.csv_files = [files] if isinstance(files, str) else list(files)

    def required_paths(self) -> list[Path]:
        return [self.root / name for name in self.csv_files] + [
            self.root / self.options["images_dir"]
        ]

    def required_columns(self) -> list[tuple[Path, tuple[str, ...]]]:
        return [(self.root / name, self.columns) for name in self.csv_files]

    @staticmethod
    def row_problem(values: Mapping[str, str]) -> tuple[tuple[float, ...] | None, str]:
        """(face box, "") for a row that parses, else (None, why)."""
        if not values.get("subDirectory_filePath"):
            return None, "blank subDirectory_filePath"
        try:
            box = tuple(float(values.get(column, "")) for column in BOX_COLUMNS)
        except ValueError:
            return None, "face box values are not all numbers"
        if box[2] <= 0 or box[3] <= 0:
            return None, f"face box size {box[2]:g}x{box[3]:g} is not positive"
        expression = values.get("expression", "")
        if expression and integer_code(expression) is None:
            return None, f"expression {cell_text(expression)} is not an integer code"
        return box, ""

    def records(self) -> Iterator[SourceRecord]:
        images_dir = self.options["images_dir"]
        images_root = absolute(self.root / images_dir)
        for name in self.csv_files:
            split = Path(name).stem
            for row in csv_rows(self.root / name):
                where = f"{name} line {row.line}"
                file_path = row.values.get("subDirectory_filePath", "")
                expression = row.values.get("expression", "")
                image_path = os.path.join(images_root, file_path) if file_path else None
                box, problem = self.row_problem(row.values)
                record = SourceRecord(
                    file_path or f"{split}:line{row.line}",
                    image_path,
                    integer_code(expression),
                    bbox=box,
                    metadata={"source_split": split},
                )
                if row.problem or problem:
                    record.drop_reason = DropReason.MALFORMED_ROW
                    record.detail = f"{where}: {row.problem or problem}"
                elif not os.path.isfile(image_path):
                    shown = f"{images_dir}/{file_path}"
                    record.drop_reason, record.detail = missing_image(image_path, where, shown)
                elif not expression:
                    record.drop_reason = DropReason.UNLABELLED
                    record.detail = f"{where}: blank expression"
                yield record


class ExpwAdapter(SourceAdapter):
    """ExpW: ``label/label.lst`` lines ``image face_id top left right bottom confidence label``."""

    format = "expw"
    default_options: Mapping[str, Any] = {
        "label_file": "label/label.lst",
        "images_dir": "image/origin",
        "min_box_confidence": 0,
    }
    n_fields = 8

    def required_paths(self) -> list[Path]:
        return [self.root / self.options["label_file"], self.root / self.options["images_dir"]]

    def records(self) -> Iterator[SourceRecord]:
        name, images_dir = self.options["label_file"], self.options["images_dir"]
        minimum = float(self.options["min_box_confidence"])
        with (self.root / name).open(encoding="utf-8", errors="replace") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                where = f"{name} line {number}"
                fields = line.split()
                if len(fields) != self.n_fields:
                    yield SourceRecord(
                        f"line{number}",
                        None,
                        None,
                        drop_reason=DropReason.MALFORMED_ROW,
                        detail=f"{where}: {len(fields)} fields, expected {self.n_fields}",
                    )
                    continue
                image_name, face_id, *numbers, label = fields
                path = self.root / images_dir / image_name
                record = SourceRecord(
                    f"{image_name}#{face_id}", absolute(path), integer_code(label)
                )
                try:
                    top, left, right, bottom, confidence = (float(value) for value in numbers)
                except ValueError:
                    problem = "face box or confidence is not a number"
                else:
                    problem = ""
                    if right - left <= 0 or bottom - top <= 0:
                        problem = f"face box size {right - left:g}x{bottom - top:g} is not positive"
                if not problem and record.original_label is None:
                    problem = f"label {cell_text(label)} is not an integer code"
                if problem:
                    record.drop_reason = DropReason.MALFORMED_ROW
                    record.detail = f"{where}: {problem}"
                    yield record
                    continue
                record.bbox = (left, top, right - left, bottom - top)
                if not path.is_file():
                    shown = f"{images_dir}/{image_name}"
                    record.drop_reason, record.detail = missing_image(path, where, shown)
                elif confidence < minimum:
                    record.drop_reason = DropReason.LOW_BOX_CONFIDENCE
                    record.detail = (
                        f"{where}: box confidence {confidence:g} < min_box_confidence {minimum:g}"
                    )
                yield record


class RafDbAdapter(SourceAdapter):
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` lines ``train_00001.jpg 5`` (1-7)."""

    format = "rafdb"
    default_options: Mapping[str, Any] = {
        "label_file": "EmoLabel/list_patition_label.txt",
        "aligned": True,
        "images_dir": None,
    }

    def configure(self) -> None:
        if self.options["images_dir"] is None:
            aligned = self.options["aligned"]
            self.options["images_dir"] = "Image/aligned" if aligned else "Image/original"

    def required_paths(self) -> list[Path]:
        return [self.root / self.options["label_file"], self.root / self.options["images_dir"]]

    def image_name(self, listed: str) -> str:
        """The image file of a listed name (``train_00001.jpg`` -> ``train_00001_aligned.jpg``)."""
        if not self.options["aligned"]:
            return listed
        listed_path = Path(listed)
        return f"{listed_path.stem}_aligned{listed_path.suffix}"

    def records(self) -> Iterator[SourceRecord]:
        name, images_dir = self.options["label_file"], self.options["images_dir"]
        with (self.root / name).open(encoding="utf-8", errors="replace") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                where = f"{name} line {number}"
                fields = line.split()
                if len(fields) != 2:
                    yield SourceRecord(
                        f"line{number}",
                        None,
                        None,
                        drop_reason=DropReason.MALFORMED_ROW,
                        detail=f"{where}: {len(fields)} fields, expected 2 (image name, label)",
                    )
                    continue
                listed, label = fields
                image = Path(images_dir, self.image_name(listed)).as_posix()
                record = SourceRecord(listed, absolute(self.root / image), integer_code(label))
                split = listed.split("_", 1)[0]
                if split in ("train", "test"):
                    record.metadata["source_split"] = split
                if record.original_label is None:
                    record.drop_reason = DropReason.MALFORMED_ROW
                    record.detail = f"{where}: label {label!r} is not an integer code"
                elif not (self.root / image).is_file():
                    record.drop_reason, record.detail = missing_image(
                        self.root / image, where, image
                    )
                yield record


class CsvAdapter(ColumnCheckedAdapter):
    """Any CSV with an image path column (relative to the root), a label and optional metadata."""

    format = "csv"
    default_options: Mapping[str, Any] = {
        "csv": "labels.csv",
        "path_column": "path",
        "label_column": "label",
        "subject_column": "subject",
    }

    def required_paths(self) -> list[Path]:
        return [self.root / self.options["csv"]]

    def required_columns(self) -> list[tuple[Path, tuple[str, ...]]]:
        columns = (self.options["path_column"], self.options["label_column"])
        return [(self.root / self.options["csv"], columns)]

    def records(self) -> Iterator[SourceRecord]:
        name = self.options["csv"]
        yield from listed_records(
            self.root,
            name,
            path_column=self.options["path_column"],
            label_column=self.options["label_column"],
            subject_column=self.options["subject_column"],
        )


def listed_records(
    root: Path,
    csv_name: str,
    *,
    path_column: str,
    label_column: str,
    subject_column: str | None,
    subject_pattern: re.Pattern[str] | None = None,
    seen: dict[str, int] | None = None,
) -> Iterator[SourceRecord]:
    """One record per row of a CSV that names image files relative to ``root``.

    Rows that do not parse or repeat a file are ``malformed_row`` (id ``line<n>``), rows naming a
    file that is not there ``missing_image``, rows with a blank label ``unlabelled``. METADATA_KEYS
    columns are kept. Rows with no subject value take it from ``subject_pattern`` on the record id
    (the root-relative path). ``seen`` collects the record id -> line of every listed file.
    """
    seen = {} if seen is None else seen
    for row in csv_rows(root / csv_name):
        where = f"{csv_name} line {row.line}"
        file_text = row.values.get(path_column, "")
        label = row.values.get(label_column, "") or None
        metadata, problem = metadata_from_row(row.values)
        problem = row.problem or ("" if file_text else f"blank {path_column}") or problem
        record_id = posix_id(file_text)
        if file_text and record_id in seen:
            problem = problem or f"{file_text} already listed on line {seen[record_id]}"
        elif file_text:
            seen[record_id] = row.line
        path = root / file_text
        if problem:
            yield SourceRecord(
                f"line{row.line}",
                absolute(path) if file_text else None,
                label,
                drop_reason=DropReason.MALFORMED_ROW,
                detail=f"{where}: {problem}",
            )
            continue
        subject, found = pattern_fields(subject_pattern, record_id)
        if subject_column and row.values.get(subject_column):
            subject = row.values[subject_column]
        record = SourceRecord(
            record_id, absolute(path), label, subject_id=subject, metadata={**found, **metadata}
        )
        if not path.is_file():
            record.drop_reason, record.detail = missing_image(path, where, file_text)
        elif label is None:
            record.drop_reason = DropReason.UNLABELLED
            record.detail = f"{where}: blank {label_column}"
        yield record
