import pytest
from kedro.io import DatasetError

from pediatric_emotion.datasets import FileTreeDataset


def test_save_and_load_round_trip(tmp_path):
    dataset = FileTreeDataset(path=str(tmp_path / "tree"))
    assert not dataset.exists()
    dataset.save({"a/b.txt": b"one", "c.bin": lambda: b"two"})
    tree = dataset.load()
    assert dataset.exists()
    assert sorted(tree) == ["a/b.txt", "c.bin"]
    assert tree["a/b.txt"] == b"one"
    assert tree["c.bin"] == b"two"
    assert tree.path("a/b.txt") == tmp_path / "tree" / "a" / "b.txt"


def test_save_replaces_the_previous_folder_whole(tmp_path):
    dataset = FileTreeDataset(path=str(tmp_path / "tree"))
    dataset.save({"old.txt": b"old"})
    dataset.save({"new.txt": b"new"})
    assert list(dataset.load()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]


def test_failed_save_keeps_previous_folder_and_leaves_nothing_half_written(tmp_path):
    dataset = FileTreeDataset(path=str(tmp_path / "tree"))
    dataset.save({"keep.txt": b"keep"})

    def explode() -> bytes:
        raise RuntimeError("encoder failed")

    with pytest.raises(DatasetError, match="encoder failed"):
        dataset.save({"first.txt": b"1", "second.txt": explode})
    assert dict(dataset.load()) == {"keep.txt": b"keep"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]


@pytest.mark.parametrize("bad_path", ["../escape.txt", "/abs.txt", ""])
def test_refuses_paths_outside_the_folder(tmp_path, bad_path):
    dataset = FileTreeDataset(path=str(tmp_path / "tree"))
    with pytest.raises(DatasetError, match="outside the folder"):
        dataset.save({bad_path: b"x"})
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "tree").exists()


def test_load_of_missing_folder_names_it(tmp_path):
    with pytest.raises(DatasetError, match="missing_tree"):
        FileTreeDataset(path=str(tmp_path / "missing_tree")).load()
