"""The HTML report (self-contained, banner, tables, confusion matrix, gaps, published numbers) and
the model cards, from the hand-made tables."""

import re
from html.parser import HTMLParser

import pytest

from pediatric_emotion.pipelines.reporting.distillation import distillation_table
from pediatric_emotion.pipelines.reporting.nodes import (
    build_leaderboard,
    build_report,
    write_model_cards,
)
from tests.pipelines.reporting.conftest import EMOTIONS, FOLDER, with_distilled

INPUTS = ("training_summary", "optimization_summary", "evaluation_metrics", "profiling_results")
VARIANTS = {"demo": {"roles": ["train"], "populations": None}}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.images, self.tables = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[key] for key in ("src", "href") if key in attrs]
        self.images += [attrs["src"]] if tag == "img" else []
        self.tables += tag == "table"


def _report(tables, reporting, *, robustness=False, distillation=False):
    extra = {"robustness_summary": tables["robustness_summary"]} if robustness else {}
    if distillation:
        extra["distillation_teachers"] = tables["distillation_teachers"]
    board, recommendation = build_leaderboard(*(tables[n] for n in INPUTS), reporting, **extra)
    extra = {"robustness_metrics": tables["robustness_metrics"]} if robustness else {}
    page = build_report(
        leaderboard=board,
        recommendation=recommendation,
        subgroup_metrics=tables["subgroup_metrics"],
        confusion_matrices=tables["confusion_matrices"],
        published_comparison=tables["published_comparison"],
        reporting=reporting,
        emotions=EMOTIONS,
        **extra,
    )
    return board, page


def test_the_report_is_self_contained_with_banner_and_tables(tables, reporting):
    _, page = _report(tables, reporting)
    parser = _Links()
    parser.feed(page)
    assert parser.links and all(link.startswith("data:image/png;base64,") for link in parser.links)
    assert len(parser.images) == 3  # two fronts and the recommended file's confusion matrix
    assert parser.tables >= 5  # leaderboard, confusion counts, gaps (2), published
    assert "not the study&#x27;s" in page and 'class="banner"' in page
    assert f"Recommended: <code>{FOLDER}/float32.tflite</code>" in page
    assert "the recommended file: net.demo baseline float32, test split" in page
    assert "best Asian (0.550), worst Caucasian (0.450)" in page  # its subgroup gap
    assert "study (real CAFE, real phone)" in page and "0.6521" in page
    assert "CAFE-like demo set (synthetic)" in page
    assert ">other<" not in page  # this run's rows for models the study did not report: left out
    assert not re.search(r"url\(|@import|<script", page)


def test_none_qualifies_is_shown_with_the_most_accurate_file(tables, reporting):
    _, page = _report(tables, {**reporting, "latency_budget_ms": 1})
    assert "No file qualifies." in page
    assert "no file is within the 1 ms budget" in page
    assert "no file qualifies; the most accurate file: net.demo baseline float32" in page


def test_no_banner_when_the_labels_are_not_demo(tables, reporting):
    _, page = _report(tables, {**reporting, "run_label": "run 7", "test_set_label": "CAFE"})
    assert 'class="banner"' not in page
    _, forced = _report(
        tables, {**reporting, "run_label": "run 7", "test_set_label": "CAFE", "demo_banner": True}
    )
    assert 'class="banner"' in forced


def test_a_malformed_report_input_is_named(tables, reporting):
    tables["confusion_matrices"] = tables["confusion_matrices"].drop(columns=["count"])
    with pytest.raises(ValueError, match="confusion_matrices: missing column 'count'"):
        _report(tables, reporting)


