"""Evaluation nodes: pick the images of one cell (the test role and the cell's validation split),
predict them with the cell's Keras model and with every TFLite file, score the predictions, and
join the cells' tables; the optional peers; the study's published numbers beside ours.

TensorFlow is imported inside ``predict_keras`` only, so the registry starts without it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pediatric_emotion.datasets import FileTree, TFLiteModel
from pediatric_emotion.harmonized_crops import check_crops_match
from pediatric_emotion.pipelines.evaluation.metrics import (
    confusion_matrix,
    metric_rows,
    summary_scores,
)
from pediatric_emotion.pipelines.evaluation.peers import available_peers, peer_scores
from pediatric_emotion.pipelines.evaluation.subgroups import group_labels, subgroup_rows
from pediatric_emotion.pipelines.evaluation.tflite_inference import (
    DEFAULT_BATCH_SIZE,
    InputRecipe,
    check_spec_labels,
    tflite_probabilities,
)
from pediatric_emotion.pipelines.training.nodes import cell_settings

logger = logging.getLogger(__name__)

SPLITS = ("test", "val")
KERAS = ("keras", "float32")  # technique, quantization of the cell's float Keras model
MODEL_COLUMNS = ["arch", "variant", "technique", "quantization", "split"]
METRIC_COLUMNS = [*MODEL_COLUMNS, "metric", "value", "ci_low", "ci_high"]
SUBGROUP_COLUMNS = [
    *MODEL_COLUMNS,
    "grouping",
    "group",
    "n_images",
    "n_subjects",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "note",
]
COMPRESSION_COLUMNS = [
    *MODEL_COLUMNS,
    "n_images",
    "agreement_with_keras",
    "balanced_accuracy",
    "keras_balanced_accuracy",
    "balanced_accuracy_change",
    "macro_f1_change",
    "mean_abs_score_difference",
]
CONFUSION_COLUMNS = [*MODEL_COLUMNS, "true", "predicted", "count"]
PUBLISHED_COLUMNS = [
    "source",
    "model",
    "version",
    "copy",
    "arch",
    "variant",
    "technique",
    "quantization",
    "test_set",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "note",
]
METADATA_COLUMNS = ("source", "ethnicity", "age", "sex", "mouth", "agreement")


def _score_columns(emotions: Sequence[str]) -> list[str]:
    return [f"p_{emotion}" for emotion in emotions]


def _splits(evaluation: Mapping[str, Any]) -> list[str]:
    splits = list(evaluation.get("splits") or SPLITS)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"evaluation.splits: unknown {unknown}; known: {list(SPLITS)}")
    return splits


def _with_labels(rows: pd.DataFrame, emotions: Sequence[str], what: str) -> pd.DataFrame:
    class_index = {name: index for index, name in enumerate(emotions)}
    emotion = rows["emotion"].astype("object")
    unknown = rows[~emotion.isin(list(class_index))]
    if len(unknown):
        first = unknown.iloc[0]
        raise ValueError(
            f"{what}: {len(unknown)} image(s) have an emotion outside params:emotions, e.g. "
            f"{first.get('image_id', first['crop_path'])}: {first['emotion']!r}"
        )
    return rows.assign(label=emotion.map(class_index).astype("int64"))


def _check_crops(images: pd.DataFrame, root: Path, what: str) -> None:
    missing = [path for path in images["crop_path"] if not (root / str(path)).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{what}: {len(missing)} crop file(s) missing under {root}, e.g. {missing[0]}"
        )


def select_test_images(
    face_manifest: pd.DataFrame,
    face_crops: FileTree,
    evaluation: Mapping[str, Any],
    emotions: Sequence[str],
) -> pd.DataFrame:
    """The test role's rows of the manifest, checked, with their class index."""
    role = str(evaluation.get("test_role", "test"))
    rows = face_manifest[face_manifest["role"].astype("object") == role]
    if rows.empty:
        raise ValueError(
            f"face_manifest has no rows with role == {role!r}: configure a test source "
            "(CAFE, or the CAFE-like demo set) with that role"
        )
    rows = _with_labels(rows.reset_index(drop=True), emotions, f"face_manifest (role {role})")
    _check_crops(rows, Path(face_crops.root), f"face_manifest (role {role})")
    return rows.assign(split="test")


