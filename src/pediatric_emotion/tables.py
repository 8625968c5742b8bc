"""Helpers for the grid's tables, shared by every stage that joins its cells' tables."""

from __future__ import annotations

import pandas as pd


def concatenate_tables(*tables: pd.DataFrame) -> pd.DataFrame:
    """The cells' tables, one below the other, columns of the first."""
    frames = [t for t in tables if len(t)]
    if not frames:
        return tables[0].iloc[0:0] if tables else pd.DataFrame()
    return pd.concat(frames, ignore_index=True).reindex(columns=list(tables[0].columns))
