"""Device profiling: per optimized ``{arch}.{variant}`` namespace of the training grid, one node
per optimization technique profiling its TFLite files (``{technique}_tflite``, the optimization
pipeline's partitions); then the grid's ``profiling_results`` table."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.pipelines.device_profiling.nodes import profile_tflite
from pediatric_emotion.pipelines.evaluation.nodes import concatenate_tables
from pediatric_emotion.pipelines.node_functions import bind
from pediatric_emotion.pipelines.optimization.pipeline import (
    configured_techniques,
    optimized_cells,
)
from pediatric_emotion.pipelines.training.grid import load_project_parameters


def cell_template(architecture: str, variant: str, techniques: list[str]) -> Pipeline:
    """The profiling nodes of one cell, before namespacing: one per technique."""
    cell = {"architecture": architecture, "variant": variant}
    return Pipeline(
        [
            Node(
                func=bind(profile_tflite, cell=cell, technique=technique),
                inputs={"files": f"{technique}_tflite", "profiling": "params:device_profiling"},
                outputs=[f"{technique}_profiling", f"{technique}_profiling_runs"],
                name=f"profile_{technique}_tflite_node",
            )
            for technique in techniques
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Every TFLite file of every optimized cell and technique, and the grid's table."""
    parameters = load_project_parameters()
    techniques = configured_techniques(parameters)
    cells = optimized_cells(parameters)
    namespaced = [
        Pipeline(
            cell_template(arch, variant, techniques),
            namespace=f"{arch}.{variant}",
            parameters={"params:device_profiling": "params:device_profiling"},
        )
        for arch, variant in cells
    ]
    summary = Node(
        func=concatenate_tables,
        inputs=[
            f"{arch}.{variant}.{technique}_profiling"
            for arch, variant in cells
            for technique in techniques
        ],
        outputs="profiling_results",
        name="summarize_profiling_node",
    )
    return sum(namespaced, Pipeline([])) + Pipeline([summary])
