"""The technique nodes called directly on a tiny cell (32 px MobileNetV3-Small, 16 crops): a
model trained under mixed precision gets its baseline files, and every way a technique can stop
has its own status: ``failed`` (an exception in fine-tuning or conversion, a defect),
``unsupported`` (tfmot refuses a layer type: a real limit), ``skipped`` (no model to start
from)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tf_keras as keras
from PIL import Image

from pediatric_emotion.datasets.models import NoModel
from pediatric_emotion.grid import TECHNIQUES
from pediatric_emotion.modeling import compression, tflite_export
from pediatric_emotion.modeling.architectures import build_classifier
from pediatric_emotion.pipelines.optimization import nodes, techniques

EMOTIONS = ["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"]
ARCHITECTURE = {
    "application": "MobileNetV3Small",
    "application_kwargs": {"minimalistic": True, "include_preprocessing": False},
    "input_scale": 1 / 127.5,
    "input_offset": -1.0,
}
CELL = {"architecture": "mobilenet_v3_small", "variant": "public"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """Every input of a technique node but the model."""
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    rows = []
    for index in range(16):
        path = f"img{index:02d}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / path)
        rows.append({"crop_path": path, "label": index % 7, "split": "train"})
    return {
        "examples": pd.DataFrame(rows),
        "face_crops": SimpleNamespace(root=root),
        "architecture": ARCHITECTURE,
        "variant": {},
        "training": {"image_size": 32, "batch_size": 8, "seed": 0, "cache": "none"},
        "optimization": {
            "quantizations": {"baseline": ["float32", "int8"], "pruned": ["int8"], "qat": ["int8"]},
            "representative_images": 8,
            "fine_tuning": {"max_steps_per_epoch": 1, "run_eagerly": True},
            "pruning": {"frequency": 1, "end_fraction": 1.0},
        },
        "emotions": EMOTIONS,
        "face_crop": {"size": 32, "margin": 0.2},
    }


@pytest.fixture(scope="module")
def mixed_model() -> keras.Model:
    """Built under mixed_float16, as a GPU run trains it (the policy forced on CPU)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return build_classifier(ARCHITECTURE, image_size=32, num_classes=7)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_a_mixed_precision_model_gets_its_baseline_files(mixed_model, inputs):
    files, rows = techniques.export_baseline(
        model=mixed_model, cell=CELL, technique="baseline", **inputs
    )
    assert [(r["quantization"], r["status"]) for r in rows] == [("float32", "ok"), ("int8", "ok")]
    assert sorted(files) == ["float32", "int8"]
    assert files["float32"].spec["input"]["dtype"] == "float32"


