import numpy as np
import pytest

from pediatric_emotion.faces import crop_face, square_box


def test_square_box_adds_margin_on_each_side_of_the_longer_side():
    assert square_box(10, 20, 40, 20, margin=0.25) == (0, 0, 60)
    assert square_box(0, 0, 10, 10, margin=0.0) == (0, 0, 10)


def test_square_box_rejects_empty_boxes():
    with pytest.raises(ValueError, match="positive size"):
        square_box(0, 0, 0, 10, margin=0.2)


def test_crop_inside_the_image_takes_exactly_that_square():
    image = np.arange(100 * 100, dtype=np.uint8).reshape(100, 100)
    image = np.stack([image] * 3, axis=2)
    crop = crop_face(image, (20, 30, 40, 40), size=40, margin=0.0)
    assert crop.shape == (40, 40, 3)
    assert np.array_equal(crop, image[30:70, 20:60])


def test_crop_past_the_border_is_padded_by_replication():
    image = np.zeros((50, 50, 3), np.uint8)
    image[:, :25] = 200  # left half bright
    crop = crop_face(image, (-10, 0, 20, 20), size=20, margin=0.0)
    assert crop.shape == (20, 20, 3)
    assert (crop[:, :10] == 200).all()  # the padded columns copy the bright border


def test_crop_resizes_to_the_requested_size():
    image = np.zeros((300, 200, 3), np.uint8)
    assert crop_face(image, (50, 50, 100, 120), size=64, margin=0.2).shape == (64, 64, 3)
