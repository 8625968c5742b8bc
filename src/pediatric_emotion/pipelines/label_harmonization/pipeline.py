"""Label harmonization: every raw source, in its own layout and vocabulary -> one face-cropped,
subject-split manifest with the 7 classes."""

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.pipelines.label_harmonization.cropping import crop_faces
from pediatric_emotion.pipelines.label_harmonization.deduplication import deduplicate
from pediatric_emotion.pipelines.label_harmonization.manifest import (
    build_manifest,
    plot_class_distribution,
    select_crops,
)
from pediatric_emotion.pipelines.label_harmonization.sources import check_sources, read_sources
from pediatric_emotion.pipelines.label_harmonization.splits import assign_splits


def create_pipeline(**kwargs) -> Pipeline:
    """Check sources -> read records -> crop faces -> deduplicate -> split -> manifest."""
    return Pipeline(
        [
            Node(
                func=check_sources,
                inputs=["params:sources", "params:label_maps", "params:emotions"],
                outputs="source_inventory",
                name="check_sources_node",
            ),
            Node(
                func=read_sources,
                inputs=["source_inventory", "params:sources", "params:label_maps"],
                outputs="source_records",
                name="read_sources_node",
            ),
            Node(
                func=crop_faces,
                inputs=[
                    "source_records",
                    "params:face_detection",
                    "params:face_crop",
                    "params:deduplication",
                    "params:parallel_cropping",
                ],
                outputs=["face_crop_candidates", "cropped_records"],
                name="crop_faces_node",
            ),
            Node(
                func=deduplicate,
                inputs=["cropped_records", "params:deduplication"],
                outputs=["deduplicated_records", "duplicate_pairs"],
                name="deduplicate_node",
            ),
            Node(
                func=assign_splits,
                inputs=["deduplicated_records", "params:subject_split"],
                outputs="split_records",
                name="assign_splits_node",
            ),
            Node(
                func=build_manifest,
                inputs=["split_records", "params:emotions", "source_inventory"],
                outputs=["face_manifest", "harmonization_report", "harmonization_drops"],
                name="build_manifest_node",
            ),
            Node(
                func=select_crops,
                inputs=["face_crop_candidates", "face_manifest"],
                outputs="face_crops",
                name="select_crops_node",
            ),
            Node(
                func=plot_class_distribution,
                inputs="face_manifest",
                outputs="class_distribution_plot",
                name="plot_class_distribution_node",
            ),
        ]
    )
