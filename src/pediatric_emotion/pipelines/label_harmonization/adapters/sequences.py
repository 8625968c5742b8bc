"""Adapter for CK+: posed sequences from a neutral first frame to a labelled peak."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ._common import absolute, integer_code, positive_int_option
from .base import DropReason, SourceAdapter, SourceRecord

NEUTRAL_CODE = "0"


class CkPlusAdapter(SourceAdapter):
    """CK+: ``cohn-kanade-images/S005/001/*.png`` frames, ``Emotion/S005/001/*_emotion.txt`` codes.

    The sequence's code belongs to its last ``peak_frames`` frames; the first frame is neutral
    (code ``0``) when ``neutral_first_frame`` is set, also in sequences without an Emotion file;
    the frames between are ``not_peak_frame`` (``unlabelled`` when the sequence has no label).
    """

    format = "ckplus"
    default_options: Mapping[str, Any] = {
        "images_dir": "cohn-kanade-images",
        "labels_dir": "Emotion",
        "peak_frames": 1,
        "neutral_first_frame": True,
    }

    def configure(self) -> None:
        positive_int_option(self.source, "peak_frames", self.options["peak_frames"])

    def required_paths(self) -> list[Path]:
        return [self.root / self.options["images_dir"], self.root / self.options["labels_dir"]]

    def sequence_label(self, subject: str, sequence: str) -> tuple[str | None, str]:
        """(code, "") from the sequence's Emotion file; (None, why) when absent or unreadable."""
        folder = self.root / self.options["labels_dir"] / subject / sequence
        files = sorted(folder.glob("*_emotion.txt")) if folder.is_dir() else []
        if not files:
            return None, ""
        where = self.relative(files[0])
        if len(files) > 1:
            return None, f"{len(files)} emotion files in {self.relative(folder)}"
        try:
            text = files[0].read_text(encoding="utf-8", errors="replace").strip()
        except OSError as err:
            return None, f"{where}: cannot be read ({err.strerror or err})"
        code = integer_code(text)
        if code is None:
            return None, f"{where}: {text[:40]!r} is not an integer code"
        return code, ""

    def records(self) -> Iterator[SourceRecord]:
        images_root = self.root / self.options["images_dir"]
        sequences: dict[tuple[str, str], list[Path]] = defaultdict(list)
        for path in self.image_files(images_root):
            parts = path.relative_to(images_root).parts
            if len(parts) != 3:
                record_id = self.relative(path)
                yield SourceRecord(
                    record_id,
                    absolute(path),
                    None,
                    drop_reason=DropReason.MALFORMED_ROW,
                    detail=f"{record_id}: not in a <subject>/<sequence>/ folder",
                )
                continue
            sequences[parts[0], parts[1]].append(path)
        peak_frames, neutral_first = (
            self.options["peak_frames"],
            self.options["neutral_first_frame"],
        )
        for (subject, sequence), frames in sorted(sequences.items()):
            code, problem = self.sequence_label(subject, sequence)
            for index, path in enumerate(frames):  # sorted by name: frame order
                record = SourceRecord(
                    self.relative(path),
                    absolute(path),
                    None,
                    subject_id=subject,
                    metadata={"session": sequence},
                )
                is_peak = index >= len(frames) - peak_frames
                if is_peak and problem:
                    record.drop_reason, record.detail = DropReason.MALFORMED_ROW, problem
                elif is_peak and code is not None:
                    record.original_label = code
                elif index == 0 and neutral_first:
                    record.original_label = NEUTRAL_CODE
                elif code is None and not problem:
                    record.drop_reason = DropReason.UNLABELLED
                    record.detail = (
                        f"{record.record_id}: sequence {subject}/{sequence} has no label"
                    )
                else:
                    record.drop_reason = DropReason.NOT_PEAK_FRAME
                    record.detail = (
                        f"{record.record_id}: frame {index + 1} of {len(frames)}, "
                        f"neither the first nor one of the last {peak_frames}"
                    )
                yield record
