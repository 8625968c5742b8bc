"""Optimization: per ``{arch}.{variant}`` namespace of the training grid, one node per technique
(conf/base/parameters_optimization.yml), each writing its TFLite files; then one summary table."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.pipelines.node_functions import bind
from pediatric_emotion.pipelines.optimization.nodes import (
    cluster_classifier,
    export_baseline,
    prune_classifier,
    summarize_optimization,
    train_quantization_aware,
)
from pediatric_emotion.pipelines.training.grid import (
    cell_parameters,
    load_project_parameters,
    training_cells,
)

# technique -> (the technique whose model it starts from, or None for the trained model)
STARTS_FROM: dict[str, str | None] = {
    "baseline": None,
    "pruned": None,
    "clustered": None,
    "qat": None,
    "pqat": "pruned",
    "cqat": "clustered",
    "pcqat": "pruned",
}
_SHARED_INPUTS = {
    "examples": "training_examples",
    "face_crops": "face_crops",
    "architecture": "params:architecture",
    "variant": "params:variant",
    "training": "params:training",
    "optimization": "params:optimization",
    "emotions": "params:emotions",
    "face_crop": "params:face_crop",
}


def configured_techniques(parameters: dict[str, Any] | None = None) -> list[str]:
    """``optimization.techniques`` in order, checked: known names, and every collaborative scheme
    with the technique it starts from."""
    parameters = load_project_parameters() if parameters is None else parameters
    techniques = list((parameters.get("optimization") or {}).get("techniques") or [])
    unknown = [t for t in techniques if t not in STARTS_FROM]
    if unknown:
        raise ValueError(f"optimization.techniques: unknown {unknown}; known: {list(STARTS_FROM)}")
    for technique in techniques:
        source = STARTS_FROM[technique]
        if source is not None and source not in techniques:
            raise ValueError(
                f"optimization.techniques: {technique} starts from the {source} model; "
                f"add {source} to the list"
            )
    return techniques


def optimized_cells(parameters: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The cells of the training grid to optimize: all, or those of ``optimization.variants``."""
    parameters = load_project_parameters() if parameters is None else parameters
    cells = training_cells(parameters)
    variants = (parameters.get("optimization") or {}).get("variants")
    if variants is None:
        return cells
    unknown = sorted(set(variants) - {variant for _, variant in cells})
    if unknown:
        raise ValueError(f"optimization.variants: {unknown} are not variants of the training grid")
    return [(arch, variant) for arch, variant in cells if variant in variants]


def cell_template(architecture: str, variant: str, techniques: list[str]) -> Pipeline:
    """The technique nodes of one cell, before namespacing."""
    cell = {"architecture": architecture, "variant": variant}
    nodes = []
    for technique in techniques:
        source = STARTS_FROM[technique]
        model = "model" if source is None else f"{source}_model"
        outputs = [f"{technique}_tflite", f"{technique}_report"]
        if technique == "baseline":
            func = bind(export_baseline, cell=cell)
        elif technique == "pruned":
            func, outputs = bind(prune_classifier, cell=cell), ["pruned_model", *outputs]
        elif technique == "clustered":
            func, outputs = bind(cluster_classifier, cell=cell), ["clustered_model", *outputs]
        else:
            func = bind(train_quantization_aware, cell=cell, technique=technique)
        nodes.append(
            Node(
                func=func,
                inputs={"model": model, **_SHARED_INPUTS},
                outputs=outputs,
                name=f"{technique}_node",
            )
        )
    return Pipeline(nodes)


def create_pipeline(**kwargs) -> Pipeline:
    """Every cell of the training grid with every configured technique, and the summary."""
    parameters = load_project_parameters()
    techniques = configured_techniques(parameters)
    cells = optimized_cells(parameters)
    namespaced = [
        Pipeline(
            cell_template(arch, variant, techniques),
            namespace=f"{arch}.{variant}",
            inputs={"face_crops"},
            parameters=cell_parameters(
                arch, variant, "training", "optimization", "emotions", "face_crop"
            ),
        )
        for arch, variant in cells
    ]
    summary = Node(
        func=summarize_optimization,
        inputs={
            f"{arch}.{variant}.{technique}": f"{arch}.{variant}.{technique}_report"
            for arch, variant in cells
            for technique in techniques
        },
        outputs="optimization_summary",
        name="summarize_optimization_node",
    )
    return sum(namespaced, Pipeline([])) + Pipeline([summary])
