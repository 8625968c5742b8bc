"""demo_data then label_harmonization, through Kedro, on a small copy of the demo data (the
session's shared demo data, harmonized once: the ``harmonized_project`` fixture)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from pediatric_emotion.images import decode_image

pytestmark = pytest.mark.slow

EMOTIONS = {"neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"}
# every drop case the demo data plants on purpose, at any scale
PLANTED_REASONS = {
    "excluded_label",
    "malformed_row",
    "missing_image",
    "unreadable_image",
    "no_face_found",
    "not_peak_frame",
    "unlabelled",
    "excluded_angle",
    "duplicate",
    "duplicate_of_test",
    "tie_vote",
}


@pytest.fixture(scope="module")
def harmonized(harmonized_project):
    root = harmonized_project
    return {
        "root": root,
        "manifest": pd.read_parquet(root / "data/03_primary/face_manifest.parquet"),
        "report": pd.read_csv(root / "data/08_reporting/harmonization_report.csv"),
        "drops": pd.read_csv(root / "data/08_reporting/harmonization_drops.csv"),
        "sources": yaml.safe_load(
            (root / "conf/base/parameters_label_harmonization.yml").read_text()
        )["sources"],
    }


def test_manifest_covers_every_configured_source(harmonized):
    assert set(harmonized["manifest"]["source"]) == set(harmonized["sources"])


def test_manifest_has_only_the_seven_classes_and_every_class(harmonized):
    emotions = set(harmonized["manifest"]["emotion"].astype(str))
    assert emotions == EMOTIONS


def test_no_subject_in_two_splits_and_test_only_in_test(harmonized):
    manifest = harmonized["manifest"]
    assert (manifest.groupby("subject_id")["split"].nunique() == 1).all()
    test_sources = {n for n, c in harmonized["sources"].items() if c["role"] == "test"}
    is_test_source = manifest["source"].isin(test_sources)
    assert set(manifest.loc[is_test_source, "split"]) == {"test"}
    assert set(manifest.loc[~is_test_source, "split"]) == {"train", "val"}


def test_report_adds_up_and_shows_every_planted_drop_reason(harmonized):
    report, manifest, drops = harmonized["report"], harmonized["manifest"], harmonized["drops"]
    kept = report[report["reason"] == "kept"].set_index("source")["count"]
    assert kept.to_dict() == manifest["source"].value_counts().to_dict()
    dropped = report[report["reason"] != "kept"].groupby("source")["count"].sum()
    assert dropped.to_dict() == drops["source"].value_counts().to_dict()
    assert PLANTED_REASONS <= set(report["reason"])
    assert drops["detail"].notna().all()


def test_test_copies_are_kept_out_of_training(harmonized):
    drops = harmonized["drops"]
    leaked = drops[drops["reason"] == "duplicate_of_test"]
    assert set(leaked["source"]) == {"guesswhat"}
    assert leaked["detail"].str.contains("cafe:").all()


def test_crops_match_the_manifest_one_to_one(harmonized):
    root, manifest = harmonized["root"], harmonized["manifest"]
    crops_root = root / "data/03_primary/face_crops"
    on_disk = {p.relative_to(crops_root).as_posix() for p in crops_root.rglob("*.png")}
    assert on_disk == set(manifest["crop_path"])
    size = yaml.safe_load(
        (harmonized["root"] / "conf/base/parameters_label_harmonization.yml").read_text()
    )["face_crop"]["size"]
    sample = manifest.groupby("source").head(1)
    for crop_path in sample["crop_path"]:
        assert decode_image((crops_root / crop_path).read_bytes()).shape == (size, size, 3)


def test_children_sets_keep_their_subjects_and_metadata(harmonized):
    manifest = harmonized["manifest"]
    for source in ("nimh_chefs", "dartmouth", "liris_cse", "guesswhat"):
        rows = manifest[manifest["source"] == source]
        assert rows["subject_id"].nunique() < len(rows) / 2, source  # people, not images
    assert manifest.query("source == 'nimh_chefs'")["age"].between(10, 17).all()


def test_subgroup_metadata_of_the_test_set_is_kept(harmonized):
    cafe = harmonized["manifest"].query("source == 'cafe'")
    assert cafe["ethnicity"].notna().all()
    assert cafe["agreement"].between(0, 1).all()
    assert set(cafe["mouth"].dropna()) >= {"open", "closed"}
    assert set(cafe["population"]) == {"child"}


def test_class_distribution_plot_written(harmonized):
    plot = harmonized["root"] / "data/08_reporting/class_distribution.png"
    assert plot.stat().st_size > 10_000
