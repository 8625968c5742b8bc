import pandas as pd
import pytest

from pediatric_emotion.grid import load_project_parameters, training_cells
from pediatric_emotion.pipelines.training.nodes import (
    SUMMARY_COLUMNS,
    cell_settings,
    plot_learning_curve,
    select_training_examples,
    summarize_training,
)

EMOTIONS = ["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"]


def test_default_grid_is_five_architectures_times_two_copies(project_root):
    cells = training_cells(load_project_parameters(project_root))
    assert len(cells) == 10
    assert {arch for arch, _ in cells} == {
        "mobilenet_v3_small",
        "mobilenet_v2",
        "efficientnet_b0",
        "mobilenet_v3_large",
        "nasnet_mobile",
    }
    assert {variant for _, variant in cells} == {"public", "public_guesswhat"}


def test_grid_refuses_empty_or_dotted_names():
    with pytest.raises(ValueError, match="empty"):
        training_cells({"architectures": {}, "variants": {"a": {}}})
    with pytest.raises(ValueError, match="cannot contain '.'"):
        training_cells({"architectures": {"mobilenet.v2": {}}, "variants": {"a": {}}})


@pytest.fixture
def manifest():
    rows = []
    for source, role, population in [
        ("kdef", "train", "adult"),
        ("nimh_chefs", "train", "child"),
        ("guesswhat", "guesswhat", "child"),
        ("cafe", "test", "child"),
    ]:
        for split in ("train", "val") if role != "test" else ("test",):
            for emotion in ("happy", "sad"):
                rows.append(
                    {
                        "source": source,
                        "role": role,
                        "population": population,
                        "split": split,
                        "emotion": emotion,
                        "crop_path": f"{source}/{split}_{emotion}.png",
                    }
                )
    frame = pd.DataFrame(rows)
    frame["emotion"] = pd.Categorical(frame["emotion"], categories=EMOTIONS)
    return frame


def test_public_copy_excludes_guesswhat_and_test(manifest):
    examples = select_training_examples(manifest, {"roles": ["train"]}, EMOTIONS)
    assert set(examples["source"]) == {"kdef", "nimh_chefs"}
    assert set(examples["split"]) == {"train", "val"}
    assert set(examples["label"]) == {EMOTIONS.index("happy"), EMOTIONS.index("sad")}


def test_guesswhat_copy_and_population_filter(manifest):
    both = select_training_examples(manifest, {"roles": ["train", "guesswhat"]}, EMOTIONS)
    assert set(both["source"]) == {"kdef", "nimh_chefs", "guesswhat"}
    children = select_training_examples(
        manifest, {"roles": ["train", "guesswhat"], "populations": ["child"]}, EMOTIONS
    )
    assert set(children["source"]) == {"nimh_chefs", "guesswhat"}
    no_kdef = select_training_examples(
        manifest, {"roles": ["train"], "exclude_sources": ["kdef"]}, EMOTIONS
    )
    assert set(no_kdef["source"]) == {"nimh_chefs"}


@pytest.mark.parametrize(
    "variant, message",
    [
        ({"roles": []}, "roles"),
        ({"roles": ["train", "test"]}, "test role"),
        ({"roles": ["train"], "populations": ["teen"]}, "selects no train images"),
    ],
)
def test_bad_variants_are_refused(manifest, variant, message):
    with pytest.raises(ValueError, match=message):
        select_training_examples(manifest, variant, EMOTIONS)


def test_cell_settings_let_architecture_then_variant_override():
    merged = cell_settings(
        {"batch_size": 32, "epochs": 5},
        {"training": {"batch_size": 8}},
        {"training": {"epochs": 2}},
    )
    assert merged == {"batch_size": 8, "epochs": 2}


def test_cell_settings_merge_nested_mappings_key_by_key():
    merged = cell_settings(
        {"early_stopping": {"patience": 3, "start_epoch": 6}, "augmentation": {"flip": True}},
        {"training": {"early_stopping": {"start_epoch": 9}}},
        {"training": {"augmentation": None}},
    )
    assert merged == {"early_stopping": {"patience": 3, "start_epoch": 9}, "augmentation": None}


def test_learning_curve_and_summary():
    history = {
        "epoch": [1, 2, 3],
        "phase": ["head", "fine_tune", "fine_tune"],
        "loss": [2.0, 1.5, 1.2],
        "accuracy": [0.2, 0.4, 0.5],
        "val_loss": [1.9, 1.6, 1.4],
        "val_accuracy": [0.2, 0.35, 0.3],
        "val_balanced_accuracy": [0.18, 0.33, 0.31],
        "learning_rate": [1e-3, 1e-4, 1e-4],
    }
    figure = plot_learning_curve(history)
    legend = [t.get_text() for t in figure.axes[1].get_legend().get_texts()]
    assert "best (epoch 2)" in legend
    table = summarize_training(
        {"architecture": "a", "variant": "v", "best_val_balanced_accuracy": 0.3},
        {"architecture": "b", "variant": "v", "best_val_balanced_accuracy": 0.4},
    )
    assert list(table.columns[: len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert table["architecture"].tolist() == ["a", "b"]
