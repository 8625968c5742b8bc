"""tf.data input pipelines for training and evaluation, from a list of face-crop files.

Crops are decoded to RGB, resized to the model's side, cached (as uint8, to keep memory at a
quarter of float32), then, for training, shuffled, augmented on [0, 255] pixels and mapped to the
architecture's input range (``pixel * scale + offset``). Augmentation uses stateless random ops
whose seeds come from a seeded ``tf.data.Dataset.random`` stream: the same ``seed`` gives the same
shuffles and augmentations epoch after epoch, and every epoch draws new ones.

Importing this module imports ``pediatric_emotion`` first, which selects Keras 2 for TensorFlow.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf  # after pediatric_emotion/__init__ (the parent package) set Keras 2

from pediatric_emotion.harmonized_crops import crop_paths

logger = logging.getLogger(__name__)

CLASS_BALANCE_MODES = ("none", "weights", "sampling")
AUGMENTATION_KEYS = ("flip", "rotation_deg", "zoom", "brightness", "contrast")
_AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class Preprocessing:
    """Map [0, 255] RGB pixels to a model's input range: ``pixel * scale + offset``."""

    image_size: int
    scale: float
    offset: float

    def apply(self, images: Any) -> Any:
        """Return ``images * scale + offset`` as float32 (a tensor for a tensor, else an array)."""
        if isinstance(images, tf.Tensor | tf.Variable):
            return tf.cast(images, tf.float32) * self.scale + self.offset
        return np.asarray(images, dtype=np.float32) * np.float32(self.scale) + np.float32(
            self.offset
        )

    @classmethod
    def from_config(cls, architecture: Mapping[str, Any], image_size: int) -> Preprocessing:
        """Build from an ``architectures.<name>`` entry (``input_scale`` and ``input_offset``)."""
        missing = [key for key in ("input_scale", "input_offset") if key not in architecture]
        if missing:
            raise ValueError(f"architecture config lacks {', '.join(missing)}")
        if int(image_size) <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        return cls(
            image_size=int(image_size),
            scale=float(architecture["input_scale"]),
            offset=float(architecture["input_offset"]),
        )


def _decode_uint8(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decode a file to RGB uint8 of ``image_size`` x ``image_size`` (resized only if needed)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    shape = tf.shape(image)

    def resize() -> tf.Tensor:
        resized = tf.image.resize(image, [image_size, image_size], antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)

    same_size = tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size))
    image = tf.cond(same_size, lambda: image, resize)
    image.set_shape([image_size, image_size, 3])
    return image


