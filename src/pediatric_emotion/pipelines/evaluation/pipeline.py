"""Evaluation: per ``{arch}.{variant}`` namespace of the grid, the cell's evaluation
images, one prediction node for its Keras model and one per optimization technique (where the cell
is optimized), one scoring node and one robustness node (every model under the corrupted test
pictures of ``corrupt_test_images_node``); then the peers and the grid's tables. (The study's
published numbers beside ours are the reporting pipeline's.)"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.grid import (
    bind,
    configured_techniques,
    load_project_parameters,
    optimized_cells,
    stamp,
    training_cells,
)
from pediatric_emotion.pipelines.evaluation.nodes import evaluate_cell, evaluate_peers
from pediatric_emotion.pipelines.evaluation.prediction import predict_keras, predict_tflite
from pediatric_emotion.pipelines.evaluation.robustness import (
    corrupt_test_images,
    evaluate_robustness,
    summarize_robustness,
)
from pediatric_emotion.pipelines.evaluation.selection import select_evaluation_images
from pediatric_emotion.tables import concatenate_tables

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
    nodes.append(
        Node(
            func=bind(evaluate_robustness, cell=cell),
            inputs={
                "model": "model",
                "robustness_images": "robustness_images",
                "robustness_crops": "robustness_crops",
                "architecture": "params:architecture",
                "variant": "params:variant",
                "training": "params:training",
                "evaluation": "params:evaluation",
                "emotions": "params:emotions",
                **{f"{technique}_tflite": f"{technique}_tflite" for technique in techniques},
            },
            outputs="robustness_metrics",
            name="evaluate_robustness_node",
        )
    )
    return Pipeline(nodes)


def create_pipeline(**kwargs) -> Pipeline:
    """Every cell of the grid (TFLite files where the cell is optimized), the optional peers and
    the grid's tables."""
    parameters = load_project_parameters()
    techniques = configured_techniques(parameters)
    optimized = set(optimized_cells(parameters))
    cells = training_cells(parameters)
    cells_pipeline = stamp(
        lambda arch, variant: cell_template(
            arch, variant, techniques if (arch, variant) in optimized else []
        ),
        cells,
        shared={"face_manifest", "face_crops", "robustness_images", "robustness_crops"},
    )
    corrupt = Node(
        func=corrupt_test_images,
        inputs={
            "face_manifest": "face_manifest",
            "face_crops": "face_crops",
            "robustness": "params:robustness",
            "evaluation": "params:evaluation",
            "face_detection": "params:face_detection",
            "face_crop": "params:face_crop",
            "emotions": "params:emotions",
        },
        outputs=["robustness_crops", "robustness_images"],
        name="corrupt_test_images_node",
    )
    robustness = Node(
        func=summarize_robustness,
        inputs=[f"{arch}.{variant}.robustness_metrics" for arch, variant in cells],
        outputs=["robustness_metrics", "robustness_summary"],
        name="summarize_robustness_node",
    )
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
    return cells_pipeline + Pipeline([corrupt, peers, *summaries, robustness])
