"""The teachers of the ``distilled`` technique: one per optimized cell, chosen in conf
(``optimization.distillation.teacher``) among the models of the cell's data copy, its logits
computed once per train image and cached for the student; and the table of the teachers.

- ``best_of_grid``: the copy's model with the best validation balanced accuracy among
  ``members`` (default: every architecture, teacher-only ones included);
- ``ensemble``: the mean of the members' probabilities;
- ``file``: a saved Keras model (``file``), read with the preprocessing and image size of the
  architecture named by ``file_architecture``.

Each teacher is also scored on the copy's validation rows and on the test role (the images the
evaluation pipeline scores), so the report can say how much of the teacher-student gap a
distilled file closes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.grid import cell_name, cell_settings
from pediatric_emotion.harmonized_crops import check_crops_match, select_test_images

logger = logging.getLogger(__name__)

TEACHER_KINDS = ("best_of_grid", "ensemble", "file")
TEACHER_COLUMNS = [
    "variant",
    "teacher",
    "kind",
    "members",
    "params",
    "val_balanced_accuracy",
    "test_balanced_accuracy",
    "images",
]
DEFAULTS: dict[str, Any] = {
    "teacher": "best_of_grid",
    "members": None,
    "file": None,
    "file_architecture": None,
    "alpha": 0.5,
    "temperature": 4.0,
    "student_start": "trained",
    "epochs": None,
    "learning_rate": None,
    "max_steps_per_epoch": None,
}


def distillation_settings(
    optimization: Mapping[str, Any], architectures: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``optimization.distillation`` over its defaults, checked: the teacher kind, its members
    (known architectures) or its file and file architecture, alpha, temperature, the student's
    start. Errors name the key."""
    given = dict(optimization.get("distillation") or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"optimization.distillation: unknown keys {unknown}; known {list(DEFAULTS)}"
        )
    settings = {**DEFAULTS, **given}
    if settings["teacher"] not in TEACHER_KINDS:
        raise ValueError(
            f"optimization.distillation.teacher: {settings['teacher']!r} "
            f"(one of {list(TEACHER_KINDS)})"
        )
    if settings["student_start"] not in ("trained", "scratch"):
        raise ValueError(
            "optimization.distillation.student_start: "
            f"{settings['student_start']!r} (trained | scratch)"
        )
    alpha, temperature = float(settings["alpha"]), float(settings["temperature"])
    if not 0.0 <= alpha <= 1.0 or temperature <= 0.0:
        raise ValueError(
            f"optimization.distillation: alpha {alpha} must be in [0, 1], temperature "
            f"{temperature} > 0"
        )
    if architectures is not None:
        if settings["teacher"] == "file":
            if not settings["file"] or settings["file_architecture"] not in architectures:
                raise ValueError(
                    "optimization.distillation: teacher `file` needs `file` (a .keras model) and "
                    "`file_architecture` (an entry of `architectures`, for its preprocessing), "
                    f"got {settings['file']!r}, {settings['file_architecture']!r}"
                )
        else:
            members = settings["members"] or list(architectures)
            missing = [m for m in members if m not in architectures]
            if missing:
                raise ValueError(
                    f"optimization.distillation.members: {missing} are not architectures of "
                    f"the grid ({list(architectures)})"
                )
            settings["members"] = list(members)
    return settings


def teacher_inputs(settings: Mapping[str, Any], variant: str) -> dict[str, str]:
    """The catalog entries the teacher node of ``variant`` reads besides the shared ones: each
    member's model and training metrics (none for a teacher file)."""
    if settings["teacher"] == "file":
        return {}
    inputs = {}
    for architecture in settings["members"]:
        name = cell_name(architecture, variant)
        inputs[f"{architecture}_model"] = f"{name}.model"
        inputs[f"{architecture}_training_metrics"] = f"{name}.training_metrics"
    return inputs


