"""Fine-tuning without a traced training step (`optimization.fine_tuning.run_eagerly`, the quick
demo's setting): the steps run eagerly, and pruning reaches its sparsity as in a graph."""

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _tiny_model():
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.layers.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))


def _data(steps: int):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (steps * 4, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 7, steps * 4)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()


@pytest.mark.parametrize("run_eagerly", [True, False])
def test_pruning_reaches_its_sparsity_eagerly_or_in_a_graph(run_eagerly):
    import tensorflow_model_optimization as tfmot

    from pediatric_emotion.modeling.compression import (
        fine_tune,
        kernel_sparsity,
        pruning_wrapped,
        strip,
    )

    wrapped = pruning_wrapped(_tiny_model(), sparsity=0.5, end_step=4, frequency=2)
    fine_tune(
        wrapped,
        _data(8),
        epochs=1,
        steps_per_epoch=8,
        learning_rate=1e-3,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        run_eagerly=run_eagerly,
    )
    assert wrapped.run_eagerly is run_eagerly
    assert kernel_sparsity(strip(wrapped)) == pytest.approx(0.5, abs=0.02)


def test_eager_fine_tuning_changes_the_weights():
    from pediatric_emotion.modeling.compression import fine_tune

    model = _tiny_model()
    before = [w.copy() for w in model.get_weights()]
    fine_tune(model, _data(2), epochs=1, steps_per_epoch=2, learning_rate=1e-2, run_eagerly=True)
    assert model.run_eagerly
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))
