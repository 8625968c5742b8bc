"""The study's published numbers beside this run's, on the hand-made tables: each row labelled
with its source, this run's test-set metrics, Subset A and the ethnicity gap; the study's
headline numbers in conf."""

import numpy as np
import pandas as pd
import pytest
import yaml

from pediatric_emotion.pipelines.reporting.published import (
    PUBLISHED_COLUMNS,
    compare_with_published,
)
from tests.pipelines.reporting.conftest import RUN_LABEL, TEST_SET

STUDY = "study (real CAFE, real phone)"
EVALUATION = {
    "run_label": RUN_LABEL,
    "test_set_label": TEST_SET,
    "published": {
        "source": STUDY,
        "test_set": "CAFE (real)",
        "results": [
            {
                "model": "MobileNetV3-Large",
                "copy": "public + GuessWhat",
                "architecture": "net",
                "variant": "demo",
                "balanced_accuracy": 0.6521,
                "moto_g6_latency_ms": 90,
                "macro_f1": None,  # not reported: no row
            }
        ],
    },
}


def _subgroups(tables) -> pd.DataFrame:
    """The hand-made subgroups, with Subset A and an ethnicity accuracy gap for net's int8."""
    model = dict(architecture="net", variant="demo", technique="baseline", quantization="int8")
    extra = [
        dict(model, split=split, grouping=grouping, group=group, metric=metric, value=value)
        for split, grouping, group, metric, value in (
            ("test", "subset_a", "Subset A", "balanced_accuracy", 0.7),
            ("test", "subset_a", "not Subset A", "balanced_accuracy", 0.3),
            ("test", "ethnicity", "gap (best - worst)", "accuracy", 0.08),
            ("val", "subset_a", "Subset A", "macro_f1", 0.1),
        )
    ]
    return pd.concat([tables["subgroup_metrics"], pd.DataFrame(extra)], ignore_index=True)


def test_the_studys_rows_and_this_runs_test_numbers_are_labelled(tables):
    metrics = tables["evaluation_metrics"]
    table = compare_with_published(metrics, _subgroups(tables), EVALUATION)
    assert list(table.columns) == PUBLISHED_COLUMNS
    assert set(table["source"]) == {STUDY, RUN_LABEL}
    study = table[table["source"] == STUDY]
    assert study[["metric", "value"]].values.tolist() == [
        ["balanced_accuracy", 0.6521],
        ["moto_g6_latency_ms", 90.0],
    ]
    assert (study["architecture"] == "net").all() and (study["test_set"] == "CAFE (real)").all()
    assert study["technique"].isna().all()
    ours = table[table["source"] == RUN_LABEL]
    assert (ours["test_set"] == TEST_SET).all()
    assert (ours["model"] == ours["architecture"]).all() and (ours["copy"] == ours["variant"]).all()
    headline = metrics[
        (metrics["split"] == "test") & metrics["metric"].isin(["balanced_accuracy", "macro_f1"])
    ]
    assert len(ours[ours["metric"].isin(["balanced_accuracy", "macro_f1"])]) == len(headline)
    int8 = ours[(ours["architecture"] == "net") & (ours["quantization"] == "int8")]
    values = int8.set_index("metric")["value"]
    assert values["balanced_accuracy"] == pytest.approx(0.48)
    assert values["subset_a_balanced_accuracy"] == pytest.approx(0.7)
    assert values["ethnicity_accuracy_gap"] == pytest.approx(0.08)
    assert "subset_a_macro_f1" not in values  # a val-split row: not compared
    assert not np.isnan(int8.set_index("metric").loc["balanced_accuracy", "ci_low"])


def test_the_run_label_must_differ_from_the_studys(tables):
    with pytest.raises(ValueError, match="run_label"):
        compare_with_published(
            tables["evaluation_metrics"],
            tables["subgroup_metrics"],
            {**EVALUATION, "run_label": STUDY},
        )


def test_conf_holds_the_studys_headline_numbers(project_root):
    conf = yaml.safe_load((project_root / "conf/base/parameters_evaluation.yml").read_text())
    published = conf["evaluation"]["published"]
    assert published["source"] == STUDY
    rows = {(r["model"], r["copy"]): r for r in published["results"]}
    headline = rows[("MobileNetV3-Large", "public + GuessWhat")]
    assert (headline["balanced_accuracy"], headline["macro_f1"]) == (0.6521, 0.6450)
    assert headline["moto_g6_latency_ms"] == 90
    assert rows[("MobileNetV2", "all")]["balanced_accuracy"] == 0.6511
    assert rows[("MobileNetV3-Large", "children only")]["macro_f1"] == 0.6029