def compute_teacher_logits(
    *,
    variant_name: str,
    examples: pd.DataFrame,
    face_manifest: pd.DataFrame,
    face_crops: FileTree,
    architectures: Mapping[str, Any],
    variant: Mapping[str, Any],
    training: Mapping[str, Any],
    optimization: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    emotions: list[str],
    **members: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The teacher's logits on every train image of the data copy (``crop_path`` and one column
    per emotion), and its record: name, kind, members, parameters, validation and test balanced
    accuracy. ``members``: ``{arch}_model`` and ``{arch}_training_metrics`` of each member."""
    from pediatric_emotion.modeling.distillation import ensemble_logits, predicted_logits

    settings = distillation_settings(optimization, architectures)
    check_crops_match(examples, face_crops.root, f"{variant_name} training_examples")
    root = Path(face_crops.root)
    train = examples[examples["split"] == "train"].reset_index(drop=True)
    val = examples[examples["split"] == "val"].reset_index(drop=True)
    test = select_test_images(face_manifest, face_crops, evaluation, emotions)
    num_classes = len(emotions)

    if settings["teacher"] == "file":
        import tf_keras as keras

        path = Path(settings["file"])
        if not path.is_file():
            raise FileNotFoundError(f"optimization.distillation.file: no model at {path}")
        chosen = {settings["file_architecture"]: keras.models.load_model(path, compile=False)}
        name, kind = path.name, "file"
    else:
        candidates = {}
        for architecture in settings["members"]:
            metrics = members[f"{architecture}_training_metrics"] or {}
            candidates[architecture] = float(metrics.get("best_val_balanced_accuracy", np.nan))
        if settings["teacher"] == "best_of_grid":
            best = max(
                candidates, key=lambda a: -np.inf if np.isnan(candidates[a]) else candidates[a]
            )
            chosen = {best: members[f"{best}_model"]}
            name, kind = cell_name(best, variant_name), "best_of_grid"
            logger.info(
                "Teacher of %s: %s (val balanced accuracy %.3f among %s)",
                variant_name,
                name,
                candidates[best],
                {a: round(v, 3) for a, v in candidates.items()},
            )
        else:
            chosen = {a: members[f"{a}_model"] for a in settings["members"]}
            name, kind = f"ensemble of {len(chosen)}", "ensemble"

    for architecture, model in chosen.items():
        outputs = int(model.output_shape[-1])
        if outputs != num_classes:
            raise ValueError(
                f"teacher {architecture} of {variant_name} has {outputs} outputs, "
                f"params:emotions {num_classes}"
            )
    logits = {split: [] for split in ("train", "val", "test")}
    for architecture, model in chosen.items():
        preprocessing = architectures[architecture]
        cell = cell_settings(training, preprocessing, variant)
        for split, rows in (("train", train), ("val", val), ("test", test)):
            logits[split].append(
                predicted_logits(
                    model,
                    rows,
                    root,
                    architecture=preprocessing,
                    settings=cell,
                    num_classes=num_classes,
                )
            )
    combined = {
        split: parts[0] if len(parts) == 1 else ensemble_logits(parts)
        for split, parts in logits.items()
    }
    table = pd.DataFrame(combined["train"], columns=list(emotions))
    table.insert(0, "crop_path", train["crop_path"].astype(str).to_numpy())
    record = {
        "variant": variant_name,
        "teacher": name,
        "kind": kind,
        "members": (
            str(settings["file"])
            if kind == "file"
            else ";".join(cell_name(a, variant_name) for a in chosen)
        ),
        "params": int(sum(model.count_params() for model in chosen.values())),
        "val_balanced_accuracy": float(
            balanced_accuracy_score(val["label"], combined["val"].argmax(axis=1))
        ),
        "test_balanced_accuracy": float(
            balanced_accuracy_score(test["label"], combined["test"].argmax(axis=1))
        ),
        "images": len(table),
    }
    logger.info(
        "Teacher %s of %s: logits of %d train images cached; balanced accuracy val %.3f, test %.3f",
        name,
        variant_name,
        len(table),
        record["val_balanced_accuracy"],
        record["test_balanced_accuracy"],
    )
    return table, record


def teacher_logits_of(
    teacher_logits: pd.DataFrame, train: pd.DataFrame, emotions: list[str], where: str
) -> np.ndarray:
    """The cached logits of the ``train`` rows, in their order; a train image the table lacks
    (a teacher of another harmonization run or data copy) is refused, naming it."""
    missing = [c for c in ["crop_path", *emotions] if c not in teacher_logits.columns]
    if missing:
        raise ValueError(f"{where}: teacher logits lack the column(s) {missing}")
    indexed = teacher_logits.drop_duplicates("crop_path").set_index("crop_path")
    absent = ~train["crop_path"].astype(str).isin(indexed.index)
    if absent.any():
        raise ValueError(
            f"{where}: {int(absent.sum())} train image(s) have no teacher logits, e.g. "
            f"{train['crop_path'][absent].iloc[0]} (rerun the teacher node of this data copy)"
        )
    return indexed.loc[train["crop_path"].astype(str), list(emotions)].to_numpy(np.float32)


def summarize_teachers(**records: Mapping[str, Any]) -> pd.DataFrame:
    """One row per distilled cell (``records``: ``"{arch}.{variant}"`` -> its teacher's record):
    the student's architecture and data copy, then the teacher."""
    rows = [{"architecture": cell.split(".")[0], **record} for cell, record in records.items()]
    return pd.DataFrame(rows, columns=["architecture", *TEACHER_COLUMNS])
