"""A tiny copy of the demo data (the conf/base parameters at a small scale), generated once."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pediatric_emotion.pipelines.demo_data.nodes import generate_demo_data

PARAMS_FILE = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_demo_data.yml"
TINY_SCALE = 0.05


def base_params() -> dict[str, Any]:
    """The ``demo_data`` parameters exactly as conf/base has them."""
    return yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))["demo_data"]


def tiny_params(**overrides: Any) -> dict[str, Any]:
    """The conf/base parameters at ``TINY_SCALE``, with top-level overrides."""
    params = copy.deepcopy(base_params())
    params["scale"] = TINY_SCALE
    params.update(overrides)
    return params


def files_of(files: dict[str, bytes], source: str) -> dict[str, bytes]:
    """One source's files, by path relative to the source's folder."""
    prefix = f"{source}/"
    return {path[len(prefix) :]: data for path, data in files.items() if path.startswith(prefix)}


@pytest.fixture(scope="session")
def demo_params() -> dict[str, Any]:
    return tiny_params()


@pytest.fixture(scope="session")
def demo_files(demo_params) -> dict[str, bytes]:
    return generate_demo_data(copy.deepcopy(demo_params))
