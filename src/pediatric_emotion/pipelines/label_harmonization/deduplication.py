"""Near-duplicate images across sources, by perceptual hash.

Pairs within ``max_distance`` bits are found without comparing every pair: split each 64-bit hash
into ``max_distance + 1`` chunks; two hashes within ``max_distance`` bits agree exactly on at least
one chunk (pigeonhole), so only hashes sharing a chunk value are compared.
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

HASH_BITS = 64


def hamming_distance(a: int, b: int) -> int:
    """Number of differing bits."""
    return (a ^ b).bit_count()


def near_duplicate_pairs(hashes: list[int], max_distance: int) -> list[tuple[int, int, int]]:
    """All index pairs (i < j) whose hashes differ in at most ``max_distance`` bits, with the
    distance; sorted."""
    if max_distance < 0:
        raise ValueError("max_distance must be >= 0")
    chunks = min(max_distance + 1, HASH_BITS)
    bounds = np.linspace(0, HASH_BITS, chunks + 1).astype(int)
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


def deduplicate(
    records: pd.DataFrame, deduplication: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mark near-duplicates.

    A training (non-test) image that duplicates a test image becomes ``duplicate_of_test``; among
    the remaining non-test images each group of near-duplicates keeps its first record (sources in
    configured order, then each source's order) and the others become ``duplicate``. Test images are
    never dropped. Returns the records and the table of duplicate pairs found.
    """
    max_distance = int(deduplication["max_distance"])
    records = records.copy()
    candidates = records.index[records["drop_reason"].isna() & records["phash"].notna()]
    hashes = [int(value, 16) for value in records.loc[candidates, "phash"]]
    pairs = near_duplicate_pairs(hashes, max_distance)
    is_test = (records.loc[candidates, "role"] == "test").to_numpy()
    image_ids = records.loc[candidates, "image_id"].to_numpy()

    dropped: dict[int, tuple[str, str]] = {}
    for i, j, distance in pairs:
        if is_test[i] != is_test[j]:
            train, test = (j, i) if is_test[i] else (i, j)
            dropped.setdefault(
                train,
                (
                    DropReason.DUPLICATE_OF_TEST,
                    f"matches test image {image_ids[test]} ({distance} bits)",
                ),
            )
    for i, j, distance in pairs:  # sorted by i: the earlier record of a pair is the one kept
        if is_test[i] or is_test[j] or i in dropped or j in dropped:
            continue
        dropped[j] = (DropReason.DUPLICATE, f"near-duplicate of {image_ids[i]} ({distance} bits)")
    for position, (reason, detail) in dropped.items():
        records.loc[candidates[position], ["drop_reason", "detail"]] = [reason, detail]

    pair_table = pd.DataFrame(
        [
            {
                "image_id": image_ids[i],
                "duplicate_image_id": image_ids[j],
                "distance": distance,
                "crosses_test": bool(is_test[i] != is_test[j]),
            }
            for i, j, distance in pairs
        ],
        columns=["image_id", "duplicate_image_id", "distance", "crosses_test"],
    )
    reasons = pd.Series([reason for reason, _ in dropped.values()]).value_counts().to_dict()
    logger.info(
        "Near-duplicates: %d pairs within %d bits; dropped %s", len(pairs), max_distance, reasons
    )
    return records, pair_table