def select_evaluation_images(
    face_manifest: pd.DataFrame,
    face_crops: FileTree,
    examples: pd.DataFrame,
    evaluation: Mapping[str, Any],
    emotions: list[str],
) -> pd.DataFrame:
    """The images one cell is evaluated on: the test role, and the validation rows of the cell's
    training_examples (joined to the manifest for subject and metadata). Fails before any model
    runs on a missing test set, an unknown emotion, a missing crop file or a crops folder of
    another harmonization run."""
    check_crops_match(face_manifest, face_crops.root, "face_manifest")
    check_crops_match(examples, face_crops.root, "training_examples")
    splits = _splits(evaluation)
    keep = ["split", "image_id", "crop_path", "subject_id", "emotion", "label"]
    parts = []
    if "test" in splits:
        parts.append(select_test_images(face_manifest, face_crops, evaluation, emotions))
    if "val" in splits:
        val = examples[examples["split"].astype("object") == "val"][["crop_path", "label"]]
        if val.empty:
            raise ValueError("training_examples has no rows with split == 'val'")
        manifest = face_manifest.drop_duplicates("crop_path").set_index("crop_path")
        absent = ~val["crop_path"].isin(manifest.index)
        if absent.any():
            raise ValueError(
                f"training_examples: {int(absent.sum())} val crop(s) are not in face_manifest, "
                f"e.g. {val['crop_path'][absent].iloc[0]}"
            )
        joined = manifest.loc[val["crop_path"]].reset_index()
        joined = _with_labels(joined, emotions, "validation split")
        if (joined["label"].to_numpy() != val["label"].to_numpy()).any():
            raise ValueError("training_examples: val labels disagree with face_manifest's emotion")
        _check_crops(joined, Path(face_crops.root), "validation split")
        parts.append(joined.assign(split="val"))
    images = pd.concat(parts, ignore_index=True)
    columns = keep + [c for c in METADATA_COLUMNS if c in images]
    images = images[columns].copy()
    for column in ("split", "image_id", "crop_path", "subject_id", "emotion"):
        images[column] = images[column].astype("object")
    # An image without a subject is its own cluster in the bootstrap.
    no_subject = images["subject_id"].isna()
    images.loc[no_subject, "subject_id"] = "image:" + images.loc[no_subject, "crop_path"]
    logger.info(
        "Evaluation images: %s",
        ", ".join(f"{s} {int((images['split'] == s).sum())}" for s in splits),
    )
    return images


def _predictions(
    images: pd.DataFrame,
    scores: np.ndarray,
    emotions: Sequence[str],
    technique: str,
    quantization: str,
) -> pd.DataFrame:
    frame = images[["split", "crop_path", "label"]].reset_index(drop=True).copy()
    frame.insert(0, "quantization", quantization)
    frame.insert(0, "technique", technique)
    frame["predicted"] = scores.argmax(axis=1).astype("int64")
    for column, values in zip(_score_columns(emotions), scores.T, strict=True):
        frame[column] = values.astype("float64")
    return frame


def predict_keras(
    *,
    model: Any,
    images: pd.DataFrame,
    face_crops: FileTree,
    architecture: Mapping[str, Any],
    variant: Mapping[str, Any],
    training: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    emotions: list[str],
    cell: Mapping[str, str],
) -> pd.DataFrame:
    """Class scores of the cell's float Keras model, in batches, with its training preprocessing."""
    from pediatric_emotion.modeling.inputs import Preprocessing, make_dataset

    name = f"{cell['architecture']}.{cell['variant']}"
    outputs = int(model.output_shape[-1])
    if outputs != len(emotions):
        raise ValueError(f"{name}.model has {outputs} outputs, params:emotions {len(emotions)}")
    settings = cell_settings(training, architecture, variant)
    preprocessing = Preprocessing.from_config(architecture, int(settings["image_size"]))
    data = make_dataset(
        [str(Path(face_crops.root) / path) for path in images["crop_path"]],
        None,
        preprocessing=preprocessing,
        batch_size=int(evaluation.get("batch_size", 64)),
        training=False,
        num_classes=len(emotions),
        cache="none",
    )
    scores = np.asarray(model.predict(data, verbose=0), dtype=np.float64)
    logger.info("%s keras: %d images predicted", name, len(scores))
    return _predictions(images, scores, emotions, *KERAS)