def test_a_conversion_error_is_a_failure_named_without_the_interpreters_paths(
    mixed_model, inputs, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError(
            "loc(fused['conv' at \"/opt/venv/lib/python3.11/site-packages/tf_keras/src/x.py\":9])"
        )

    monkeypatch.setattr(tflite_export, "convert_to_tflite", broken)
    files, rows = techniques.export_baseline(
        model=mixed_model, cell=CELL, technique="baseline", **inputs
    )
    assert files == {}
    assert {r["status"] for r in rows} == {"failed"}
    reason = rows[0]["reason"]
    assert reason.startswith("conversion: RuntimeError: loc(fused")
    assert "tf_keras/src/x.py" in reason and "site-packages" not in reason


def test_a_fine_tuning_error_is_a_failure_and_leaves_no_model(mixed_model, inputs, monkeypatch):
    def broken(context, model, callbacks=None):
        raise FloatingPointError("loss became NaN")

    monkeypatch.setattr(techniques, "fine_tune", broken)
    model, files, rows = techniques.prune_classifier(
        model=mixed_model, cell=CELL, technique="pruned", **inputs
    )
    assert isinstance(model, NoModel) and files == {}
    assert [(r["technique"], r["quantization"], r["status"], r["reason"]) for r in rows] == [
        ("pruned", "int8", "failed", "fine-tuning: FloatingPointError: loss became NaN")
    ]


def test_tfmots_refusal_of_a_layer_is_unsupported(mixed_model, inputs, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("Layer <class 'MyLayer'> is not supported.")

    monkeypatch.setattr(compression, "pruning_wrapped", refuse)
    model, _, rows = techniques.prune_classifier(
        model=mixed_model, cell=CELL, technique="pruned", **inputs
    )
    assert isinstance(model, NoModel)
    assert [r["status"] for r in rows] == ["unsupported"]
    assert rows[0]["reason"] == "wrapping: ValueError: Layer <class 'MyLayer'> is not supported."


def test_a_technique_without_its_start_model_is_skipped(inputs):
    files, rows = techniques.train_quantization_aware(
        model=None, cell=CELL, technique="pqat", **{**inputs, "optimization": {
            **inputs["optimization"], "quantizations": {"pqat": ["int8"]}}}
    )  # fmt: skip
    assert files == {}
    assert [r["status"] for r in rows] == ["skipped"]
    assert "no pruned model to start from" in rows[0]["reason"]


def test_the_summary_keeps_each_status(caplog):
    def report(technique, status):
        return [
            {"architecture": "a", "variant": "v", "technique": technique,
             "quantization": "int8", "status": status, "reason": "why"}
        ]  # fmt: skip

    table = nodes.summarize_optimization(
        **{"a.v.pruned": report("pruned", "failed"), "a.v.pqat": report("pqat", "skipped")}
    )
    assert table.set_index("technique")["status"].to_dict() == {
        "pruned": "failed",
        "pqat": "skipped",
    }
    assert "1 file(s) failed" in caplog.text and "a.v pruned int8" in caplog.text


@pytest.fixture(scope="module")
def chain_inputs(inputs) -> dict:
    """The tiny cell with every registered technique writing int8, four clusters, and pruning
    reaching its target on the one fine-tuning step."""
    return {
        **inputs,
        "optimization": {
            **inputs["optimization"],
            "quantizations": {name: ["int8"] for name in TECHNIQUES},
            "clustering": {"clusters": 4},
            "pruning": {"sparsity": 0.5, "frequency": 1, "end_fraction": 1.0},
        },
    }


def extra_inputs(name: str, chain_inputs: dict) -> dict:
    """What a row's builder reads besides the shared inputs: for ``distilled``, a teacher's
    cached logits on every train image (random: the tiny cell's teacher is made up)."""
    examples = chain_inputs["examples"]
    logits = np.random.default_rng(1).normal(size=(len(examples), len(EMOTIONS)))
    teacher = pd.DataFrame(logits, columns=EMOTIONS).assign(crop_path=examples["crop_path"])
    available = {"teacher_logits": teacher}
    return {argument: available[argument] for argument, _ in TECHNIQUES[name].extra_inputs}


@pytest.fixture(scope="module")
def kept_models(chain_inputs) -> dict:
    """The float model, and the models ``pruned``, ``clustered`` and ``distilled`` keep for the
    techniques that start from them, with their rows: each made once through its registry row."""
    kept = {"model": build_classifier(ARCHITECTURE, image_size=32, num_classes=7)}
    for name in ("pruned", "clustered", "distilled"):
        model, files, rows = TECHNIQUES[name].function()(
            model=kept["model"],
            cell=CELL,
            technique=name,
            **chain_inputs,
            **extra_inputs(name, chain_inputs),
        )
        kept[f"{name}_model"], kept[name] = model, (files, rows)
    return kept


@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_every_registered_technique_makes_what_it_promises(name, kept_models, chain_inputs):
    """Each technique on the tiny cell, started from the model its row names: an ok int8 file
    whose weights show what the technique keeps (zeros of pruning, clusters of clustering)."""
    row = TECHNIQUES[name]
    if row.keeps_model:
        files, rows = kept_models[name]
        assert not isinstance(kept_models[f"{name}_model"], NoModel)
    else:
        start = kept_models["model" if row.starts_from is None else f"{row.starts_from}_model"]
        files, rows = row.function()(
            model=start,
            cell=CELL,
            technique=name,
            **chain_inputs,
            **extra_inputs(name, chain_inputs),
        )
    assert [(r["technique"], r["quantization"], r["status"]) for r in rows] == [
        (name, "int8", "ok")
    ]
    assert list(files) == ["int8"] and files["int8"].spec["input"]["dtype"] == "int8"
    sparse = name == "pruned" or (row.preserves or "").startswith("sparsity")
    clustered = name == "clustered" or "clusters" in (row.preserves or "")
    if sparse:
        assert rows[0]["sparsity"] >= 0.45, rows[0]
    else:
        assert rows[0]["sparsity"] < 0.2, rows[0]
    if clustered:
        assert rows[0]["max_unique_per_channel"] <= 4, rows[0]
    else:
        assert rows[0]["max_unique_per_channel"] > 4, rows[0]


def test_a_technique_makes_the_same_file_whatever_ran_before_it(kept_models, chain_inputs):
    """Seeded from the cell's settings: the k-means++ centres and the fine-tuning do not depend on
    the random numbers other work in the process drew (other techniques have run since the
    fixture made its file, and more is drawn here). The weights are compared: the bytes differ
    by the layer names Keras numbers per process (``conv2d_12``)."""
    import tensorflow as tf

    from pediatric_emotion.modeling.tflite_inspection import weight_tensors

    tf.random.uniform((8,))
    np.random.default_rng().random(8)
    _, files, _ = TECHNIQUES["clustered"].function()(
        model=kept_models["model"], cell=CELL, technique="clustered", **chain_inputs
    )
    again = weight_tensors(files["int8"].content)
    first = weight_tensors(kept_models["clustered"][0]["int8"].content)
    assert len(again) == len(first) > 10
    assert all(np.array_equal(a.values, b.values) for a, b in zip(again, first, strict=True))
