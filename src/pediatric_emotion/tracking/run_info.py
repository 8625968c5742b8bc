"""What a tracked run records about itself besides the nodes' parameters: the configuration
environment, the git commit of the project (and whether the work tree had changes), and whether
the data sets read were the synthetic demo data. Logged as parameters ``run.*`` of the session's
run, so two runs compare on them in the MLflow UI, and as MLflow's own git tag."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GIT_TIMEOUT_S = 10.0
UNKNOWN = "unknown"
DEMO_CATALOG_ENTRY = "demo_raw_data"
"""The catalog entry whose ``path`` is the demo data's root (conf/base/catalog.yml)."""


def _git(project: Path, *args: str) -> str | None:
    """``git args`` in ``project``; its output, or None when git or the repository is missing."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.debug("git %s in %s: %s", " ".join(args), project, error)
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(project: Path) -> tuple[str, str]:
    """The commit checked out in ``project`` and whether tracked files differ from it
    (``"true"``/``"false"``); ``"unknown"`` for both outside a git work tree."""
    commit = _git(project, "rev-parse", "HEAD")
    if not commit:
        return UNKNOWN, UNKNOWN
    changes = _git(project, "status", "--porcelain", "--untracked-files=no")
    return commit, UNKNOWN if changes is None else str(bool(changes)).lower()


def _resolved(path: Any, project: Path) -> Path:
    candidate = Path(str(path)).expanduser()
    return (candidate if candidate.is_absolute() else project / candidate).resolve()


def reads_demo_data(sources: Mapping[str, Any] | None, demo_root: Any, project: Path) -> str:
    """``"true"`` when every source's ``path`` lies under the demo data's root, ``"false"`` when
    none does, ``"mixed"`` otherwise (``"unknown"`` without sources or a demo root)."""
    if not sources or not demo_root:
        return UNKNOWN
    root = _resolved(demo_root, project)
    under = [
        _resolved(source.get("path", ""), project).is_relative_to(root)
        for source in sources.values()
        if isinstance(source, Mapping)
    ]
    if not under:
        return UNKNOWN
    return "true" if all(under) else "false" if not any(under) else "mixed"


def run_information(
    project: Path,
    environment: str | None,
    parameters: Mapping[str, Any],
    catalog_config: Mapping[str, Any],
) -> dict[str, str]:
    """The ``run.*`` parameters of a tracked run."""
    commit, dirty = git_state(project)
    demo_root = (catalog_config.get(DEMO_CATALOG_ENTRY) or {}).get("path")
    return {
        "run.environment": environment or "local",
        "run.git_commit": commit,
        "run.git_dirty": dirty,
        "run.demo_data": reads_demo_data(parameters.get("sources"), demo_root, project),
    }
