"""Training throughput: the tf.data input pipeline against in-memory tensors, per architecture.

Writes synthetic face-crop PNGs (seeded) into a temporary folder, then for each architecture
compiles the classifier (adam, sparse categorical crossentropy), warms up, and times ``--steps``
training steps fed (a) by ``make_dataset(training=True)`` with the augmentation, class balance and
memory cache of conf/base/parameters_training.yml, and (b) by the same images already decoded and
preprocessed, served from memory. The input pipeline costs ``1 - a / b`` of the training speed
(target: under 10%). Nothing under data/ is touched.

    .venv/bin/python benchmarks/training_throughput.py [--images 512] [--image-size 64]
        [--batch-size 32] [--steps 20] [--architectures mobilenet_v2,efficientnet_b0]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from kedro.config import OmegaConfigLoader

import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from pediatric_emotion.images import encode_image
from pediatric_emotion.modeling.architectures import build_classifier
from pediatric_emotion.modeling.inputs import Preprocessing, as_arrays, make_dataset

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NUM_CLASSES = 7

logger = logging.getLogger("training_throughput")


def write_crops(folder: Path, count: int, size: int, seed: int) -> tuple[list[str], list[int]]:
    """Write ``count`` smooth-ish random RGB PNG crops (face-like entropy, not pure noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(count, 8, 8, 3)).astype(np.float32)
    paths = []
    for i in range(count):
        image = np.kron(coarse[i], np.ones((size // 8 + 1, size // 8 + 1, 1)))[:size, :size]
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        path = folder / f"crop_{i:05d}.png"
        path.write_bytes(encode_image(image, ".png"))
        paths.append(str(path))
    labels = rng.integers(0, NUM_CLASSES, size=count).tolist()
    return paths, labels


def time_fits(
    model: Any, datasets: dict[str, Any], steps: int, batch: int, repeats: int
) -> dict[str, float]:
    """Best images/s per dataset over ``repeats`` rounds of ``steps``-step fits; the datasets take
    turns within a round, so drift in machine load hits them alike."""
    best = dict.fromkeys(datasets, 0.0)
    for _ in range(repeats):
        for name, dataset in datasets.items():
            started = time.perf_counter()
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
            best[name] = max(best[name], steps * batch / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="synthetic crops (default 512)")
    parser.add_argument("--image-size", type=int, default=None, help="side (default: conf)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: conf")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed rounds, best kept (default 3)"
    )
    parser.add_argument(
        "--architectures", default=None, help="comma-separated names (default: all in conf)"
    )
    parser.add_argument(
        "--mixed-precision",
        choices=("auto", "on", "off"),
        default="auto",
        help="mixed_float16 (auto: when a GPU is visible)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("pediatric_emotion", "tensorflow", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import tensorflow as tf
    import tf_keras as keras

    params = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="local"
    )["parameters"]
    training = params["training"]
    image_size = args.image_size or int(training["image_size"])
    batch_size = args.batch_size or int(training["batch_size"])
    seed = int(training.get("seed", 0))
    names = args.architectures.split(",") if args.architectures else list(params["architectures"])
    unknown = [name for name in names if name not in params["architectures"]]
    if unknown:
        parser.error(f"unknown architectures {unknown}; conf has {list(params['architectures'])}")

    gpus = tf.config.list_physical_devices("GPU")
    mixed = args.mixed_precision == "on" or (args.mixed_precision == "auto" and bool(gpus))
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    device = f"{len(gpus)} GPU(s)" if gpus else "CPU only"
    logger.info("%s, mixed precision %s, TF %s", device, "on" if mixed else "off", tf.__version__)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        paths, labels = write_crops(Path(tmp), args.images, image_size, seed)
        logger.info("Wrote %d crops in %.1f s", len(paths), time.perf_counter() - started)

        for name in names:
            architecture = params["architectures"][name]
            preprocessing = Preprocessing.from_config(architecture, image_size)
            pipeline = make_dataset(
                paths,
                labels,
                preprocessing=preprocessing,
                batch_size=batch_size,
                training=True,
                augmentation=training.get("augmentation"),
                class_balance=str(training.get("class_balance", "none")),
                num_classes=NUM_CLASSES,
                seed=seed,
                cache="memory",
            ).repeat()
            images, image_labels = as_arrays(
                make_dataset(
                    paths,
                    labels,
                    preprocessing=preprocessing,
                    batch_size=batch_size,
                    training=False,
                    cache="none",
                )
            )
            in_memory = (
                tf.data.Dataset.from_tensor_slices((images, image_labels))
                .batch(batch_size)
                .cache()
                .repeat()
                .prefetch(tf.data.AUTOTUNE)
            )

            keras.backend.clear_session()
            model = build_classifier(
                architecture,
                image_size=image_size,
                num_classes=NUM_CLASSES,
                weights=None,
                dropout=float(training.get("dropout", 0.2)),
            )
            model.compile(
                optimizer=keras.optimizers.Adam(float(training.get("learning_rate", 1e-3))),
                loss=keras.losses.SparseCategoricalCrossentropy(),
            )
            started = time.perf_counter()
            warmup = max(3, -(-args.images // batch_size))  # one pass fills the memory cache
            model.fit(pipeline, epochs=1, steps_per_epoch=warmup, verbose=0)
            model.fit(in_memory, epochs=1, steps_per_epoch=3, verbose=0)
            logger.info("%s: compiled and warmed up in %.1f s", name, time.perf_counter() - started)

            rates = time_fits(
                model,
                {"pipeline": pipeline, "in_memory": in_memory},
                args.steps,
                batch_size,
                args.repeats,
            )
            pipeline_rate, memory_rate = rates["pipeline"], rates["in_memory"]
            cost = 1.0 - pipeline_rate / memory_rate
            logger.info("%s: %.0f vs %.0f images/s", name, pipeline_rate, memory_rate)
            rows.append((name, model.count_params(), pipeline_rate, memory_rate, cost))

        alone = make_dataset(
            paths,
            labels,
            preprocessing=Preprocessing(image_size, 1.0, 0.0),
            batch_size=batch_size,
            training=True,
            augmentation=training.get("augmentation"),
            seed=seed,
        )
        as_arrays(alone)  # fill the cache
        started = time.perf_counter()
        epochs = 3
        for _ in range(epochs):
            as_arrays(alone)
        alone_rate = epochs * len(paths) / (time.perf_counter() - started)

    print(
        f"\n{device}, mixed precision {'on' if mixed else 'off'}; {args.images} crops of "
        f"{image_size} px, batch {batch_size}; {args.steps} steps, best of {args.repeats} "
        f"alternating rounds; "
        f"augmentation {dict(training.get('augmentation') or {})}"
    )
    print(f"input pipeline alone (cached, shuffled, augmented): {alone_rate:,.0f} images/s\n")
    header = f"{'architecture':<20} {'params':>10} {'pipeline img/s':>15} "
    header += f"{'in-memory img/s':>16} {'pipeline cost':>14}"
    print(header)
    print("-" * len(header))
    for name, count, pipeline_rate, memory_rate, cost in rows:
        flag = "" if cost < 0.10 else "  > 10%"
        print(
            f"{name:<20} {count:>10,} {pipeline_rate:>15,.0f} {memory_rate:>16,.0f} "
            f"{cost:>13.1%}{flag}"
        )


if __name__ == "__main__":
    main()
