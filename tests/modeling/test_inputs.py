"""The tf.data input pipeline: decoding, preprocessing, order, shuffling, augmentation, balance."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from pediatric_emotion.images import encode_image
from pediatric_emotion.modeling.inputs import (
    Preprocessing,
    as_arrays,
    class_weights,
    decode_and_resize,
    make_dataset,
    steps_per_epoch,
)

tf = pytest.importorskip("tensorflow")

SIZE = 16
N_IMAGES = 20
IDENTITY = Preprocessing(image_size=SIZE, scale=1.0, offset=0.0)


def write(path: Path, image: np.ndarray) -> str:
    path.write_bytes(encode_image(image, path.suffix))
    return str(path)


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> tuple[list[str], np.ndarray]:
    """20 random 16x16 RGB PNG crops and their pixels, in file order."""
    folder = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N_IMAGES, SIZE, SIZE, 3), dtype=np.uint8)
    paths = [write(folder / f"crop_{i:02d}.png", image) for i, image in enumerate(images)]
    return paths, images


def eval_arrays(paths, labels=None, preprocessing=IDENTITY, **kwargs):
    kwargs = {"batch_size": 8, "training": False, **kwargs}
    return as_arrays(make_dataset(paths, labels, preprocessing=preprocessing, **kwargs))


def test_shapes_dtypes_and_eval_order(crops):
    paths, images = crops
    labels = [i % 7 for i in range(N_IMAGES)]
    dataset = make_dataset(paths, labels, preprocessing=IDENTITY, batch_size=8, training=False)
    batches = list(dataset.as_numpy_iterator())
    assert [len(batch[0]) for batch in batches] == [8, 8, 4]  # no drop in evaluation
    x, y = as_arrays(dataset)
    assert x.shape == (N_IMAGES, SIZE, SIZE, 3) and x.dtype == np.float32
    assert y.dtype == np.int32 and y.tolist() == labels
    assert np.array_equal(x, images.astype(np.float32))  # PNG is lossless, order kept
    x_again, _ = as_arrays(dataset)
    assert np.array_equal(x, x_again)


def test_unlabeled_dataset_yields_images_alone(crops):
    paths, images = crops
    x = eval_arrays(paths, None, batch_size=32)
    assert isinstance(x, np.ndarray) and x.shape == (N_IMAGES, SIZE, SIZE, 3)
    assert np.array_equal(x, images.astype(np.float32))


def test_preprocessing_math_on_a_known_image(tmp_path):
    path = write(tmp_path / "gray.png", np.full((SIZE, SIZE, 3), 128, np.uint8))
    preprocessing = Preprocessing.from_config(
        {"input_scale": 0.00784313725490196, "input_offset": -1.0}, image_size=SIZE
    )
    assert preprocessing == Preprocessing(SIZE, 0.00784313725490196, -1.0)
    x = eval_arrays([path], preprocessing=preprocessing)
    np.testing.assert_allclose(x, np.full((1, SIZE, SIZE, 3), 1.0 / 255.0), atol=1e-6)
    assert preprocessing.apply(np.array([0, 255], np.uint8)).tolist() == [-1.0, 1.0]
    tensor = preprocessing.apply(tf.constant([0.0, 127.5, 255.0]))
    np.testing.assert_allclose(tensor.numpy(), [-1.0, 0.0, 1.0], atol=1e-6)


def test_preprocessing_from_config_needs_scale_and_offset():
    with pytest.raises(ValueError, match="input_offset"):
        Preprocessing.from_config({"input_scale": 1.0}, image_size=64)


def test_images_of_another_size_are_resized(tmp_path):
    jpeg = write(tmp_path / "big.jpg", np.full((24, 24, 3), (200, 100, 50), np.uint8))
    png = write(tmp_path / "small.png", np.full((10, 12, 3), 30, np.uint8))
    gray = tmp_path / "gray.png"
    gray.write_bytes(encode_image(np.full((SIZE, SIZE), 77, np.uint8), ".png"))
    x = eval_arrays([jpeg, png, str(gray)])
    assert x.shape == (3, SIZE, SIZE, 3)
    np.testing.assert_allclose(x[0].mean(axis=(0, 1)), [200, 100, 50], atol=3)  # JPEG is lossy
    assert np.array_equal(x[1], np.full((SIZE, SIZE, 3), 30.0))
    assert np.array_equal(x[2], np.full((SIZE, SIZE, 3), 77.0))  # gray becomes RGB
    tensor = decode_and_resize(tf.constant(jpeg), 8)
    assert tensor.dtype == tf.float32 and tensor.shape == (8, 8, 3)


def test_training_shuffle_is_seeded_and_reshuffles_each_epoch(crops):
    paths, _ = crops
    labels = list(range(N_IMAGES))  # label = file index, to read the order

    def epochs(seed: int, count: int = 2) -> list[list[int]]:
        dataset = make_dataset(
            paths,
            labels,
            preprocessing=IDENTITY,
            batch_size=8,
            training=True,
            num_classes=N_IMAGES,
            seed=seed,
        )
        return [as_arrays(dataset)[1].tolist() for _ in range(count)]

    first, second = epochs(seed=1)
    assert sorted(first) == labels and sorted(second) == labels
    assert first not in (labels, second)  # shuffled, and anew each epoch
    assert epochs(seed=1) == [first, second]  # same seed, same orders
    assert epochs(seed=2, count=1)[0] != first


@pytest.mark.parametrize(
    "augmentation, atol",
    [
        ({"flip": True, "rotation_deg": 0, "zoom": 0.0}, 0.0),  # tf.reverse: an exact mirror
        ({"flip": True, "zoom": 1e-6}, 0.05),  # the flip folded into the projective transform
    ],
)
def test_flip_mirrors_some_images(crops, augmentation, atol):
    paths, images = crops
    dataset = make_dataset(
        paths,
        list(range(N_IMAGES)),
        preprocessing=IDENTITY,
        batch_size=8,
        training=True,
        augmentation=augmentation,
        num_classes=N_IMAGES,
        seed=3,
    )
    x, y = as_arrays(dataset)
    mirrored = 0
    for image, index in zip(x, y, strict=True):
        original = images[index].astype(np.float32)
        if np.allclose(image, original[:, ::-1], rtol=0, atol=atol):
            mirrored += 1
        else:
            np.testing.assert_allclose(image, original, rtol=0, atol=atol)
    assert 0 < mirrored < N_IMAGES


def test_full_augmentation_changes_pixels_keeps_range_and_is_seeded(crops):
    paths, images = crops
    augmentation = {
        "flip": True,
        "rotation_deg": 10,
        "zoom": 0.1,
        "brightness": 0.1,
        "contrast": 0.1,
    }

    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        dataset = make_dataset(
            paths,
            list(range(N_IMAGES)),
            preprocessing=IDENTITY,
            batch_size=8,
            training=True,
            augmentation=augmentation,
            num_classes=N_IMAGES,
            seed=seed,
        )
        return as_arrays(dataset)

    x, y = run(seed=5)
    assert x.shape == (N_IMAGES, SIZE, SIZE, 3) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 255.0
    originals = images[y].astype(np.float32)
    changed = [not np.allclose(a, b, atol=1.0) for a, b in zip(x, originals, strict=True)]
    assert all(changed)
    x_again, y_again = run(seed=5)
    assert np.array_equal(y, y_again) and np.array_equal(x, x_again)
    x_other, y_other = run(seed=6)
    order = np.argsort(y_other)
    assert not np.allclose(x_other[order], x[np.argsort(y)])


def test_brightness_only_shifts_within_bounds(tmp_path):
    path = write(tmp_path / "gray.png", np.full((SIZE, SIZE, 3), 100, np.uint8))
    dataset = make_dataset(
        [path] * 32,
        None,
        preprocessing=IDENTITY,
        batch_size=32,
        training=True,
        augmentation={"brightness": 0.2},
        seed=0,
    )
    x = as_arrays(dataset)
    shifts = x.mean(axis=(1, 2, 3)) - 100.0
    assert np.allclose(x.std(axis=(1, 2, 3)), 0.0, atol=1e-3)  # a uniform shift per image
    assert np.abs(shifts).max() <= 0.2 * 255 + 1e-3
    assert len(np.unique(np.round(shifts, 3))) > 20  # each image draws its own shift


def test_balanced_sampling_evens_out_an_imbalanced_set(crops):
    paths, _ = crops
    files = [paths[i % 10] for i in range(90)] + [paths[10 + i] for i in range(10)]
    labels = [0] * 90 + [3] * 10
    dataset = make_dataset(
        files,
        labels,
        preprocessing=IDENTITY,
        batch_size=32,
        training=True,
        class_balance="sampling",
        seed=0,
    )
    assert dataset.cardinality() == tf.data.INFINITE_CARDINALITY
    _, y = as_arrays(dataset, max_batches=40)
    assert len(y) == 40 * 32 and set(y.tolist()) == {0, 3}
    assert abs((y == 3).mean() - 0.5) < 0.05
    assert steps_per_epoch(100, 32) == 4 and steps_per_epoch(64, 32) == 2
    with pytest.raises(ValueError, match="max_batches"):
        as_arrays(dataset)


def test_sampling_balances_the_strata_when_the_labels_are_row_numbers(crops):
    """Distillation's stream: each label is the image's row number, the strata its class."""
    paths, _ = crops
    files = [paths[i % 10] for i in range(90)] + [paths[10 + i] for i in range(10)]
    classes = np.array([0] * 90 + [3] * 10)
    stream = {
        "preprocessing": IDENTITY,
        "batch_size": 32,
        "training": True,
        "class_balance": "sampling",
        "num_classes": 100,
    }
    dataset = make_dataset(files, np.arange(100), strata=classes, seed=0, **stream)
    _, rows = as_arrays(dataset, max_batches=40)
    assert set(rows.tolist()) <= set(range(100)) and len(set(rows.tolist())) > 50
    assert abs((classes[rows] == 3).mean() - 0.5) < 0.05
    with pytest.raises(ValueError, match="99 strata for 100 images"):
        make_dataset(files, np.arange(100), strata=classes[:99], **stream)


def test_class_weights_are_balanced_and_zero_for_absent_classes(caplog):
    with caplog.at_level(logging.WARNING):
        weights = class_weights([0, 0, 0, 1], num_classes=3)
    assert weights == pytest.approx({0: 4 / 6, 1: 2.0, 2: 0.0})
    assert "[2]" in caplog.text
    assert class_weights([1, 0], num_classes=2) == {0: 1.0, 1: 1.0}
    with pytest.raises(ValueError, match="index 1"):
        class_weights([0, 5], num_classes=3)


def test_bad_inputs_fail_before_building(crops, tmp_path):
    paths, _ = crops
    kwargs = {"preprocessing": IDENTITY, "batch_size": 4, "training": True}
    with pytest.raises(ValueError, match="no image paths"):
        make_dataset([], [], **kwargs)
    with pytest.raises(ValueError, match="3 labels for 20 paths"):
        make_dataset(paths, [0, 1, 2], **kwargs)
    labels = [0] * N_IMAGES
    labels[5], labels[9] = 7, -1
    with pytest.raises(ValueError, match=r"label 7 at index 5 is outside \[0, 7\)"):
        make_dataset(paths, labels, **kwargs)
    missing = [*paths[:3], str(tmp_path / "gone_a.png"), str(tmp_path / "gone_b.png")]
    with pytest.raises(FileNotFoundError, match=r"gone_a\.png \(2 of 5 missing\)"):
        make_dataset(missing, None, **kwargs)
    with pytest.raises(ValueError, match="class_balance"):
        make_dataset(paths, None, class_balance="oversample", **kwargs)
    with pytest.raises(ValueError, match="needs labels"):
        make_dataset(paths, None, class_balance="sampling", **kwargs)
    with pytest.raises(ValueError, match="unknown augmentation keys"):
        make_dataset(paths, None, augmentation={"hue": 0.1}, **kwargs)


def test_file_cache_writes_into_the_given_folder(crops, tmp_path):
    paths, images = crops
    folder = tmp_path / "cache" / "nested"
    x = eval_arrays(paths, cache=str(folder))
    first = sorted(p.name for p in folder.iterdir())
    assert any(name.endswith(".index") for name in first)
    assert np.array_equal(x, images.astype(np.float32))
    assert np.array_equal(eval_arrays(paths, cache=str(folder)), x)  # read back from the cache
    assert sorted(p.name for p in folder.iterdir()) == first
    subset = eval_arrays(paths[:5], cache=str(folder))  # another file list: another cache file
    assert np.array_equal(subset, x[:5])
    assert len(list(folder.glob("*.index"))) == 2
    assert not list((tmp_path).glob("*.index"))
    _, y = as_arrays(
        make_dataset(
            paths,
            [0] * 15 + [1] * 5,
            preprocessing=IDENTITY,
            batch_size=8,
            training=True,
            class_balance="sampling",
            cache=str(folder),
        ),
        max_batches=2,
    )
    assert len(list(folder.glob("*_class*.index"))) == 2 and len(y) == 16


def test_no_cache_gives_the_same_pixels(crops):
    paths, images = crops
    assert np.array_equal(eval_arrays(paths, cache="none"), images.astype(np.float32))
    assert np.array_equal(eval_arrays(paths, cache=None), images.astype(np.float32))


def test_a_file_cache_is_written_once_when_two_cells_read_it_at_once(crops, tmp_path):
    """Two architectures trained on one data copy (two Dask workers) share its file cache: the
    first writes it whole under a lock, the other waits and reads it; neither fails."""
    paths, images = crops
    folder = tmp_path / "shared_cache"
    results: list[np.ndarray] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def read() -> None:
        try:
            start.wait()
            results.append(eval_arrays(paths, cache=str(folder)))
        except BaseException as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)

    workers = [threading.Thread(target=read) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    assert len(results) == 2
    for result in results:
        assert np.array_equal(result, images.astype(np.float32))
    assert len(list(folder.glob("*.index"))) == 1
    assert not list(folder.glob("*.lockfile"))
