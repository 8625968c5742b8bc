"""The ``run.*`` parameters of a tracked run (tracking/run_info.py): environment, git commit and
work-tree state, and whether the sources were the demo data."""

from __future__ import annotations

import subprocess

from pediatric_emotion.tracking.run_info import git_state, reads_demo_data, run_information

CATALOG = {"demo_raw_data": {"type": "FileTreeDataset", "path": "data/01_raw/demo"}}


def _git(folder, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def test_commit_and_changes_of_the_work_tree(tmp_path):
    assert git_state(tmp_path) == ("unknown", "unknown")
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "a")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_state(tmp_path) == (head, "false")
    (tmp_path / "untracked.txt").write_text("not a change of the tracked files")
    assert git_state(tmp_path) == (head, "false")
    (tmp_path / "a.txt").write_text("b")
    assert git_state(tmp_path) == (head, "true")


def test_demo_data_is_told_by_where_the_sources_are(tmp_path):
    demo = {"fer": {"path": "data/01_raw/demo/fer2013"}, "cafe": {"path": "data/01_raw/demo/cafe"}}
    real = {"fer": {"path": "/mnt/licensed/fer2013"}, "cafe": {"path": "data/01_raw/cafe"}}
    mixed = {**demo, "cafe": real["cafe"]}
    root = "data/01_raw/demo"
    assert reads_demo_data(demo, root, tmp_path) == "true"
    assert reads_demo_data(real, root, tmp_path) == "false"
    assert reads_demo_data(mixed, root, tmp_path) == "mixed"
    absolute = {"fer": {"path": str(tmp_path / "data/01_raw/demo/fer2013")}}
    assert reads_demo_data(absolute, root, tmp_path) == "true"
    assert reads_demo_data({"x": {"path": "data/01_raw/demo_copy"}}, root, tmp_path) == "false"
    assert reads_demo_data(None, root, tmp_path) == "unknown"


def test_run_information_of_a_run(tmp_path):
    sources = {"fer": {"path": "data/01_raw/demo/fer2013"}}
    info = run_information(tmp_path, None, {"sources": sources}, CATALOG)
    assert info == {
        "run.environment": "local",
        "run.git_commit": "unknown",
        "run.git_dirty": "unknown",
        "run.demo_data": "true",
    }
    assert run_information(tmp_path, "paper", {}, {})["run.environment"] == "paper"
