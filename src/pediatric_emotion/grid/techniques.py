"""The optimization techniques: one registry row each, read by every stage that handles them.

A technique turns a cell's trained model (or the model another technique kept) into TFLite files.
The optimization pipeline stamps one node per configured technique from its row (``builder``,
``starts_from``, ``keeps_model``); evaluation, device profiling and reporting take the configured
names in order, and the model cards print ``description``. Adding a technique is one row here
(or ``register_technique``) and one builder function (docs/architecture.md, "Where do I add").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pediatric_emotion.grid.cells import load_project_parameters

BUILDERS = "pediatric_emotion.pipelines.optimization.techniques"
# (technique, quantization) naming a cell's float Keras model in the tables beside its files
KERAS = ("keras", "float32")


@dataclass(frozen=True)
class Technique:
    """One optimization technique.

    Attributes:
        name: the name in conf (``optimization.techniques``), tables, paths and namespaces.
        builder: the node function, or its ``"module:function"`` path (imported when the
            optimization pipeline is built). It is called with the start ``model``, the ``cell``,
            ``technique`` (this name) and the cell's shared inputs, and returns ``(files, rows)``,
            or ``(model, files, rows)`` where ``keeps_model``.
        description: one line for the model cards and the report.
        starts_from: the technique whose kept model this one starts from; None for the trained
            model.
        keeps_model: whether it also saves its float model (``{name}_model``) for others to start
            from.
        preserves: what quantization-aware training keeps of the start model (``sparsity``,
            ``clusters``, ``sparsity_and_clusters``); None where nothing is kept or no QAT.
        extra_inputs: ``(argument, dataset)`` pairs the builder reads besides the shared inputs,
            datasets of the cell (``distilled`` reads the cell's ``teacher_logits``).
    """

    name: str
    builder: str | Callable[..., Any]
    description: str
    starts_from: str | None = None
    keeps_model: bool = False
    preserves: str | None = None
    extra_inputs: tuple[tuple[str, str], ...] = ()

    def function(self) -> Callable[..., Any]:
        """The builder, imported where it is given as a path."""
        if callable(self.builder):
            return self.builder
        module, _, name = self.builder.partition(":")
        return getattr(importlib.import_module(module), name)


TECHNIQUES: dict[str, Technique] = {
    technique.name: technique
    for technique in [
        Technique(
            "baseline",
            f"{BUILDERS}:export_baseline",
            "post-training conversion of the trained model",
        ),
        Technique(
            "pruned",
            f"{BUILDERS}:prune_classifier",
            "magnitude pruning, fine-tuned, then converted",
            keeps_model=True,
        ),
        Technique(
            "clustered",
            f"{BUILDERS}:cluster_classifier",
            "weight clustering, fine-tuned, then converted",
            keeps_model=True,
        ),
        Technique(
            "qat",
            f"{BUILDERS}:train_quantization_aware",
            "quantization-aware training",
        ),
        Technique(
            "pqat",
            f"{BUILDERS}:train_quantization_aware",
            "pruning, then quantization-aware training keeping the zeros",
            starts_from="pruned",
            preserves="sparsity",
        ),
        Technique(
            "cqat",
            f"{BUILDERS}:train_quantization_aware",
            "clustering, then quantization-aware training keeping the clusters",
            starts_from="clustered",
            preserves="clusters",
        ),
        Technique(
            "pcqat",
            f"{BUILDERS}:train_quantization_aware",
            "pruning and clustering, then quantization-aware training keeping both",
            starts_from="pruned",
            preserves="sparsity_and_clusters",
        ),
        Technique(
            "distilled",
            f"{BUILDERS}:distill_classifier",
            "knowledge distillation from the data copy's teacher (Hinton loss), then converted",
            keeps_model=True,
            extra_inputs=(("teacher_logits", "teacher_logits"),),
        ),
        Technique(
            "distilled_qat",
            f"{BUILDERS}:train_quantization_aware",
            "knowledge distillation, then quantization-aware training",
            starts_from="distilled",
        ),
    ]
}


def register_technique(technique: Technique) -> Technique:
    """Add ``technique`` to the registry (a plugin's or a test's); its name must be new and any
    technique it starts from must keep its model."""
    if technique.name in TECHNIQUES:
        raise ValueError(f"technique {technique.name!r} is already registered")
    if "." in technique.name or "/" in technique.name:
        raise ValueError(f"technique names cannot contain '.' or '/': {technique.name!r}")
    source = technique.starts_from
    if source is not None and not (source in TECHNIQUES and TECHNIQUES[source].keeps_model):
        raise ValueError(
            f"technique {technique.name!r} starts from {source!r}, which is not a registered "
            "technique that keeps its model"
        )
    TECHNIQUES[technique.name] = technique
    return technique


def technique(name: str) -> Technique:
    """The registry row of ``name``."""
    try:
        return TECHNIQUES[name]
    except KeyError:
        raise ValueError(f"unknown technique {name!r}; known: {list(TECHNIQUES)}") from None


def configured_techniques(parameters: dict[str, Any] | None = None) -> list[str]:
    """``optimization.techniques`` in order, checked: registered names, and every technique with
    the technique it starts from."""
    parameters = load_project_parameters() if parameters is None else parameters
    techniques = list((parameters.get("optimization") or {}).get("techniques") or [])
    unknown = [t for t in techniques if t not in TECHNIQUES]
    if unknown:
        raise ValueError(f"optimization.techniques: unknown {unknown}; known: {list(TECHNIQUES)}")
    for name in techniques:
        source = TECHNIQUES[name].starts_from
        if source is not None and source not in techniques:
            raise ValueError(
                f"optimization.techniques: {name} starts from the {source} model; "
                f"add {source} to the list"
            )
    return techniques