def predict_tflite(
    *,
    files: Mapping[str, Callable[[], TFLiteModel]],
    images: pd.DataFrame,
    face_crops: FileTree,
    evaluation: Mapping[str, Any],
    emotions: list[str],
    cell: Mapping[str, str],
    technique: str,
) -> pd.DataFrame:
    """Class scores of every file of one technique (quantization -> file), through the LiteRT
    interpreter in batches of ``evaluation.tflite.batch_size`` (1: one image per invoke), fed as
    each file's spec says. Every spec is checked before the first image runs; the images are
    decoded once for all files of the same input size."""
    name = f"{cell['architecture']}.{cell['variant']}"
    loaded: dict[str, TFLiteModel] = {}
    for quantization in sorted(files):
        where = f"{name}/{technique}/{quantization}.tflite"
        model = files[quantization]()
        check_spec_labels(model.spec, emotions, where)
        for key, expected in (("technique", technique), ("quantization", quantization)):
            if key in model.spec and model.spec[key] != expected:
                raise ValueError(f"{where}: the spec says {key} {model.spec[key]!r}")
        loaded[quantization] = model
    paths = [str(Path(face_crops.root) / path) for path in images["crop_path"]]
    settings = evaluation.get("tflite") or {}
    threads = settings.get("num_threads")
    decoded: dict[tuple[int, int, str], np.ndarray] = {}
    frames = []
    for quantization, model in loaded.items():
        where = f"{name}/{technique}/{quantization}.tflite"
        recipe = InputRecipe.from_spec(model.spec, where)
        size = (recipe.height, recipe.width, recipe.colour)
        if size not in decoded:
            decoded[size] = recipe.read_all(paths, where=where)
        scores = tflite_probabilities(
            model.content,
            model.spec,
            paths,
            where=where,
            num_threads=None if threads is None else int(threads),
            batch_size=int(settings.get("batch_size", DEFAULT_BATCH_SIZE)),
            pixels=decoded[size],
        )
        frames.append(_predictions(images, scores, emotions, technique, quantization))
    if not frames:
        return pd.DataFrame(columns=["technique", "quantization", "split", "crop_path", "label"])
    return pd.concat(frames, ignore_index=True)


def plot_confusion(
    matrix: np.ndarray, emotions: Sequence[str], title: str, balanced_accuracy: float
) -> Figure:
    """Counts in each cell, colour by the share of the true class (row)."""
    figure = Figure(figsize=(5.6, 4.8), layout="constrained")
    axis = figure.subplots()
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if shares[i, j] > 0.5 else "black"
        axis.text(j, i, str(count), ha="center", va="center", color=colour)
    axis.set_xticks(range(len(emotions)), emotions, rotation=45, ha="right")
    axis.set_yticks(range(len(emotions)), emotions)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{title}\nbalanced accuracy {balanced_accuracy:.3f}", fontsize=9)
    figure.colorbar(image, ax=axis, label="share of the true class")
    return figure


