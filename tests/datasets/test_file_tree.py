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


def _leave_swap_folders(parent, name: str) -> list:
    """The swap folders of a save of ``parent/name`` killed between its renames."""
    old = parent / f".{name}.old-abcd1234"
    partial = parent / f".{name}.partial-0123beef"
    for folder, content in ((old, b"previous"), (partial, b"half")):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "crop.png").write_bytes(content)
    return [old, partial]


def test_a_save_removes_the_swap_folders_an_interrupted_save_left(tmp_path, caplog):
    dataset = FileTreeDataset(path=str(tmp_path / "face_crops"))
    dataset.save({"a.png": b"first"})
    _leave_swap_folders(tmp_path, "face_crops")
    other = tmp_path / ".face_crops2.old-abcd1234"  # another target's: not ours to remove
    other.mkdir()

    assert dict(dataset.load()) == {"a.png": b"first"}  # load reads the target only
    with caplog.at_level("INFO", logger="pediatric_emotion.datasets.file_tree"):
        dataset.save({"b/c.png": b"new", "d.png": b"new too"})
    assert dict(dataset.load()) == {"b/c.png": b"new", "d.png": b"new too"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".face_crops2.old-abcd1234", "face_crops"]
    assert "left by an interrupted save" in caplog.text


def test_a_save_after_one_killed_between_the_renames_writes_the_folder(tmp_path):
    """Killed after the old folder was moved aside, before the new one was moved in: no target."""
    dataset = FileTreeDataset(path=str(tmp_path / "x"))
    _leave_swap_folders(tmp_path, "x")
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="does not exist"):
        dataset.load()
    dataset.save({"only.png": b"whole"})
    assert dict(dataset.load()) == {"only.png": b"whole"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
