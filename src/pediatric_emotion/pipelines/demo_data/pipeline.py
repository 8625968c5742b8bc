"""The ``demo_data`` pipeline: synthetic faces in the native layouts of the public data sets."""

from kedro.pipeline import Node, Pipeline

from .nodes import generate_demo_data


def create_pipeline(**kwargs) -> Pipeline:
    """One node: ``params:demo_data`` -> ``demo_raw_data`` (a folder per source)."""
    return Pipeline(
        [
            Node(
                func=generate_demo_data,
                inputs="params:demo_data",
                outputs="demo_raw_data",
                name="generate_demo_data_node",
            )
        ]
    )
