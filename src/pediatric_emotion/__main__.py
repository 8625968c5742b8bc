"""pediatric_emotion file for ensuring the package is executable as `pediatric-emotion` and
`python -m pediatric_emotion`.

``pediatric-emotion predict MODEL.tflite IMAGE_OR_FOLDER ...`` classifies faces
(:mod:`pediatric_emotion.predict`); any other arguments go to Kedro's ``run`` as before.
"""

import sys
from pathlib import Path
from typing import Any

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project

PREDICT = "predict"


def main(*args: Any, **kwargs: Any) -> Any:
    """Run ``predict`` when it is the first argument, else the project's Kedro ``run``."""
    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    arguments = list(args[0]) if args and args[0] is not None else sys.argv[1:]
    if arguments[:1] == [PREDICT]:
        from pediatric_emotion.predict import predict_command

        kwargs.setdefault("prog_name", f"pediatric-emotion {PREDICT}")
        return predict_command(arguments[1:], *args[1:], **kwargs)

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
