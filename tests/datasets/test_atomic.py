import pandas as pd
import pytest
from kedro.io import DatasetError

from pediatric_emotion.datasets import AtomicCSVDataset, AtomicParquetDataset


class Unserialisable:
    """An object pyarrow cannot write: the parquet write fails after the file was opened."""


def test_parquet_failure_keeps_the_previous_file(tmp_path):
    path = tmp_path / "table.parquet"
    dataset = AtomicParquetDataset(filepath=str(path))
    dataset.save(pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(DatasetError):
        dataset.save(pd.DataFrame({"a": [Unserialisable()]}))
    assert dataset.load()["a"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_failure_on_first_save_leaves_no_file(tmp_path):
    path = tmp_path / "table.parquet"
    with pytest.raises(DatasetError):
        AtomicParquetDataset(filepath=str(path)).save(pd.DataFrame({"a": [Unserialisable()]}))
    assert list(tmp_path.iterdir()) == []


def test_csv_round_trip(tmp_path):
    dataset = AtomicCSVDataset(filepath=str(tmp_path / "t.csv"), save_args={"index": False})
    dataset.save(pd.DataFrame({"source": ["x"], "count": [3]}))
    assert dataset.load().to_dict("records") == [{"source": "x", "count": 3}]
