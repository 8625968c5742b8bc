"""A tiny TFLite file with its embedded spec and a few PNG crops, made as the evaluation tests
make theirs (tests/pipelines/evaluation/conftest.py), and an MLflow store in a temporary folder."""

from __future__ import annotations

from pathlib import Path

# isort: split
import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

# isort: split

import numpy as np
import pytest
from PIL import Image

from tests.pipelines.evaluation.conftest import ARCHITECTURE, EMOTIONS, N_IMAGES, SIZE, _image


@pytest.fixture(scope="session")
def crop_files(tmp_path_factory) -> list[Path]:
    """N_IMAGES crops: PNG, and every third one JPEG."""
    root = tmp_path_factory.mktemp("tracking_crops")
    rng = np.random.default_rng(11)
    paths = []
    for index in range(N_IMAGES):
        path = root / f"img{index:02d}.{'jpg' if index % 3 == 2 else 'png'}"
        Image.fromarray(_image(rng)).save(path, quality=95)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def tflite_path(tmp_path_factory, crop_files) -> Path:
    """A float32 TFLite file of a few-layer classifier, saved with its spec embedded."""
    import tf_keras as keras

    from pediatric_emotion.datasets import TFLiteModel, TFLiteModelDataset
    from pediatric_emotion.modeling.inputs import Preprocessing
    from pediatric_emotion.modeling.tflite_export import convert_to_tflite, tflite_spec

    keras.utils.set_random_seed(5)  # five classes among the crops
    model = keras.Sequential(
        [
            keras.layers.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(EMOTIONS), activation="softmax"),
        ]
    )
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 8.0, bias])  # confident, varied predictions
    preprocessing = Preprocessing(SIZE, ARCHITECTURE["input_scale"], ARCHITECTURE["input_offset"])
    content = convert_to_tflite(model, "float32")
    spec = tflite_spec(
        content,
        labels=EMOTIONS,
        preprocessing=preprocessing,
        face_crop={"size": SIZE, "margin": 0.2},
        description={"technique": "baseline", "quantization": "float32"},
    )
    path = tmp_path_factory.mktemp("tflite") / "tiny.float32.tflite"
    TFLiteModelDataset(filepath=str(path)).save(TFLiteModel(content=content, spec=spec))
    path.with_suffix(".json").unlink()  # the embedded spec alone
    return path