def evaluate_cell(
    *,
    images: pd.DataFrame,
    evaluation: Mapping[str, Any],
    emotions: list[str],
    cell: Mapping[str, str],
    **predictions: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Callable[[], Figure]]]:
    """Metrics, subgroup metrics, compression cost and confusion matrices of every model of one
    cell (``predictions``: the Keras model's and each technique's tables)."""
    arch, variant = cell["architecture"], cell["variant"]
    table = pd.concat([p for p in predictions.values() if len(p)], ignore_index=True)
    scores_columns = _score_columns(emotions)
    num_classes = len(emotions)
    bootstrap = evaluation.get("bootstrap") or {}
    subgroups = evaluation.get("subgroups") or {}
    subgroup_splits = set(subgroups.get("splits") or ["test"])
    keyed_images = images.set_index(["split", "crop_path"])
    metrics, subgroup, confusion, compression = [], [], [], []
    plots: dict[str, Callable[[], Figure]] = {}
    keras = table[(table["technique"] == KERAS[0]) & (table["quantization"] == KERAS[1])]
    for (technique, quantization, split), group in table.groupby(
        ["technique", "quantization", "split"], sort=False
    ):
        where = f"{arch}.{variant} {technique} {quantization} {split}"
        meta = keyed_images.reindex(pd.MultiIndex.from_frame(group[["split", "crop_path"]]))
        if meta["label"].isna().any() or len(group) != int((images["split"] == split).sum()):
            raise ValueError(f"{where}: the predictions do not cover the split's images")
        labels = group["label"].to_numpy(dtype=np.int64)
        scores = group[scores_columns].to_numpy(dtype=np.float64)
        predicted = scores.argmax(axis=1)
        subjects = meta["subject_id"].astype(str).to_numpy()
        model = {
            "arch": arch,
            "variant": variant,
            "technique": technique,
            "quantization": quantization,
            "split": split,
        }
        rows = metric_rows(
            labels,
            scores,
            subjects,
            emotions,
            bootstrap=bootstrap,
            ece_bins=int(evaluation.get("ece_bins", 10)),
        )
        metrics.extend({**model, **row} for row in rows)
        matrix = confusion_matrix(labels, predicted, num_classes)
        for (i, j), count in np.ndenumerate(matrix):
            confusion.append(
                {**model, "true": emotions[i], "predicted": emotions[j], "count": int(count)}
            )
        balanced = float(summary_scores(matrix)["balanced_accuracy"])
        plots[f"{split}/{technique}.{quantization}"] = functools.partial(
            plot_confusion,
            matrix,
            list(emotions),
            f"{arch}.{variant} {technique} {quantization}, {split} split, "
            f"{evaluation.get('run_label', 'this run')}",
            balanced,
        )
        if split in subgroup_splits:
            groupings = group_labels(meta.reset_index(drop=True), subgroups)
            for row in subgroup_rows(
                labels,
                predicted,
                subjects,
                groupings,
                num_classes=num_classes,
                min_group_size=int(subgroups.get("min_group_size", 10)),
                bootstrap=bootstrap,
            ):
                subgroup.append({**model, **row})
        if (technique, quantization) != KERAS and len(keras):
            compression.append(_compression_row(model, group, keras, emotions))
    logger.info("%s.%s: %d models x splits scored", arch, variant, len(plots))
    return (
        pd.DataFrame(metrics, columns=METRIC_COLUMNS),
        pd.DataFrame(subgroup, columns=SUBGROUP_COLUMNS),
        pd.DataFrame(compression, columns=COMPRESSION_COLUMNS),
        pd.DataFrame(confusion, columns=CONFUSION_COLUMNS),
        plots,
    )


def _compression_row(
    model: dict[str, Any], group: pd.DataFrame, keras: pd.DataFrame, emotions: Sequence[str]
) -> dict[str, Any]:
    """Agreement with the float Keras model on the same images, and the change in scores."""
    columns = _score_columns(emotions)
    reference = keras[keras["split"] == model["split"]].set_index("crop_path")
    reference = reference.loc[group["crop_path"]]
    labels = group["label"].to_numpy(dtype=np.int64)
    mine = group[columns].to_numpy(dtype=np.float64)
    theirs = reference[columns].to_numpy(dtype=np.float64)
    num_classes = len(emotions)
    own = summary_scores(confusion_matrix(labels, mine.argmax(axis=1), num_classes))
    base = summary_scores(confusion_matrix(labels, theirs.argmax(axis=1), num_classes))
    return {
        **model,
        "n_images": len(group),
        "agreement_with_keras": float(np.mean(mine.argmax(axis=1) == theirs.argmax(axis=1))),
        "balanced_accuracy": float(own["balanced_accuracy"]),
        "keras_balanced_accuracy": float(base["balanced_accuracy"]),
        "balanced_accuracy_change": float(own["balanced_accuracy"] - base["balanced_accuracy"]),
        "macro_f1_change": float(own["macro_f1"] - base["macro_f1"]),
        "mean_abs_score_difference": float(np.mean(np.abs(mine - theirs))),
    }


