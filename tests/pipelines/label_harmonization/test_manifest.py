import logging

import pandas as pd

from pediatric_emotion.pipelines.label_harmonization.manifest import (
    MANIFEST_COLUMNS,
    build_manifest,
    plot_class_distribution,
    select_crops,
)

EMOTIONS = ["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"]


def _records(make_records):
    records = make_records(
        [
            {"source": "kdef", "emotion": "happy", "crop_path": "kdef/a.png"},
            {"source": "kdef", "emotion": "sad", "crop_path": "kdef/b.png"},
            {"source": "kdef", "emotion": None, "drop_reason": "excluded_label", "detail": "x"},
            {"source": "cafe", "role": "test", "emotion": "fear", "crop_path": "cafe/c.png"},
            {"source": "cafe", "role": "test", "drop_reason": "no_face_found", "detail": "y"},
            {"source": "cafe", "role": "test", "drop_reason": "no_face_found", "detail": "z"},
        ]
    )
    records["split"] = ["train", "val", None, "test", None, None]
    return records


def test_report_counts_add_up_to_records_read(make_records):
    records = _records(make_records)
    manifest, report, drops = build_manifest(records, EMOTIONS)
    assert report.to_dict("records") == [
        {"source": "kdef", "reason": "kept", "count": 2},
        {"source": "kdef", "reason": "excluded_label", "count": 1},
        {"source": "cafe", "reason": "kept", "count": 1},
        {"source": "cafe", "reason": "no_face_found", "count": 2},
    ]
    assert report.groupby("source")["count"].sum().to_dict() == {"cafe": 3, "kdef": 3}
    assert len(manifest) == 2 + 1
    assert len(drops) == 3 and set(drops["reason"]) == {"excluded_label", "no_face_found"}


def test_manifest_schema(make_records):
    manifest, _, _ = build_manifest(_records(make_records), EMOTIONS)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert list(manifest["emotion"].cat.categories) == EMOTIONS
    assert manifest["split"].tolist() == ["train", "val", "test"]


def test_select_crops_keeps_only_manifest_crops(make_records):
    manifest, _, _ = build_manifest(_records(make_records), EMOTIONS)
    crops = {"kdef/a.png": b"a", "kdef/b.png": b"b", "cafe/c.png": b"c", "kdef/dup.png": b"d"}
    assert sorted(select_crops(crops, manifest)) == ["cafe/c.png", "kdef/a.png", "kdef/b.png"]


def test_class_distribution_plot_has_a_bar_group_per_source(make_records):
    manifest, _, _ = build_manifest(_records(make_records), EMOTIONS)
    figure = plot_class_distribution(manifest)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["kdef\n(train)", "cafe\n(test)"]
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == EMOTIONS


def test_report_has_a_row_for_every_checked_source_even_one_without_records(make_records, caplog):
    records = _records(make_records)
    inventory = pd.DataFrame(
        {"source": ["kdef", "cafe", "annexed"], "path": ["/d/kdef", "/d/cafe", "/d/annexed"]}
    )
    records.loc[records["source"] == "cafe", ["drop_reason", "split"]] = ["broken_link", None]
    with caplog.at_level(logging.WARNING):
        _, report, _ = build_manifest(records, EMOTIONS, inventory)
    assert report.to_dict("records") == [
        {"source": "kdef", "reason": "kept", "count": 2},
        {"source": "kdef", "reason": "excluded_label", "count": 1},
        {"source": "cafe", "reason": "kept", "count": 0},
        {"source": "cafe", "reason": "broken_link", "count": 3},
        {"source": "annexed", "reason": "kept", "count": 0},
    ]
    warnings = [r.getMessage() for r in caplog.records]
    assert any(
        "cafe" in m and "no image kept of 3" in m and "{'broken_link': 3}" in m for m in warnings
    )
    assert any("annexed" in m and "no image kept of 0" in m and "/d/annexed" in m for m in warnings)
