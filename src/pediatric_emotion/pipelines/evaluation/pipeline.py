"""Evaluation: per ``{arch}.{variant}`` namespace of the training grid, the cell's evaluation
images, one prediction node for its Keras model and one per optimization technique (where the cell
is optimized), one scoring node; then the grid's tables, the peers and the published comparison."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.pipelines.evaluation.nodes import (
    compare_with_published,
    concatenate_tables,
    evaluate_cell,
    evaluate_peers,
    predict_keras,
    predict_tflite,
    select_evaluation_images,
)
from pediatric_emotion.pipelines.node_functions import bind
from pediatric_emotion.pipelines.optimization.pipeline import (
    configured_techniques,
    optimized_cells,
)
from pediatric_emotion.pipelines.training.grid import (
    cell_parameters,
    load_project_parameters,
    training_cells,
)

CELL_OUTPUTS = (
    "evaluation_metrics",
    "evaluation_subgroups",
    "evaluation_compression",
    "evaluation_confusion",
    "evaluation_confusion_plots",
)
# grid-wide table <- the per-cell output it joins
SUMMARIES = {
    "evaluation_metrics": "evaluation_metrics",
    "subgroup_metrics": "evaluation_subgroups",
    "compression_cost": "evaluation_compression",
    "confusion_matrices": "evaluation_confusion",
}


def cell_template(architecture: str, variant: str, techniques: list[str]) -> Pipeline:
    """The nodes of one cell, before namespacing (``techniques``: its TFLite partitions)."""
    cell = {"architecture": architecture, "variant": variant}
    shared = {
        "images": "evaluation_images",
        "face_crops": "face_crops",
        "evaluation": "params:evaluation",
        "emotions": "params:emotions",
    }
    nodes = [
        Node(
            func=select_evaluation_images,
            inputs=[
                "face_manifest",
                "face_crops",
                "training_examples",
                "params:evaluation",
                "params:emotions",
            ],
            outputs="evaluation_images",
            name="select_evaluation_images_node",
        ),
        Node(
            func=bind(predict_keras, cell=cell),
            inputs={
                "model": "model",
                **shared,
                "architecture": "params:architecture",
                "variant": "params:variant",
                "training": "params:training",
            },
            outputs="evaluation_keras_predictions",
            name="predict_keras_node",
        ),
    ]
    for technique in techniques:
        nodes.append(
            Node(
                func=bind(predict_tflite, cell=cell, technique=technique),
                inputs={"files": f"{technique}_tflite", **shared},
                outputs=f"evaluation_{technique}_predictions",
                name=f"predict_{technique}_tflite_node",
            )
        )
    predictions = {
        f"{model}_predictions": f"evaluation_{model}_predictions"
        for model in ["keras", *techniques]
    }
    nodes.append(
        Node(
            func=bind(evaluate_cell, cell=cell),
            inputs={
                "images": "evaluation_images",
                "evaluation": "params:evaluation",
                "emotions": "params:emotions",
                **predictions,
            },
            outputs=list(CELL_OUTPUTS),
            name="evaluate_cell_node",
        )
    )
    return Pipeline(nodes)


def create_pipeline(**kwargs) -> Pipeline:
    """Every cell of the training grid (TFLite files where the cell is optimized), the grid's
    tables, the optional peers and the comparison with the study's published numbers."""
    parameters = load_project_parameters()
    techniques = configured_techniques(parameters)
    optimized = set(optimized_cells(parameters))
    cells = training_cells(parameters)
    namespaced = [
        Pipeline(
            cell_template(arch, variant, techniques if (arch, variant) in optimized else []),
            namespace=f"{arch}.{variant}",
            inputs={"face_manifest", "face_crops"},
            parameters=cell_parameters(arch, variant, "training", "evaluation", "emotions"),
        )
        for arch, variant in cells
    ]
    peers = Node(
        func=evaluate_peers,
        inputs=["face_manifest", "face_crops", "params:evaluation", "params:emotions"],
        outputs="peer_metrics",
        name="evaluate_peers_node",
    )
    summaries = [
        Node(
            func=concatenate_tables,
            inputs=[f"{arch}.{variant}.{output}" for arch, variant in cells]
            + (["peer_metrics"] if table == "evaluation_metrics" else []),
            outputs=table,
            name=f"summarize_{table}_node",
        )
        for table, output in SUMMARIES.items()
    ]
    comparison = Node(
        func=compare_with_published,
        inputs=["evaluation_metrics", "subgroup_metrics", "params:evaluation"],
        outputs="published_comparison",
        name="compare_with_published_node",
    )
    return sum(namespaced, Pipeline([])) + Pipeline([peers, *summaries, comparison])
