"""Fixed facts of the public data sets' native layouts that both sides of the project need: the
readers (label_harmonization's adapters) and the writer of the synthetic demo data (demo_data),
which must produce files the readers accept (docs/data_sets.md)."""

from __future__ import annotations

# FER+ vote columns of fer2013new.csv, in file order
FERPLUS_VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
