"""Project hooks: node timing (timing.py), memory release after every node (memory.py), and the
grid's environment guard with the quick demo notice (grid_guard.py)."""

from pediatric_emotion.hooks.grid_guard import GridEnvironmentHook, QuickDemoNoticeHook
from pediatric_emotion.hooks.memory import ReleaseMemoryHook, release_memory
from pediatric_emotion.hooks.timing import RUN_TIMING_COLUMNS, NodeTimingHook

__all__ = [
    "RUN_TIMING_COLUMNS",
    "GridEnvironmentHook",
    "NodeTimingHook",
    "QuickDemoNoticeHook",
    "ReleaseMemoryHook",
    "release_memory",
]
