"""The one optimizer of training and fine-tuning: Adam, in the implementation the settings name.

``training.optimizer`` (conf/base/parameters_training.yml):

- ``legacy_adam`` (default): ``tf_keras.optimizers.legacy.Adam``. Each variable's update is one
  fused kernel (``ResourceApplyAdam``), so tracing a training step adds one op per variable.
  Same update rule as ``adam``. Measured with one TensorFlow thread at 64 px (the quick demo's
  members, batch 32): the first traced step of MobileNetV3-Small 8.6 -> 2.5 s, MobileNetV2
  13.0 -> 4.5 s, EfficientNetB0 12.5 -> 5.1 s, MobileNetV3-Large 11.1 -> 4.8 s, NASNetMobile
  28.5 -> 9.8 s, with steps as fast or faster.
- ``adam``: ``tf_keras.optimizers.Adam``, whose update of each variable is traced through
  autograph and a distribution-strategy merge call (compiled with XLA only on a GPU).

Both work under mixed precision (``compile`` wraps either in a loss-scale optimizer) and
MirroredStrategy.
"""

from __future__ import annotations

from typing import Any

import tf_keras as keras

OPTIMIZERS = ("legacy_adam", "adam")
DEFAULT_OPTIMIZER = OPTIMIZERS[0]  # when the settings name none


def adam(
    learning_rate: Any, *, implementation: str = DEFAULT_OPTIMIZER
) -> keras.optimizers.Optimizer:
    """Adam at ``learning_rate`` (a float or a ``LearningRateSchedule``) in ``implementation``."""
    if implementation == "legacy_adam":
        return keras.optimizers.legacy.Adam(learning_rate)
    if implementation == "adam":
        return keras.optimizers.Adam(learning_rate)
    raise ValueError(f"training.optimizer: {implementation!r} (one of {', '.join(OPTIMIZERS)})")


def current_learning_rate(optimizer: Any) -> float:
    """The rate of ``optimizer``'s last step (of its first, before any), as Keras' ``Adam``
    reports it. A legacy optimizer's ``learning_rate`` is the schedule itself: evaluated here at
    the last step's index. A loss-scale wrapper of either passes both attributes through."""
    rate = optimizer.learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        last_step = max(int(keras.backend.get_value(optimizer.iterations)) - 1, 0)
        rate = rate(last_step)
    return float(keras.backend.get_value(rate))
