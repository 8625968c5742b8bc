"""OptionalPartitionedDataset: an empty or missing folder loads as no partitions; otherwise it is
kedro-datasets' PartitionedDataset (whose load refuses an empty folder)."""

from __future__ import annotations

import pytest
from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from pediatric_emotion.datasets import OptionalPartitionedDataset

TEXT = {"type": "text.TextDataset"}


def test_missing_and_empty_folders_load_as_no_partitions(tmp_path):
    missing = tmp_path / "never_written"
    assert OptionalPartitionedDataset(path=str(missing), dataset=TEXT).load() == {}
    empty = tmp_path / "refused"
    empty.mkdir()
    with pytest.raises(DatasetError, match="No partitions found"):
        PartitionedDataset(path=str(empty), dataset=TEXT).load()
    assert OptionalPartitionedDataset(path=str(empty), dataset=TEXT).load() == {}


def test_saved_partitions_load_back_and_overwrite_replaces_them(tmp_path):
    folder = tmp_path / "files"
    dataset = OptionalPartitionedDataset(
        path=str(folder), dataset=TEXT, filename_suffix=".txt", overwrite=True
    )
    dataset.save({"int8": "a", "float32": "b"})
    loaded = dataset.load()
    assert {name: load() for name, load in loaded.items()} == {"int8": "a", "float32": "b"}
    dataset.save({})  # every conversion refused this time: the old files are gone
    assert dataset.load() == {}
    assert not folder.exists() or not list(folder.glob("*.txt"))