def evaluate_peers(
    face_manifest: pd.DataFrame,
    face_crops: FileTree,
    evaluation: Mapping[str, Any],
    emotions: list[str],
) -> pd.DataFrame:
    """Metrics of the configured peers on the test images; a peer whose package is not
    importable is skipped with one log line (the table then has no rows for it)."""
    rows: list[dict[str, Any]] = []
    peers = available_peers(evaluation.get("peers") or {})
    if not peers:
        return pd.DataFrame(rows, columns=METRIC_COLUMNS)
    images = select_test_images(face_manifest, face_crops, evaluation, emotions)
    paths = [str(Path(face_crops.root) / path) for path in images["crop_path"]]
    for name, config in peers.items():
        scores = peer_scores(name, config, paths, emotions)
        model = {
            "arch": name,
            "variant": "published_weights",
            "technique": "peer",
            "quantization": str(config.get("runtime")),
            "split": "test",
        }
        for row in metric_rows(
            images["label"].to_numpy(),
            scores,
            images["subject_id"].astype(str).to_numpy(),
            emotions,
            bootstrap=evaluation.get("bootstrap") or {},
            ece_bins=int(evaluation.get("ece_bins", 10)),
        ):
            rows.append({**model, **row})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def concatenate_tables(*tables: pd.DataFrame) -> pd.DataFrame:
    """The cells' tables, one below the other, columns of the first."""
    frames = [t for t in tables if len(t)]
    if not frames:
        return tables[0].iloc[0:0] if tables else pd.DataFrame()
    return pd.concat(frames, ignore_index=True).reindex(columns=list(tables[0].columns))


STUDY_METRICS = (
    "balanced_accuracy",
    "macro_f1",
    "subset_a_balanced_accuracy",
    "subset_a_macro_f1",
    "moto_g6_latency_ms",
    "ethnicity_accuracy_gap",
)


def compare_with_published(
    evaluation_metrics: pd.DataFrame,
    subgroup_metrics: pd.DataFrame,
    evaluation: Mapping[str, Any],
) -> pd.DataFrame:
    """The study's numbers (real CAFE, real phone; from conf) and this run's test-set numbers in
    one table, each row labelled with its ``source``."""
    published = evaluation.get("published") or {}
    study_source = str(published.get("source", "study (real CAFE, real phone)"))
    run_source = str(evaluation.get("run_label", "this run (demo data)"))
    if study_source == run_source:
        raise ValueError("evaluation.run_label must differ from evaluation.published.source")
    rows: list[dict[str, Any]] = []
    for result in published.get("results") or []:
        for metric in STUDY_METRICS:
            if result.get(metric) is None:
                continue
            rows.append(
                {
                    "source": study_source,
                    "model": result.get("model"),
                    "version": result.get("version"),
                    "copy": result.get("copy"),
                    "arch": result.get("arch"),
                    "variant": result.get("variant"),
                    "technique": None,  # the study's models, as the paper reports them
                    "quantization": None,
                    "test_set": published.get("test_set"),
                    "metric": metric,
                    "value": float(result[metric]),
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "note": result.get("note"),
                }
            )
    ours = evaluation_metrics[
        (evaluation_metrics["split"] == "test")
        & evaluation_metrics["metric"].isin(["balanced_accuracy", "macro_f1"])
    ]
    subset_a = subgroup_metrics[
        (subgroup_metrics["split"] == "test")
        & (subgroup_metrics["grouping"] == "subset_a")
        & (subgroup_metrics["group"] == "Subset A")
        & subgroup_metrics["metric"].isin(["balanced_accuracy", "macro_f1"])
    ].assign(metric=lambda t: "subset_a_" + t["metric"])
    gap = subgroup_metrics[
        (subgroup_metrics["split"] == "test")
        & (subgroup_metrics["grouping"] == "ethnicity")
        & (subgroup_metrics["metric"] == "accuracy")
        & subgroup_metrics["group"].str.startswith("gap")
    ].assign(metric="ethnicity_accuracy_gap")
    for table in (ours, subset_a, gap):
        for record in table.to_dict("records"):
            rows.append(
                {
                    "source": run_source,
                    "model": record["arch"],
                    "version": None,
                    "copy": record["variant"],
                    "arch": record["arch"],
                    "variant": record["variant"],
                    "technique": record["technique"],
                    "quantization": record["quantization"],
                    "test_set": evaluation.get("test_set_label"),
                    "metric": record["metric"],
                    "value": record["value"],
                    "ci_low": record.get("ci_low"),
                    "ci_high": record.get("ci_high"),
                    "note": record.get("note"),
                }
            )
    return pd.DataFrame(rows, columns=PUBLISHED_COLUMNS)
