"""Warnings of the libraries underneath that say nothing a user of this project can act on, kept
out of every run's log in one place. :func:`ignore_known_warnings` runs when the package is
imported, and, through the package's ``kedro.init`` entry point (pyproject.toml), at the start of
every ``kedro`` command, before Kedro loads the plugins' commands: kedro-mlflow's CLI plugin
defines its pyfunc model there, on every ``kedro`` command."""

from __future__ import annotations

import logging
import re
import warnings

KNOWN_WARNINGS: dict[str, str] = {
    # Kedro 1.7 calls OmegaConf's deprecated register_new_resolver on every config load.
    "register_new_resolver": "Kedro's to fix",
    # The summary nodes gather `{arch}.{variant}.*` outputs of every namespace of the grid, which
    # is what namespaces are for; Kedro warns about any dotted name read outside its namespace.
    "One or more dataset names contain": "the grid's namespaces, by design",
    # MLflow, when a PythonModel subclass has no type hints on `predict`: kedro-mlflow's
    # KedroPipelineModel and this project's TFLite model (a table of any image column).
    "Add type hints to the `predict` method": "kedro-mlflow's and tracking/pyfunc.py's models",
}
"""A fragment of each warning's message -> why it is ignored."""

_PATTERN = re.compile("|".join(re.escape(fragment) for fragment in KNOWN_WARNINGS))


class KnownWarningsFilter(logging.Filter):
    """Drops the records of :data:`KNOWN_WARNINGS` that Python's warnings send to logging
    (``logging.captureWarnings``, as Kedro's logging does): MLflow shows its warnings through
    ``simplefilter("once")``, which overrides the warnings filters."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _PATTERN.search(record.getMessage())


def ignore_known_warnings() -> None:
    """Warnings filters for :data:`KNOWN_WARNINGS` (UserWarning, anywhere in the message), and
    :class:`KnownWarningsFilter` on the ``py.warnings`` logger (once)."""
    for fragment in KNOWN_WARNINGS:
        warnings.filterwarnings(
            "ignore", message=rf"(?s).*{re.escape(fragment)}", category=UserWarning
        )
    captured = logging.getLogger("py.warnings")
    if not any(isinstance(f, KnownWarningsFilter) for f in captured.filters):
        captured.addFilter(KnownWarningsFilter())
