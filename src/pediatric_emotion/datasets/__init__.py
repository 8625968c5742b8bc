"""Kedro datasets of this project: atomic variants of kedro-datasets' file datasets, and a folder of
files written as one unit."""

from pediatric_emotion.datasets.atomic import (
    AtomicCSVDataset,
    AtomicJSONDataset,
    AtomicMatplotlibDataset,
    AtomicParquetDataset,
)
from pediatric_emotion.datasets.file_tree import FileTree, FileTreeDataset

__all__ = [
    "AtomicCSVDataset",
    "AtomicJSONDataset",
    "AtomicMatplotlibDataset",
    "AtomicParquetDataset",
    "FileTree",
    "FileTreeDataset",
]
