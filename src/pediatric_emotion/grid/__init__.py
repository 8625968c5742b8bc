"""The grid every model stage shares: its cells (architectures x data copies, from conf), the
optimization techniques applied to them, and ``stamp``, which namespaces a stage's template once
per cell. Pipelines read the grid from here and never from one another."""

from pediatric_emotion.grid.cells import (
    CELL_COLUMNS,
    FILE_COLUMNS,
    cell_name,
    cell_settings,
    check_session_environment,
    grid_environment,
    load_project_parameters,
    optimized_cells,
    training_cells,
)
from pediatric_emotion.grid.stamping import bind, stamp
from pediatric_emotion.grid.techniques import (
    KERAS,
    TECHNIQUES,
    Technique,
    configured_techniques,
    register_technique,
    technique,
)

__all__ = [
    "CELL_COLUMNS",
    "FILE_COLUMNS",
    "KERAS",
    "TECHNIQUES",
    "Technique",
    "bind",
    "cell_name",
    "cell_settings",
    "check_session_environment",
    "configured_techniques",
    "grid_environment",
    "load_project_parameters",
    "optimized_cells",
    "register_technique",
    "stamp",
    "technique",
    "training_cells",
]
