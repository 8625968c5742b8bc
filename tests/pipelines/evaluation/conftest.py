"""Tiny fixtures for the evaluation tests: 32 px face-like crops, a few-layer Keras classifier
built here, and its TFLite files (float32, int8) converted with the project's own exporter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

EVALUATION = {
    "splits": ["test", "val"],
    "test_role": "test",
    "bootstrap": {"resamples": 50, "confidence": 0.95, "seed": 0},
    "ece_bins": 10,
    "subgroups": {
        "splits": ["test"],
        "subset_a_agreement": 0.6,
        "age_bands": [
            {"label": "2-4", "min": 2, "max": 5},
            {"label": "5-8", "min": 5, "max": 9},
        ],
        "columns": ["ethnicity", "sex", "mouth"],
        "min_group_size": 5,
    },
    "run_label": "this run (demo data)",
    "test_set_label": "CAFE-like demo set (synthetic)",
}
"""The evaluation parameters of the tests: a small bootstrap, small groups."""

EMOTIONS = ["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"]
ARCHITECTURE = {"input_scale": 2 / 255, "input_offset": -1.0}
SIZE = 32
N_IMAGES = 24


def _image(rng: np.random.Generator) -> np.ndarray:
    """A smooth colour gradient with noise: varied enough for a random model to disagree."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        channels.append(127.5 + 100 * np.tanh(a * x + b * y + c) + rng.normal(0, 12, x.shape))
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def crops_root(tmp_path_factory) -> Path:
    """A folder of N_IMAGES PNG crops, crop_path relative to it: demo/img00.png ..."""
    root = tmp_path_factory.mktemp("crops")
    (root / "demo").mkdir()
    rng = np.random.default_rng(7)
    for index in range(N_IMAGES):
        Image.fromarray(_image(rng)).save(root / "demo" / f"img{index:02d}.png")
    return root


@pytest.fixture(scope="session")
def crop_paths(crops_root) -> list[str]:
    return [f"demo/img{index:02d}.png" for index in range(N_IMAGES)]


@pytest.fixture(scope="session")
def tiny_model():
    import tf_keras as keras

    keras.utils.set_random_seed(3)
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
    return model


def model_ready(crops_root: Path, crop_paths: list[str]) -> np.ndarray:
    """Float32 model inputs computed here by hand: pixel * scale + offset."""
    pixels = np.stack([np.asarray(Image.open(crops_root / p).convert("RGB")) for p in crop_paths])
    scale, offset = ARCHITECTURE["input_scale"], ARCHITECTURE["input_offset"]
    return pixels.astype(np.float32) * np.float32(scale) + np.float32(offset)


@pytest.fixture(scope="session")
def tiny_tflite(tiny_model, crops_root, crop_paths) -> dict:
    """quantization -> TFLiteModel(content, spec), through convert_to_tflite + tflite_spec."""
    from pediatric_emotion.datasets import TFLiteModel
    from pediatric_emotion.modeling.inputs import Preprocessing
    from pediatric_emotion.modeling.tflite_export import convert_to_tflite, tflite_spec

    preprocessing = Preprocessing(SIZE, ARCHITECTURE["input_scale"], ARCHITECTURE["input_offset"])
    files = {}
    for quantization in ("float32", "int8"):
        content = convert_to_tflite(
            tiny_model,
            quantization,
            representative_images=model_ready(crops_root, crop_paths),
        )
        spec = tflite_spec(
            content,
            labels=EMOTIONS,
            preprocessing=preprocessing,
            face_crop={"size": SIZE, "margin": 0.2},
            description={"technique": "baseline", "quantization": quantization},
        )
        files[quantization] = TFLiteModel(content=content, spec=spec)
    return files


def manifest(crop_paths: list[str], *, test: int = 16) -> pd.DataFrame:
    """A manifest: the first ``test`` crops are the test role (4 subjects, CAFE-like metadata),
    the rest train-role validation rows."""
    rows = []
    for index, path in enumerate(crop_paths):
        is_test = index < test
        rows.append(
            {
                "image_id": f"img{index:02d}",
                "source": "cafe" if is_test else "kdef",
                "role": "test" if is_test else "train",
                "split": "test" if is_test else "val",
                "subject_id": f"s{index % 4}" if is_test else f"v{index % 3}",
                "emotion": EMOTIONS[index % len(EMOTIONS)],
                "crop_path": path,
                "ethnicity": ["Asian", "Latino"][index % 2] if is_test else None,
                "age": float(2 + index % 7) if is_test else np.nan,
                "sex": "F" if index % 4 < 2 else "M",
                "mouth": "open" if index % 3 else "closed",
                "agreement": (0.4 + 0.05 * index) if is_test else np.nan,
            }
        )
    return pd.DataFrame(rows)


def training_examples(table: pd.DataFrame) -> pd.DataFrame:
    val = table[table["role"] != "test"]
    return pd.DataFrame(
        {
            "crop_path": val["crop_path"].to_numpy(),
            "label": val["emotion"].map(EMOTIONS.index).to_numpy(),
            "split": "val",
            "source": val["source"].to_numpy(),
        }
    )
