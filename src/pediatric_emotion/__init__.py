"""pediatric_emotion: train, compress, evaluate and profile pediatric facial-expression classifiers.

tensorflow-model-optimization 0.8 needs Keras 2 (``tf_keras``); TensorFlow picks the Keras version
when it is first imported, so the switch is set here, before any module of this package imports it.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# No usage data leaves the machine: MLflow's telemetry off (it reads "true", not DO_NOT_TRACK=1).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# albumentations (corruptions.py) asks PyPI for a newer release on import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
from pediatric_emotion.known_warnings import ignore_known_warnings  # noqa: E402

ignore_known_warnings()

__version__ = "0.1.0"