def decode_and_resize(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """Read an image file (PNG, JPEG, BMP, GIF) to float32 RGB in [0, 255], ``image_size`` square.

    Images of another size are resized (bilinear, antialiased) and rounded to whole values, as if
    the resized crop had been saved as 8-bit: what the pipelines cache.
    """
    return tf.cast(_decode_uint8(path, image_size), tf.float32)


def _check_augmentation(augmentation: Mapping[str, Any] | None) -> dict[str, float]:
    """Validate an augmentation mapping; return the active settings as floats (empty: none)."""
    settings = dict(augmentation or {})
    unknown = sorted(set(settings) - set(AUGMENTATION_KEYS))
    if unknown:
        raise ValueError(
            f"unknown augmentation keys {unknown}; expected some of {list(AUGMENTATION_KEYS)}"
        )
    active: dict[str, float] = {}
    for key, value in settings.items():
        number = float(bool(value)) if key == "flip" else float(value or 0.0)
        if number < 0:
            raise ValueError(f"augmentation {key} must be >= 0, got {value}")
        if key in ("zoom", "contrast") and number >= 1:
            raise ValueError(f"augmentation {key} must be < 1, got {value}")
        if number > 0:
            active[key] = number
    return active


def _geometric_transforms(
    angles: tf.Tensor, zooms: tf.Tensor, flips: tf.Tensor, height: tf.Tensor, width: tf.Tensor
) -> tf.Tensor:
    """Projective transforms [batch, 8] mapping output pixels to input pixels: rotate and zoom
    about the image center (zoom > 1 shows more of the image, i.e. zooms out), then mirror
    horizontally where ``flips`` is -1 (1 keeps the side)."""
    cos, sin = tf.cos(angles) * zooms, tf.sin(angles) * zooms
    x_center = (tf.cast(width, tf.float32) - 1.0) / 2.0
    y_center = (tf.cast(height, tf.float32) - 1.0) / 2.0
    x_shift = x_center - cos * x_center + sin * y_center
    zeros = tf.zeros_like(angles)
    return tf.stack(
        [
            flips * cos,
            -flips * sin,
            flips * x_shift + (1.0 - flips) * x_center,
            sin,
            cos,
            y_center - sin * x_center - cos * y_center,
            zeros,
            zeros,
        ],
        axis=1,
    )


def _augment_batch(images: tf.Tensor, seed: tf.Tensor, settings: Mapping[str, float]) -> tf.Tensor:
    """Randomly flip, rotate, zoom, brighten and contrast a [batch, h, w, 3] float [0, 255] batch,
    each image with its own draw from the stateless ``seed``; the result is clipped to [0, 255].

    Flip, rotation and zoom are one projective transform (bilinear, reflected borders; a flip
    alone is an exact mirror); brightness and contrast one multiply-add per image and channel.
    """
    batch = tf.shape(images)[0]
    height, width = tf.shape(images)[1], tf.shape(images)[2]

    def uniform(index: int, low: float, high: float) -> tf.Tensor:
        op_seed = tf.random.experimental.stateless_fold_in(seed, index)
        return tf.random.stateless_uniform([batch], op_seed, minval=low, maxval=high)

    flip = settings.get("flip", 0.0)
    flips = tf.where(uniform(0, 0.0, 1.0) < 0.5, -1.0, 1.0) if flip else tf.ones([batch])
    rotation = math.radians(settings.get("rotation_deg", 0.0))
    zoom = settings.get("zoom", 0.0)
    if rotation or zoom:
        angles = uniform(1, -rotation, rotation) if rotation else tf.zeros([batch])
        zooms = uniform(2, 1.0 - zoom, 1.0 + zoom) if zoom else tf.ones([batch])
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=_geometric_transforms(angles, zooms, flips, height, width),
            output_shape=tf.stack([height, width]),
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )
    elif flip:
        images = tf.where(flips[:, None, None, None] < 0, tf.reverse(images, axis=[2]), images)

    brightness = settings.get("brightness", 0.0)
    contrast = settings.get("contrast", 0.0)
    if brightness or contrast:
        # brightness b then contrast f about the channel means m: (x + b - (m + b)) * f + m + b
        # = x * f + ((1 - f) * m + b)
        shift = 255.0 * uniform(3, -brightness, brightness) if brightness else tf.zeros([batch])
        shift = shift[:, None, None, None]
        if contrast:
            factors = uniform(4, 1.0 - contrast, 1.0 + contrast)[:, None, None, None]
            means = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
            images = images * factors + ((1.0 - factors) * means + shift)
        else:
            images = images + shift
    return tf.clip_by_value(images, 0.0, 255.0)


