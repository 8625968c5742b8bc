"""Adam in either implementation: the same update rule, the rate each applies at its step."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from pediatric_emotion.modeling.optimizers import adam, current_learning_rate


def _after_steps(optimizer, steps: int = 3) -> np.ndarray:
    variable = tf.Variable([1.0, -2.0, 0.5])
    for step in range(steps):
        gradient = tf.constant([0.3, -0.1, 2.0]) * (step + 1)
        optimizer.apply_gradients([(gradient, variable)])
    return variable.numpy()


def test_both_implementations_apply_the_same_update():
    legacy = adam(0.01, implementation="legacy_adam")
    assert isinstance(legacy, keras.optimizers.legacy.Adam)
    assert isinstance(adam(0.01, implementation="adam"), keras.optimizers.Adam)
    np.testing.assert_allclose(
        _after_steps(legacy), _after_steps(adam(0.01, implementation="adam")), rtol=1e-5
    )


def test_an_unknown_implementation_names_the_setting():
    with pytest.raises(ValueError, match="training.optimizer: 'sgd'.*legacy_adam, adam"):
        adam(0.01, implementation="sgd")


@pytest.mark.parametrize("implementation", ["legacy_adam", "adam"])
def test_the_current_rate_is_the_schedules_at_the_last_step_in_both(implementation):
    schedule = keras.optimizers.schedules.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0)
    optimizer = adam(schedule, implementation=implementation)
    assert current_learning_rate(optimizer) == pytest.approx(0.1)
    _after_steps(optimizer, steps=4)
    assert current_learning_rate(optimizer) == pytest.approx(0.07)  # the 4th step's (index 3)
    assert current_learning_rate(adam(0.02, implementation=implementation)) == pytest.approx(0.02)
