"""Optimization: per optimized ``{arch}.{variant}`` namespace of the grid, one node per configured
technique (conf/base/parameters_optimization.yml), built from its row of the technique registry
(``pediatric_emotion.grid.techniques``), each writing its TFLite files; then one summary table."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.grid import (
    bind,
    configured_techniques,
    load_project_parameters,
    optimized_cells,
    stamp,
    technique,
)
from pediatric_emotion.pipelines.optimization.nodes import summarize_optimization

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


def cell_template(architecture: str, variant: str, techniques: list[str]) -> Pipeline:
    """The technique nodes of one cell, before namespacing: each reads the trained ``model`` or
    the ``{source}_model`` its technique starts from, and writes ``{technique}_tflite`` and
    ``{technique}_report`` (and ``{technique}_model`` where its row keeps the model)."""
    cell = {"architecture": architecture, "variant": variant}
    nodes = []
    for name in techniques:
        row = technique(name)
        nodes.append(
            Node(
                func=bind(row.function(), cell=cell, technique=name),
                inputs={
                    "model": "model" if row.starts_from is None else f"{row.starts_from}_model",
                    **_SHARED_INPUTS,
                },
                outputs=[f"{name}_model"] * row.keeps_model + [f"{name}_tflite", f"{name}_report"],
                name=f"{name}_node",
            )
        )
    return Pipeline(nodes)


def create_pipeline(**kwargs) -> Pipeline:
    """Every optimized cell of the grid with every configured technique, and the summary."""
    parameters = load_project_parameters()
    techniques = configured_techniques(parameters)
    cells = optimized_cells(parameters)
    summary = Node(
        func=summarize_optimization,
        inputs={
            f"{arch}.{variant}.{name}": f"{arch}.{variant}.{name}_report"
            for arch, variant in cells
            for name in techniques
        },
        outputs="optimization_summary",
        name="summarize_optimization_node",
    )
    cells_pipeline = stamp(
        lambda arch, variant: cell_template(arch, variant, techniques),
        cells,
        shared={"face_crops"},
    )
    return cells_pipeline + Pipeline([summary])
