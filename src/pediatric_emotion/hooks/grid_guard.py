"""The grid's environment guard and the quick demo notice: a run whose ``--env`` is not the
``KEDRO_ENV`` the training grid was built from is refused; the quick demo's cuts are named at the
start of a run."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from pediatric_emotion.grid import check_session_environment

logger = logging.getLogger(__name__)


class GridEnvironmentHook:
    """Refuse a run whose ``--env`` differs from the environment the grid was built from.

    The training grid (and so every namespaced pipeline) is read when the pipelines are
    registered, before a session exists, from conf/base, conf/local and ``KEDRO_ENV``
    (grid/cells.py). ``kedro run --env paper`` alone would run the base grid with the
    paper parameters; ``KEDRO_ENV=paper kedro run`` builds both from the same configuration.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Raise, naming the fix, when the session's environment is not ``KEDRO_ENV``'s."""
        check_session_environment(context.env)


class QuickDemoNoticeHook:
    """Say at the start of a run whether the quick demo's cuts are in force (``demo.quick`` of
    conf/base/parameters_demo.yml, merged unless ``demo.full``) and how to run without them."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from pediatric_emotion.config import quick_demo_cuts

        quick = quick_demo_cuts(context.params)
        if quick:
            logger.info(
                "Quick demo: %s cut to save time (conf/base/parameters_demo.yml); "
                "--params=demo.full=true runs without the cuts",
                ", ".join(sorted(quick)),
            )