def _check_inputs(
    paths: Sequence[str], labels: Sequence[int] | None, num_classes: int
) -> tuple[list[str], np.ndarray | None]:
    """Validate paths and labels before any TensorFlow work; raise ValueError/FileNotFoundError."""
    path_list = [os.fspath(path) for path in paths]
    if not path_list:
        raise ValueError("no image paths given")
    label_array = None
    if labels is not None:
        label_array = np.asarray(labels)
        if label_array.ndim != 1 or len(label_array) != len(path_list):
            raise ValueError(
                f"{len(label_array) if label_array.ndim else 1} labels for {len(path_list)} paths"
            )
        if label_array.dtype.kind == "f" and np.all(np.isfinite(label_array)):
            if np.all(label_array == np.round(label_array)):
                label_array = label_array.astype(np.int64)
        if label_array.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got dtype {label_array.dtype}")
        bad = np.flatnonzero((label_array < 0) | (label_array >= num_classes))
        if bad.size:
            index = int(bad[0])
            raise ValueError(
                f"label {label_array[index]} at index {index} is outside [0, {num_classes}) "
                f"({bad.size} bad label(s))"
            )
        label_array = label_array.astype(np.int32)
    missing = [path for path in path_list if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError(
            f"image file not found: {missing[0]} ({len(missing)} of {len(path_list)} missing)"
        )
    return path_list, label_array


def _cache_key(paths: Sequence[str], image_size: int) -> str:
    """A name for a file cache that changes with the file list, their sizes/mtimes and the side."""
    digest = hashlib.sha1(str(image_size).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return f"crops_{image_size}px_{digest.hexdigest()[:16]}"


def _cached_images(
    paths: list[str],
    labels: np.ndarray | None,
    image_size: int,
    cache: str | None,
    cache_name: str,
) -> tf.data.Dataset:
    """Decoded uint8 (image[, label]) elements in input order, cached as asked."""
    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda path: _decode_uint8(path, image_size), num_parallel_calls=_AUTOTUNE
        )
    else:
        dataset = tf.data.Dataset.from_tensor_slices((paths, labels)).map(
            lambda path, label: (_decode_uint8(path, image_size), label),
            num_parallel_calls=_AUTOTUNE,
        )
    if cache is None or str(cache).lower() == "none":
        return dataset
    if str(cache).lower() == "memory":
        return dataset.cache()
    folder = Path(cache)
    folder.mkdir(parents=True, exist_ok=True)
    return _file_cached(dataset, folder / cache_name)


def _file_cached(dataset: tf.data.Dataset, prefix: Path) -> tf.data.Dataset:
    """``dataset.cache(prefix)``, written whole before anyone reads it. The architectures trained
    on one data copy share its cache; run side by side (two Dask workers, two jobs on shared
    storage) both would write it at once and TensorFlow stops the second (``AlreadyExistsError``:
    a concurrent caching iterator). So the first process to get the lock writes the whole cache in
    one pass, the others wait and then only read. A TensorFlow lock file left by a writer that was
    killed is removed under that lock (no one else can be writing then)."""
    from filelock import FileLock

    index = prefix.with_name(f"{prefix.name}.index")
    if not index.exists():
        with FileLock(str(prefix.with_name(f"{prefix.name}.lock"))):
            if not index.exists():
                for stale in prefix.parent.glob(f"{prefix.name}*.lockfile"):
                    stale.unlink()
                for _ in dataset.cache(str(prefix)):
                    pass
    return dataset.cache(str(prefix))


def make_dataset(
    paths: Sequence[str],
    labels: Sequence[int] | None,
    *,
    preprocessing: Preprocessing,
    batch_size: int,
    training: bool,
    augmentation: Mapping[str, Any] | None = None,
    class_balance: str = "none",
    num_classes: int = 7,
    strata: Sequence[int] | None = None,
    seed: int = 0,
    cache: str | None = "memory",
) -> tf.data.Dataset:
    """Batches of ``(images, labels)`` (``images`` alone when ``labels`` is None) from crop files.

    Images are float32 [batch, size, size, 3] after ``preprocessing``; labels int32. Training
    shuffles (seeded, anew each epoch) and augments; ``class_balance="sampling"`` draws every class
    equally often and never ends (pair it with ``steps_per_epoch``). Evaluation
    (``training=False``) keeps the input order and ignores augmentation and class balance.
    ``cache``: "memory", "none"/None, or a folder for tf.data's file cache (a file per file list).
    ``strata``: the class of each image that ``sampling`` balances, where the labels are
    something else (distillation's row numbers); default the labels.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if class_balance not in CLASS_BALANCE_MODES:
        raise ValueError(
            f"class_balance must be one of {list(CLASS_BALANCE_MODES)}, got {class_balance!r}"
        )
    settings = _check_augmentation(augmentation)
    path_list, label_array = _check_inputs(paths, labels, num_classes)
    size = preprocessing.image_size
    file_cache = cache is not None and str(cache).lower() not in ("none", "memory")
    cache_name = _cache_key(path_list, size) if file_cache else ""

    sampling = training and class_balance == "sampling"
    if sampling:
        if label_array is None:
            raise ValueError('class_balance="sampling" needs labels')
        groups = label_array if strata is None else np.asarray(strata)
        if len(groups) != len(label_array):
            raise ValueError(f"{len(groups)} strata for {len(label_array)} images")
        present = [int(c) for c in np.unique(groups)]
        per_class = []
        for c in present:
            chosen = np.flatnonzero(groups == c)
            per_class.append(
                _cached_images(
                    [path_list[i] for i in chosen],
                    label_array[chosen],
                    size,
                    cache,
                    f"{cache_name}_class{c}",
                )
                .shuffle(len(chosen), seed=seed + 1 + c, reshuffle_each_iteration=True)
                .repeat()
            )
        dataset = tf.data.Dataset.sample_from_datasets(
            per_class, weights=[1.0 / len(present)] * len(present), seed=seed
        )
        logger.info(
            "Balanced sampling over %d classes %s from %d images (infinite)",
            len(present),
            present,
            len(path_list),
        )
    else:
        dataset = _cached_images(path_list, label_array, size, cache, cache_name)
        if training:
            dataset = dataset.shuffle(len(path_list), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)

    has_labels = label_array is not None
    if training and settings:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(
            2, drop_remainder=True
        )

        def augment_and_scale(element: Any, op_seed: tf.Tensor) -> Any:
            images = element[0] if has_labels else element
            images = preprocessing.apply(
                _augment_batch(tf.cast(images, tf.float32), op_seed, settings)
            )
            return (images, element[1]) if has_labels else images

        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            augment_and_scale, num_parallel_calls=_AUTOTUNE
        )
    elif has_labels:
        dataset = dataset.map(
            lambda images, batch_labels: (preprocessing.apply(images), batch_labels),
            num_parallel_calls=_AUTOTUNE,
        )
    else:
        dataset = dataset.map(preprocessing.apply, num_parallel_calls=_AUTOTUNE)
    logger.debug(
        "make_dataset: %d images, %dpx, batch %d, training=%s, augmentation=%s, "
        "class_balance=%s, cache=%s",
        len(path_list),
        size,
        batch_size,
        training,
        settings or None,
        class_balance,
        cache,
    )
    return dataset.prefetch(_AUTOTUNE)


def crop_stream(
    rows: pd.DataFrame,
    crops_root: str | Path,
    *,
    architecture: Mapping[str, Any],
    settings: Mapping[str, Any],
    num_classes: int,
    training: bool,
    cache: str | None,
    batch_size: int | None = None,
) -> tf.data.Dataset:
    """One cell's batches of the face crops of ``rows`` (``crop_path`` under ``crops_root``):
    the one input stream of training, fine-tuning, calibration and evaluation.

    ``training``: ``(images, labels)`` from the ``label`` column, shuffled, augmented and class
    balanced as the cell's ``settings`` (training settings with its overrides) say; else images
    alone in row order. Preprocessed for ``architecture`` at ``settings["image_size"]``; batches of
    ``batch_size`` (default the settings' ``batch_size``)."""
    return make_dataset(
        crop_paths(crops_root, rows),
        rows["label"].to_numpy() if training else None,
        preprocessing=Preprocessing.from_config(architecture, int(settings["image_size"])),
        batch_size=int(batch_size or settings["batch_size"]),
        training=training,
        augmentation=settings.get("augmentation") if training else None,
        class_balance=str(settings.get("class_balance", "none")) if training else "none",
        num_classes=num_classes,
        seed=int(settings.get("seed", 0)),
        cache=cache,
    )


def training_batches(
    train: pd.DataFrame,
    crops_root: str | Path,
    *,
    architecture: Mapping[str, Any],
    settings: Mapping[str, Any],
    num_classes: int,
    max_steps_per_epoch: int | None = None,
) -> tuple[tf.data.Dataset, int, dict[int, float] | None]:
    """What ``model.fit`` takes for the ``train`` rows: the never-ending, reshuffled, augmented
    stream (``crop_stream``), the batches of one epoch (one pass, capped at
    ``max_steps_per_epoch``) and the class weights where ``class_balance`` is ``weights``."""
    data = crop_stream(
        train,
        crops_root,
        architecture=architecture,
        settings=settings,
        num_classes=num_classes,
        training=True,
        cache=settings.get("cache"),
    ).repeat()  # each epoch is `steps` batches of one reshuffled stream
    steps = steps_per_epoch(len(train), int(settings["batch_size"]), max_steps_per_epoch)
    weights = (
        class_weights(train["label"].to_numpy(), num_classes)
        if str(settings.get("class_balance", "none")) == "weights"
        else None
    )
    return data, steps, weights


def steps_per_epoch(n_examples: int, batch_size: int, max_steps: int | None = None) -> int:
    """Batches for one pass over ``n_examples`` (the last one partial): ceil(n / batch_size),
    at most ``max_steps`` where given."""
    if n_examples <= 0 or batch_size <= 0:
        raise ValueError(
            f"n_examples and batch_size must be positive, got {n_examples}, {batch_size}"
        )
    steps = math.ceil(n_examples / batch_size)
    return min(steps, int(max_steps)) if max_steps else steps


def class_weights(labels: Sequence[int], num_classes: int) -> dict[int, float]:
    """Balanced class weights ``n / (k_present * count_c)``; absent classes get 0.0 (warned)."""
    label_array = np.asarray(labels, dtype=np.int64)
    if label_array.size == 0:
        raise ValueError("no labels given")
    bad = np.flatnonzero((label_array < 0) | (label_array >= num_classes))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"label {label_array[index]} at index {index} is outside [0, {num_classes})"
        )
    counts = np.bincount(label_array, minlength=num_classes)
    present = int(np.count_nonzero(counts))
    absent = [c for c in range(num_classes) if counts[c] == 0]
    if absent:
        logger.warning("Classes %s have no examples: class weight 0.0", absent)
    total = label_array.size
    return {
        c: float(total / (present * counts[c])) if counts[c] else 0.0 for c in range(num_classes)
    }


def as_arrays(
    dataset: tf.data.Dataset, max_batches: int | None = None
) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
    """Materialize a (finite, or capped by ``max_batches``) dataset of batches as numpy arrays."""
    if max_batches is None and dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError("dataset is infinite: pass max_batches")
    if max_batches is not None:
        dataset = dataset.take(max_batches)
    batches = list(dataset.as_numpy_iterator())
    if not batches:
        raise ValueError("dataset is empty")
    if isinstance(batches[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*batches, strict=True))  # type: ignore[return-value]
    return np.concatenate(batches)
