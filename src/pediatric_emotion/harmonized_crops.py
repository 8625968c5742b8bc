"""The mark one harmonization run leaves on both of its outputs: the face manifest and the crops
folder, so that a reader never pairs a manifest with crops from another run.

``crop_faces_node`` digests every crop it encoded (:func:`crops_digest`: SHA-256 over each crop's
path and bytes, so the same sources and settings give the same digest, run after run); each record
carries it into ``face_manifest`` (column :data:`DIGEST_COLUMN`), and ``select_crops_node`` writes
it into the crops folder (file :data:`DIGEST_FILE`). A run stopped between saving the manifest and
the crops (Ctrl-C after ``build_manifest_node`` with a new ``face_crop.size``), or a crops folder
copied from elsewhere, leaves two different digests; every node that reads crops through a table
of their paths (training, optimization, evaluation) calls :func:`check_crops_match` first and
refuses, saying what to rerun. Tables and folders from before the mark (no column, no file) are
not checked.

Also the selections of the manifest that several stages read: the test role with class indices
(:func:`select_test_images`, the pictures evaluation scores and distillation's teachers too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from pediatric_emotion.datasets import FileTree

DIGEST_COLUMN = "crops_digest"
"""face_manifest's (and training_examples') column: the digest of the run's crops."""

DIGEST_FILE = "CROPS_DIGEST"
"""The file in the crops folder holding the digest of the run that wrote it."""


class CropsMismatchError(ValueError):
    """A table of crop paths and a crops folder written by different harmonization runs."""


def crops_digest(crops: Mapping[str, bytes]) -> str:
    """SHA-256 (hex) over every crop's path and bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(crops):
        content = crops[path]
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(len(content).to_bytes(8, "little"))
        digest.update(content)
    return digest.hexdigest()


def table_digest(rows: pd.DataFrame, what: str) -> str | None:
    """The one digest in ``rows``' :data:`DIGEST_COLUMN`; None without the column or values."""
    if DIGEST_COLUMN not in rows:
        return None
    digests = sorted(set(rows[DIGEST_COLUMN].dropna().astype(str)))
    if len(digests) > 1:
        raise CropsMismatchError(
            f"{what} mixes rows of {len(digests)} harmonization runs ({DIGEST_COLUMN} "
            f"{', '.join(d[:12] for d in digests)}): rerun `kedro run "
            "--pipelines=label_harmonization`"
        )
    return digests[0] if digests else None


def check_crops_match(rows: pd.DataFrame, crops_root: str | Path, what: str) -> None:
    """Raise :class:`CropsMismatchError` when ``rows`` (a table with crop paths, named ``what``
    in the message) and the crops folder at ``crops_root`` come from different harmonization
    runs."""
    expected = table_digest(rows, what)
    if expected is None:
        return
    marker = Path(crops_root) / DIGEST_FILE
    found = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    if found == expected:
        return
    made_by = f"run {found[:12]}" if found else "a run that left no mark"
    raise CropsMismatchError(
        f"{what} belongs to harmonization run {expected[:12]}, but the crops folder "
        f"{crops_root} was written by {made_by} (a harmonization run stopped between saving "
        "the manifest and the crops, or crops from elsewhere): rerun `kedro run "
        "--pipelines=label_harmonization`, then what reads its outputs (training: models trained "
        "on other crops are stale too)"
    )


def crop_paths(crops_root: str | Path, rows: pd.DataFrame) -> list[str]:
    """The files of ``rows``' ``crop_path`` column (relative to the crops folder) under
    ``crops_root``, in row order."""
    return [str(Path(crops_root) / str(path)) for path in rows["crop_path"]]


def with_labels(rows: pd.DataFrame, emotions: Sequence[str], what: str) -> pd.DataFrame:
    """``rows`` with ``label``, the index of each row's ``emotion`` in ``emotions``; an emotion
    outside them is refused, naming the image (``what``: the table, for the message)."""
    class_index = {name: index for index, name in enumerate(emotions)}
    emotion = rows["emotion"].astype("object")
    unknown = rows[~emotion.isin(list(class_index))]
    if len(unknown):
        first = unknown.iloc[0]
        raise ValueError(
            f"{what}: {len(unknown)} image(s) have an emotion outside params:emotions, e.g. "
            f"{first.get('image_id', first['crop_path'])}: {first['emotion']!r}"
        )
    return rows.assign(label=emotion.map(class_index).astype("int64"))


def check_crop_files(images: pd.DataFrame, root: str | Path, what: str) -> None:
    """Every ``crop_path`` of ``images`` is a file under ``root``, else FileNotFoundError."""
    missing = [
        relative
        for relative, path in zip(images["crop_path"], crop_paths(root, images), strict=True)
        if not Path(path).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{what}: {len(missing)} crop file(s) missing under {root}, e.g. {missing[0]}"
        )


def select_test_images(
    face_manifest: pd.DataFrame,
    face_crops: FileTree,
    evaluation: Mapping[str, Any],
    emotions: Sequence[str],
) -> pd.DataFrame:
    """The test role's rows of the manifest, checked, with their class index."""
    role = str(evaluation.get("test_role", "test"))
    rows = face_manifest[face_manifest["role"].astype("object") == role]
    if rows.empty:
        raise ValueError(
            f"face_manifest has no rows with role == {role!r}: configure a test source "
            "(CAFE, or the CAFE-like demo set) with that role"
        )
    rows = with_labels(rows.reset_index(drop=True), emotions, f"face_manifest (role {role})")
    check_crop_files(rows, face_crops.root, f"face_manifest (role {role})")
    return rows.assign(split="test")
