"""Helpers the adapters share: CSV rows and headers, codes, path patterns and metadata values.

Messages never quote a cell that could be image content (FER2013's pixels): a header row that is
data is only counted, and a long cell value only measured (``cell_text``)."""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .base import METADATA_KEYS, SourceAdapter, SourceLayoutError

MAX_SHOWN_CELL = 32  # longest cell value quoted in a message; a longer one is only measured
MAX_COLUMN_NAME = 64  # longest header field shown as a column name
_NUMBERS = re.compile(r"[\d\s.,;:+-]+")  # a cell of numbers only: data, not a column name


@dataclass
class CsvRow:
    """One non-blank data row of a CSV file."""

    line: int  # physical line number (1-based; the header is line 1)
    index: int  # 0-based data row number
    values: dict[str, str]  # stripped values by stripped column name ("" when absent)
    problem: str = ""  # why the row does not parse; "" when it does


def read_header(source: str, path: Path) -> list[str]:
    """The stripped column names of a CSV file (its first row)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            return [name.strip() for name in next(csv.reader(file), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SourceLayoutError(source, path, f"cannot read the CSV header ({err})") from err


def cell_text(text: str) -> str:
    """A cell value as a message quotes it: its repr when short, else only its length (a long
    value could be image content)."""
    if len(text) <= MAX_SHOWN_CELL:
        return repr(text)
    return f"a value of {len(text)} characters"


def header_text(header: list[str]) -> str:
    """The header row as a message shows it: its names when they look like names (short, not
    numbers), else only its field count: a first row of data could hold pixel values."""
    if all(len(name) <= MAX_COLUMN_NAME and not _NUMBERS.fullmatch(name) for name in header):
        return f"header: {header}"
    return f"the first row looks like data, not a header ({len(header)} fields)"


def require_columns(source: str, path: Path, columns: Iterable[str]) -> None:
    """Raise ``SourceLayoutError`` naming the columns ``path``'s header lacks."""
    header = read_header(source, path)
    missing = [column for column in columns if column not in header]
    if missing:
        raise SourceLayoutError(
            source, path, f"CSV lacks required column(s) {missing} ({header_text(header)})"
        )


def csv_rows(path: Path) -> Iterator[CsvRow]:
    """Every non-blank data row of a CSV file; rows that do not parse carry a ``problem``."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as file:
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]
        index = 0
        while True:
            line = reader.line_num + 1  # where the next row starts
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield CsvRow(line, index, {}, f"does not parse as CSV ({err})")
                index += 1
                continue
            if not any(field.strip() for field in fields):
                continue
            problem = ""
            extra = fields[len(header) :]
            if reader.line_num > line:
                problem = f"a quoted value runs to line {reader.line_num} (unbalanced quote?)"
            elif len(fields) < len(header) or any(field.strip() for field in extra):
                problem = f"{len(fields)} fields, expected {len(header)}"
            values = {name: field.strip() for name, field in zip(header, fields, strict=False)}
            yield CsvRow(line, index, values, problem)
            index += 1


def positive_int_option(source: str, name: str, value: Any) -> int:
    """``value`` when it is a positive integer, else a ValueError naming the source and option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"source {source!r}: option {name} must be a positive integer: {value!r}")
    return value


def integer_code(text: str | None) -> str | None:
    """``text`` as a plain integer string ("3" from "3", "3.0" or "3.0000000e+00"), else None."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return str(int(value)) if value.is_integer() else None


def pixels_problem(pixels: str, expected_count: int | None = None) -> str:
    """Why ``pixels`` is not a FER2013-style gray image, values 0-255 ("" when it is; never the
    values)."""
    if not pixels:
        return "no pixel values"
    digits = pixels.replace(" ", "")
    if not (digits.isascii() and digits.isdigit()):  # the usual case is settled without a split
        if not all(token.isascii() and token.isdigit() for token in pixels.split()):
            return "pixel values are not all non-negative integers"
    values = np.fromstring(pixels, dtype=np.int64, sep=" ")  # any whitespace; saturates
    count = values.size
    if expected_count is not None and count != expected_count:
        return f"{count} pixel values, expected {expected_count}"
    if expected_count is None and math.isqrt(count) ** 2 != count:
        return f"{count} pixel values do not form a square image"
    if values.max() > 255:
        return "pixel values outside 0-255"
    return ""


def absolute(path: Path) -> str:
    """Absolute, normalised path string of ``path``."""
    return os.path.abspath(path)


def posix_id(path_text: str) -> str:
    """A path as a CSV writes it, as a POSIX record id ("./a\\b.jpg" -> "a/b.jpg")."""
    return PurePosixPath(path_text.replace("\\", "/")).as_posix()


def compile_subject_pattern(source: str, pattern: str | None) -> re.Pattern[str] | None:
    """Compile the ``subject_pattern`` option; it must be a valid regex with a ``subject`` group."""
    if pattern is None:
        return None
    try:
        compiled = re.compile(str(pattern))
    except re.error as err:
        message = f"source {source!r}: subject_pattern {pattern!r} is not a valid regex: {err}"
        raise ValueError(message) from err
    if "subject" not in compiled.groupindex:
        raise ValueError(
            f"source {source!r}: subject_pattern {pattern!r} needs a named group (?P<subject>...)"
        )
    return compiled


def pattern_fields(pattern: re.Pattern[str] | None, path_text: str) -> tuple[str | None, dict]:
    """Subject and metadata (named groups in METADATA_KEYS, e.g. ``session``) found in a path."""
    match = pattern.search(path_text) if pattern is not None else None
    if match is None:
        return None, {}
    groups = {key: value for key, value in match.groupdict().items() if value}
    metadata = {key: value for key, value in groups.items() if key in METADATA_KEYS}
    return groups.get("subject"), metadata


def _number(text: str) -> int | float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def _agreement(text: str) -> float | None:
    """Rater agreement as a 0-1 fraction ("0.75", "75" and "75%" all give 0.75)."""
    percent = text.endswith("%")
    value = _number(text.rstrip("%").strip())
    if value is None or value < 0:
        return None
    return float(value) / 100 if percent or value > 1 else float(value)


def metadata_from_row(values: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The METADATA_KEYS columns of a CSV row (blank ones left out) and why one does not parse."""
    metadata: dict[str, Any] = {}
    for key in METADATA_KEYS:
        text = values.get(key, "")
        if not text:
            continue
        if key == "agreement":
            value: Any = _agreement(text)
        elif key == "age":
            value = _number(text)
        else:
            value = text
        if value is None:
            return metadata, f"{key} {cell_text(text)} is not a number"
        metadata[key] = value
    return metadata, ""


class ColumnCheckedAdapter(SourceAdapter):
    """An adapter whose ``check()`` also reads the header of each CSV it needs."""

    def required_columns(self) -> list[tuple[Path, tuple[str, ...]]]:
        """(CSV file, columns its header must have) pairs."""
        return []

    def check(self) -> None:
        """Fail fast on a missing root, file or folder, then on a CSV lacking columns."""
        super().check()
        for path, columns in self.required_columns():
            require_columns(self.source, path, columns)