def test_one_model_card_per_exported_file(tables, reporting):
    board, _ = _report(tables, reporting)
    cards = write_model_cards(board, tables["subgroup_metrics"], reporting, VARIANTS)
    assert sorted(cards) == ["net.demo/baseline/float32", "net.demo/baseline/int8"]
    card = cards["net.demo/baseline/int8"]
    assert card.startswith("# Model card: net.demo baseline int8\n")
    assert "**Demo data.**" in card
    assert f"`{FOLDER}/int8.tflite`" in card
    assert "1,500 bytes, gzip 1,200 bytes" in card and "1,000 parameters" in card
    assert "data copy `demo` (roles: train): 80 training and 20 validation" in card
    assert "160 images of 20 subjects" in card
    assert "| balanced accuracy | 0.480 (95% CI 0.380-0.580) | 0.520 (95% CI 0.470-0.570) |" in card
    assert "| ethnicity | balanced_accuracy | 0.100 | best Asian (0.550)" in card
    assert "4.00 ms" in card and "host: Test CPU (benchmark_model" in card
    assert "**Not a diagnosis**" in card
    assert "**Recommended**" in cards["net.demo/baseline/float32"] and "**Recommended**" not in card


def test_the_robustness_section_plots_severity_and_names_the_most_robust_file(tables, reporting):
    _, without = _report(tables, reporting)
    assert "Robustness to camera conditions" not in without
    board, page = _report(tables, reporting, robustness=True)
    parser = _Links()
    parser.feed(page)
    assert len(parser.images) == 4  # the fronts, the confusion matrix and the severity plot
    assert "Robustness to camera conditions" in page
    assert "Balanced accuracy against severity, per corruption family" in page
    # both files are within the 100 ms budget; float32 loses half as much as int8
    assert (
        "Holds up best within the 100 ms budget: net.demo baseline float32, mean balanced "
        "accuracy 0.408 over the corruptions, mCE 1.00 against its cell&#x27;s Keras model; "
        "its worst corruption is rotation." in page
    )
    _, tight = _report(tables, {**reporting, "latency_budget_ms": 7}, robustness=True)
    assert "Holds up best within the 7 ms budget: net.demo baseline int8" in tight
    _, none = _report(tables, {**reporting, "latency_budget_ms": 1}, robustness=True)
    assert "No TFLite file within the 1 ms budget has robustness figures." in none


def test_the_distillation_section_compares_each_distilled_file_with_baseline_and_teacher(
    tables, reporting
):
    _, without = _report(tables, reporting, distillation=True)  # a teacher, no distilled file
    assert "<h2>Distillation</h2>" not in without
    board, page = _report(with_distilled(tables), reporting, distillation=True)
    assert "<h2>Distillation</h2>" in page
    assert (
        "Closes most of the gap: net.demo distilled float32, 60% of the way from its baseline "
        "float32 file to its teacher big.demo (test balanced accuracy 0.560; teacher 0.600)."
        in page
    )
    shown = distillation_table(board)
    assert shown[["quantization", "gap closed"]].values.tolist() == [
        ["float32", "60%"],
        ["int8", "33%"],
    ]
    int8 = shown.iloc[1]
    assert (int8["distilled size (bytes)"], int8["baseline size (bytes)"]) == (1550, 1500)
    assert (int8["distilled latency (ms)"], int8["baseline latency (ms)"]) == (4.5, 4.0)
    assert int8["distilled test BA"] == pytest.approx(0.52)
    assert int8["baseline test BA"] == pytest.approx(0.48)
    assert (int8["teacher"], int8["teacher params"]) == ("big.demo", 5000)
    assert int8["teacher test BA"] == pytest.approx(0.60)
    section = page[page.index("<h2>Distillation</h2>") : page.index("<h2>Confusion matrix</h2>")]
    assert "<table" in section and "gap closed" in section and "<td>33%</td>" in section


def test_the_distillation_section_explains_when_no_file_has_a_gap(tables, reporting):
    _, page = _report(with_distilled(tables, 0.40), reporting, distillation=True)
    assert "<h2>Distillation</h2>" in page
    assert "No distilled file has a gap figure (2 distilled file(s))" in page
    _, untaught = _report(with_distilled(tables), reporting)  # no teachers' table
    assert "No distilled file has a gap figure" in untaught
