"""Train/validation split by subject: no person appears in two splits."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def assign_splits(records: pd.DataFrame, subject_split: Mapping[str, Any]) -> pd.DataFrame:
    """Add ``split``: ``test`` for test-role sources; otherwise ``train`` or ``val`` by subject.

    Within each non-test source the sorted subjects are shuffled with a seed derived from
    ``subject_split.seed`` and the source name, and ``val_fraction`` of them (at least one when the
    source has two or more subjects) go to validation. Dropped records get no split.
    """
    fraction = float(subject_split["val_fraction"])
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"subject_split.val_fraction must be in [0, 1), got {fraction}")
    seed = int(subject_split["seed"])
    records = records.copy()
    records["split"] = None
    kept = records["drop_reason"].isna()
    records.loc[kept & (records["role"] == "test"), "split"] = "test"
    trainable = kept & (records["role"] != "test")
    for source, group in records[trainable].groupby("source", sort=False):
        subjects = np.array(sorted(group["subject_id"].unique()))
        rng = np.random.default_rng([seed, zlib.crc32(str(source).encode("utf-8"))])
        rng.shuffle(subjects)
        n_val = round(fraction * len(subjects))
        if fraction > 0 and len(subjects) >= 2:
            n_val = min(max(n_val, 1), len(subjects) - 1)
        val_subjects = set(subjects[:n_val])
        in_val = group["subject_id"].isin(val_subjects)
        records.loc[group.index, "split"] = np.where(in_val, "val", "train")
        logger.info(
            "Source %s: %d subjects, %d in validation", source, len(subjects), len(val_subjects)
        )
    return records
