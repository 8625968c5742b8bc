"""Near-duplicate images across sources, by perceptual hash.

Pairs within ``max_distance`` bits are found without comparing every pair: split each hash into
``max_distance + 1`` chunks; two hashes within ``max_distance`` bits agree exactly on at least one
chunk (pigeonhole), so only hashes sharing a chunk value are compared.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pediatric_emotion.pipelines.label_harmonization.adapters.base import DropReason

logger = logging.getLogger(__name__)


def hamming_distance(a: int, b: int) -> int:
    """Number of differing bits."""
    return (a ^ b).bit_count()


def near_duplicate_pairs(
    hashes: list[int], max_distance: int, bits: int = 64
) -> list[tuple[int, int, int]]:
    """All index pairs (i < j) of ``bits``-bit hashes that differ in at most ``max_distance`` bits,
    with the distance; sorted."""
    if max_distance < 0:
        raise ValueError("max_distance must be >= 0")
    chunks = min(max_distance + 1, bits)
    bounds = np.linspace(0, bits, chunks + 1).astype(int)
    candidates: set[tuple[int, int]] = set()
    for low, high in zip(bounds[:-1], bounds[1:], strict=True):
        mask = (1 << int(high - low)) - 1
        buckets: dict[int, list[int]] = defaultdict(list)
        for index, value in enumerate(hashes):
            buckets[(value >> int(low)) & mask].append(index)
        for members in buckets.values():
            for position, i in enumerate(members):
                candidates.update((i, j) for j in members[position + 1 :])
    pairs = []
    for i, j in candidates:
        distance = hamming_distance(hashes[i], hashes[j])
        if distance <= max_distance:
            pairs.append((i, j, distance))
    return sorted(pairs)


def _pairs_by_hash(hex_hashes: pd.Series, max_distance: int) -> dict[tuple[int, int], int]:
    """Near-duplicate positions (i < j) -> distance, for one column of hex hashes."""
    bits = 4 * int(hex_hashes.str.len().max()) if len(hex_hashes) else 0
    values = [int(value, 16) for value in hex_hashes]
    return {(i, j): d for i, j, d in near_duplicate_pairs(values, max_distance, bits)}


def deduplicate(
    records: pd.DataFrame, deduplication: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mark near-duplicates, by the perceptual hash of the face crop or of the whole image.

    Two images are near-duplicates when either hash pair is within ``max_distance`` bits: the
    whole-image hash finds re-encoded or resized copies even when the detector's box moved by a
    pixel, the crop hash finds a data set that ships crops of another's images. A training
    (non-test) image that duplicates a test image becomes ``duplicate_of_test``; among the remaining
    non-test images each group of near-duplicates keeps its first record (sources in configured
    order, then each source's order) and the others become ``duplicate``. Test images are never
    dropped. Returns the records and the table of duplicate pairs found.
    """
    max_distance = int(deduplication["max_distance"])
    records = records.copy()
    candidates = records.index[records["drop_reason"].isna() & records["phash"].notna()]
    by_crop = _pairs_by_hash(records.loc[candidates, "phash"], max_distance)
    by_image = _pairs_by_hash(records.loc[candidates, "image_phash"], max_distance)
    # faces of one photo (ExpW: a line per face) share the whole image: not duplicates
    image_files = records.loc[candidates, "image_path"].fillna(records.loc[candidates, "image_id"])
    image_files = image_files.to_numpy()
    by_image = {
        pair: d for pair, d in by_image.items() if image_files[pair[0]] != image_files[pair[1]]
    }
    pairs = [
        (i, j, by_crop.get((i, j)), by_image.get((i, j)))
        for i, j in sorted(by_crop.keys() | by_image.keys())
    ]
    is_test = (records.loc[candidates, "role"] == "test").to_numpy()
    image_ids = records.loc[candidates, "image_id"].to_numpy()

    def described(i: int, crop_bits: int | None, image_bits: int | None) -> str:
        distances = [
            f"{name} hash {bits} bits"
            for name, bits in (("crop", crop_bits), ("image", image_bits))
            if bits is not None
        ]
        return f"{image_ids[i]} ({', '.join(distances)})"

    dropped: dict[int, tuple[str, str]] = {}
    for i, j, crop_bits, image_bits in pairs:
        if is_test[i] != is_test[j]:
            train, test = (j, i) if is_test[i] else (i, j)
            dropped.setdefault(
                train,
                (
                    DropReason.DUPLICATE_OF_TEST,
                    f"matches test image {described(test, crop_bits, image_bits)}",
                ),
            )
    for i, j, crop_bits, image_bits in pairs:  # sorted by i: the earlier record is kept
        if is_test[i] or is_test[j] or i in dropped or j in dropped:
            continue
        dropped[j] = (
            DropReason.DUPLICATE,
            f"near-duplicate of {described(i, crop_bits, image_bits)}",
        )
    for position, (reason, detail) in dropped.items():
        records.loc[candidates[position], ["drop_reason", "detail"]] = [reason, detail]

    pair_table = pd.DataFrame(
        [
            {
                "image_id": image_ids[i],
                "duplicate_image_id": image_ids[j],
                "crop_distance": crop_bits,
                "image_distance": image_bits,
                "crosses_test": bool(is_test[i] != is_test[j]),
            }
            for i, j, crop_bits, image_bits in pairs
        ],
        columns=[
            "image_id",
            "duplicate_image_id",
            "crop_distance",
            "image_distance",
            "crosses_test",
        ],
    )
    for column in ("crop_distance", "image_distance"):
        pair_table[column] = pair_table[column].astype("Int64")
    reasons = pd.Series([reason for reason, _ in dropped.values()]).value_counts().to_dict()
    logger.info(
        "Near-duplicates: %d pairs within %d bits; dropped %s", len(pairs), max_distance, reasons
    )
    return records, pair_table
