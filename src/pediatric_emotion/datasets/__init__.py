"""Kedro datasets of this project: atomic variants of kedro-datasets' file datasets, a folder of
files written as one unit, and TFLite models with their preprocessing spec."""

from pediatric_emotion.datasets.atomic import (
    AnnouncedCSVDataset,
    AtomicCSVDataset,
    AtomicJSONDataset,
    AtomicMatplotlibDataset,
    AtomicParquetDataset,
    AtomicTextDataset,
    OptionalJSONDataset,
)
from pediatric_emotion.datasets.file_tree import FileTree, FileTreeDataset
from pediatric_emotion.datasets.partitions import OptionalPartitionedDataset
from pediatric_emotion.datasets.tflite import (
    TFLiteModel,
    TFLiteModelDataset,
    embed_spec,
    load_tflite,
    read_embedded_spec,
)

__all__ = [
    "AnnouncedCSVDataset",
    "AtomicCSVDataset",
    "AtomicJSONDataset",
    "AtomicMatplotlibDataset",
    "AtomicParquetDataset",
    "AtomicTextDataset",
    "FileTree",
    "FileTreeDataset",
    "OptionalJSONDataset",
    "OptionalPartitionedDataset",
    "TFLiteModel",
    "TFLiteModelDataset",
    "embed_spec",
    "load_tflite",
    "read_embedded_spec",
]
