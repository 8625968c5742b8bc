"""Device profiling: per optimized ``{arch}.{variant}`` namespace of the grid, one node per
configured technique profiling its TFLite files (``{technique}_tflite``, the optimization
pipeline's partitions, read through the catalog); then the grid's ``profiling_results`` table."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.grid import (
    bind,
    configured_techniques,
    load_project_parameters,
    optimized_cells,
    stamp,
)
from pediatric_emotion.pipelines.device_profiling.nodes import profile_tflite
from pediatric_emotion.tables import concatenate_tables


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
    cells_pipeline = stamp(lambda arch, variant: cell_template(arch, variant, techniques), cells)
    return cells_pipeline + Pipeline([summary])
