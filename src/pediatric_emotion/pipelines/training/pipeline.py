"""Training: one template pipeline, stamped out per ``{arch}.{variant}`` namespace of the grid in
conf/base/parameters_training.yml, plus a summary of the whole grid."""

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.grid import bind, stamp, training_cells
from pediatric_emotion.pipelines.training.nodes import (
    plot_learning_curve,
    select_training_examples,
    summarize_training,
    train_classifier,
)


def cell_template(architecture: str, variant: str) -> Pipeline:
    """The nodes of one cell, before namespacing."""
    return Pipeline(
        [
            Node(
                func=select_training_examples,
                inputs=["face_manifest", "params:variant", "params:emotions"],
                outputs="training_examples",
                name="select_training_examples_node",
            ),
            Node(
                func=bind(
                    train_classifier, cell={"architecture": architecture, "variant": variant}
                ),
                inputs={
                    "examples": "training_examples",
                    "face_crops": "face_crops",
                    "architecture": "params:architecture",
                    "variant": "params:variant",
                    "training": "params:training",
                    "emotions": "params:emotions",
                },
                outputs=["model", "history", "training_metrics"],
                name="train_classifier_node",
            ),
            Node(
                func=plot_learning_curve,
                inputs="history",
                outputs="learning_curve",
                name="plot_learning_curve_node",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Every cell of the grid in its namespace, and the grid's summary table."""
    cells = training_cells()
    summary = Node(
        func=summarize_training,
        inputs=[f"{arch}.{variant}.training_metrics" for arch, variant in cells],
        outputs="training_summary",
        name="summarize_training_node",
    )
    return stamp(cell_template, cells, shared={"face_manifest", "face_crops"}) + Pipeline([summary])
