"""The structure a newcomer extends: pipelines stand side by side (none imports another; shared
code lives below them), the grid's ``stamp`` namespaces a template per cell, and the technique
registry is the one place a technique is described."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kedro.pipeline import Node, Pipeline

from pediatric_emotion.grid import (
    TECHNIQUES,
    Technique,
    configured_techniques,
    register_technique,
    stamp,
    technique,
)

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pediatric_emotion"
PIPELINES = PACKAGE / "pipelines"


def _imported_modules(path: Path) -> set[str]:
    """Every module the file ``path`` of the package imports."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    return _modules_in(path.read_text(encoding="utf-8"), package)


def _modules_in(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, at the top or inside a
    function, relative ones resolved."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            modules.update([base, *(f"{base}.{alias.name}" for alias in node.names)])
    return modules


def _pipeline_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["pediatric_emotion", "pipelines"] and len(parts) > 2:
        return parts[2]
    return None


def test_no_pipeline_imports_another_pipeline():
    crossings = []
    for package in sorted(p for p in PIPELINES.iterdir() if (p / "__init__.py").exists()):
        for path in sorted(package.rglob("*.py")):
            for module in _imported_modules(path):
                other = _pipeline_of(module)
                if other is not None and other != package.name:
                    crossings.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert crossings == []


def test_code_below_the_pipelines_imports_none_of_them():
    above = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if PIPELINES in path.parents or path.name == "pipeline_registry.py":
            continue
        above += [
            f"{path.relative_to(PACKAGE)} imports {module}"
            for module in _imported_modules(path)
            if _pipeline_of(module) is not None
        ]
    assert above == []


def test_the_layer_check_sees_function_level_and_relative_imports():
    """The checks above cannot pass by missing imports: they see both kinds."""
    source = (
        "def f():\n    from ..training.nodes import train_classifier\n"
        "from pediatric_emotion.pipelines.optimization import techniques\n"
        "from . import metrics\n"
    )
    modules = _modules_in(source, "pediatric_emotion.pipelines.evaluation")
    assert {_pipeline_of(m) for m in modules} == {"training", "optimization", "evaluation"}
    assert "pediatric_emotion.pipelines.training.nodes.train_classifier" in modules


def _template(architecture: str, variant: str) -> Pipeline:
    def train(examples, face_crops, architecture, variant, training):
        return examples

    return Pipeline(
        [
            Node(
                train,
                ["examples", "face_crops", "params:architecture", "params:variant",
                 "params:training"],
                "model",
                name="train_node",
            )
        ]
    )  # fmt: skip


def test_stamp_namespaces_each_cell_and_maps_its_grid_entries():
    pipeline = stamp(_template, [("a", "x"), ("b", "y")], shared={"face_crops", "unused"})
    by_name = {node.name: node for node in pipeline.nodes}
    assert set(by_name) == {"a.x.train_node", "b.y.train_node"}
    assert by_name["b.y.train_node"].inputs == [
        "b.y.examples",
        "face_crops",
        "params:architectures.b",
        "params:variants.y",
        "params:training",
    ]
    assert by_name["b.y.train_node"].outputs == ["b.y.model"]
    assert by_name["a.x.train_node"].namespace == "a.x"


def test_the_registry_describes_every_built_in_technique():
    assert list(TECHNIQUES) == [
        *["baseline", "pruned", "clustered", "qat", "pqat", "cqat", "pcqat"],
        *["distilled", "distilled_qat"],
    ]
    assert TECHNIQUES["distilled"].extra_inputs == (("teacher_logits", "teacher_logits"),)
    for row in TECHNIQUES.values():
        assert callable(row.function()) and row.description
        if row.starts_from is not None:
            assert TECHNIQUES[row.starts_from].keeps_model
    assert {n: r.preserves for n, r in TECHNIQUES.items() if r.preserves} == {
        "pqat": "sparsity",
        "cqat": "clusters",
        "pcqat": "sparsity_and_clusters",
    }


def test_a_registered_technique_is_checked_and_configurable():
    def builder(**inputs):
        return {}, []

    with pytest.raises(ValueError, match="already registered"):
        register_technique(Technique("baseline", builder, "again"))
    with pytest.raises(ValueError, match="not a registered technique that keeps its model"):
        register_technique(Technique("from_qat", builder, "x", starts_from="qat"))
    with pytest.raises(ValueError, match="cannot contain"):
        register_technique(Technique("a.b", builder, "x"))
    try:
        register_technique(Technique("from_pruned", builder, "x", starts_from="pruned"))
        assert technique("from_pruned").function() is builder
        with pytest.raises(ValueError, match="from_pruned starts from the pruned model"):
            configured_techniques({"optimization": {"techniques": ["baseline", "from_pruned"]}})
        assert configured_techniques(
            {"optimization": {"techniques": ["pruned", "from_pruned"]}}
        ) == ["pruned", "from_pruned"]
    finally:
        TECHNIQUES.pop("from_pruned", None)
    with pytest.raises(ValueError, match="unknown technique 'from_pruned'"):
        technique("from_pruned")
