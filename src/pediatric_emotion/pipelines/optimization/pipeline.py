"""Optimization: per optimized ``{arch}.{variant}`` namespace of the grid, one node per configured
technique (conf/base/parameters_optimization.yml), built from its row of the technique registry
(``pediatric_emotion.grid.techniques``), each writing its TFLite files; then one summary table.
Where ``distilled`` is configured, each cell's teacher node caches its teacher's logits for
the student, and a table of the teachers."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.grid import (
    bind,
    configured_techniques,
    load_project_parameters,
    optimized_cells,
    stamp,
    technique,
)
from pediatric_emotion.pipelines.optimization.distillation import (
    compute_teacher_logits,
    distillation_settings,
    summarize_teachers,
    teacher_inputs,
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


def teacher_node(variant: str, settings: dict[str, Any]) -> Node:
    """The cell's teacher (``optimization.distillation``): its logits on the cell's train images
    (``teacher_logits``) and its record (``teacher``). It reads the members' models of the cell's
    data copy by their full names; it sits in the student's namespace, so every cell's nodes stay
    one unbroken group (a node of its own between the grid's models and the students would split
    every cell's namespace in two)."""
    return Node(
        func=bind(compute_teacher_logits, variant_name=variant),
        inputs={
            "examples": "training_examples",
            "face_manifest": "face_manifest",
            "face_crops": "face_crops",
            "architectures": "params:architectures",
            "variant": "params:variant",
            "training": "params:training",
            "optimization": "params:optimization",
            "evaluation": "params:evaluation",
            "emotions": "params:emotions",
            **teacher_inputs(settings, variant),
        },
        outputs=["teacher_logits", "teacher"],
        name="teacher_logits_node",
    )


def cell_template(
    architecture: str,
    variant: str,
    techniques: list[str],
    distillation: dict[str, Any] | None = None,
) -> Pipeline:
    """The technique nodes of one cell, before namespacing: each reads the trained ``model`` or
    the ``{source}_model`` its technique starts from (and the extra inputs of its row), and
    writes ``{technique}_tflite`` and ``{technique}_report`` (and ``{technique}_model`` where its
    row keeps the model); with ``distillation`` settings, the cell's teacher node too."""
    cell = {"architecture": architecture, "variant": variant}
    nodes = [] if distillation is None else [teacher_node(variant, distillation)]
    for name in techniques:
        row = technique(name)
        nodes.append(
            Node(
                func=bind(row.function(), cell=cell, technique=name),
                inputs={
                    "model": "model" if row.starts_from is None else f"{row.starts_from}_model",
                    **_SHARED_INPUTS,
                    **dict(row.extra_inputs),
                },
                outputs=[f"{name}_model"] * row.keeps_model + [f"{name}_tflite", f"{name}_report"],
                name=f"{name}_node",
            )
        )
    return Pipeline(nodes)


def create_pipeline(**kwargs) -> Pipeline:
    """Every optimized cell of the grid with every configured technique, the summary, and the
    teachers where a technique reads their logits."""
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
    distilling = any(
        argument == "teacher_logits"
        for name in techniques
        for argument, _ in technique(name).extra_inputs
    )
    distillation = (
        distillation_settings(parameters.get("optimization") or {}, parameters["architectures"])
        if distilling
        else None
    )
    members = (
        {
            dataset
            for _, variant in cells
            for dataset in teacher_inputs(distillation, variant).values()
        }
        if distillation
        else set()
    )
    cells_pipeline = stamp(
        lambda arch, variant: cell_template(arch, variant, techniques, distillation),
        cells,
        shared={"face_crops", "face_manifest", *members},
    )
    teachers = Node(  # without a distilling technique: the empty table, so reporting reads one
        func=summarize_teachers,
        inputs={f"{a}.{v}": f"{a}.{v}.teacher" for a, v in cells} if distilling else None,
        outputs="distillation_teachers",
        name="summarize_teachers_node",
    )
    return cells_pipeline + Pipeline([summary, teachers])
