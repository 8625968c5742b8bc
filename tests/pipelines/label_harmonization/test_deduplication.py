import random

import pandas as pd
import pytest

from pediatric_emotion.pipelines.label_harmonization.deduplication import (
    deduplicate,
    hamming_distance,
    near_duplicate_pairs,
)


def _brute_force(hashes, max_distance):
    return sorted(
        (i, j, hamming_distance(hashes[i], hashes[j]))
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if hamming_distance(hashes[i], hashes[j]) <= max_distance
    )


@pytest.mark.parametrize("max_distance", [0, 1, 4, 9])
def test_multi_index_search_finds_exactly_the_brute_force_pairs(max_distance):
    rng = random.Random(max_distance)
    hashes = [rng.getrandbits(64) for _ in range(150)]
    # plant near-copies at known distances
    for k in range(40):
        base = hashes[k]
        flips = rng.sample(range(64), rng.randint(0, 10))
        hashes.append(base ^ sum(1 << bit for bit in flips))
    assert near_duplicate_pairs(hashes, max_distance) == _brute_force(hashes, max_distance)


def test_multi_index_search_on_256_bit_hashes():
    rng = random.Random(7)
    hashes = [rng.getrandbits(256) for _ in range(60)]
    hashes += [h ^ (1 << rng.randrange(256)) ^ (1 << rng.randrange(256)) for h in hashes[:20]]
    pairs = near_duplicate_pairs(hashes, 8, bits=256)
    assert pairs == _brute_force(hashes, 8)
    assert len(pairs) >= 20


def _hex(value: int) -> str:
    return f"{value:016x}"


def _with_unrelated_image_hashes(records):
    """Whole-image hashes far from each other, so that only the crop hashes can match."""
    rng = random.Random(3)
    records["image_phash"] = [_hex(rng.getrandbits(64)) for _ in range(len(records))]
    return records


def test_train_copy_of_test_image_is_dropped_and_test_is_kept(make_records):
    base = 0x0F0F_F0F0_1234_ABCD
    records = make_records(
        [
            {"source": "cafe", "role": "test", "phash": _hex(base)},
            {"source": "guesswhat", "role": "guesswhat", "phash": _hex(base ^ 0b11)},
            {"source": "guesswhat", "role": "guesswhat", "phash": _hex(~base & (2**64 - 1))},
        ]
    )
    records = _with_unrelated_image_hashes(records)
    out, pairs = deduplicate(records, {"max_distance": 4})
    assert out["drop_reason"].fillna("kept").tolist() == ["kept", "duplicate_of_test", "kept"]
    assert "cafe:r0" in out.loc[1, "detail"]
    assert pairs.to_dict("records") == [
        {
            "image_id": "cafe:r0",
            "duplicate_image_id": "guesswhat:r1",
            "crop_distance": 2,
            "image_distance": None,
            "crosses_test": True,
        }
    ]


def test_among_training_duplicates_the_first_is_kept(make_records):
    base = 0x1111_2222_3333_4444
    records = make_records(
        [
            {"source": "affectnet", "phash": _hex(base)},
            {"source": "expw", "phash": _hex(base ^ 1)},
            {"source": "expw", "phash": _hex(base ^ 2)},
            {"source": "expw", "phash": None, "drop_reason": "no_face_found"},
        ]
    )
    records = _with_unrelated_image_hashes(records)
    out, _ = deduplicate(records, {"max_distance": 4})
    assert out["drop_reason"].fillna("kept").tolist() == [
        "kept",
        "duplicate",
        "duplicate",
        "no_face_found",
    ]
    assert "affectnet:r0" in out.loc[1, "detail"]


def test_test_images_are_never_dropped_even_when_duplicated(make_records):
    records = make_records(
        [
            {"source": "cafe", "role": "test", "phash": _hex(7)},
            {"source": "cafe", "role": "test", "phash": _hex(7)},
        ]
    )
    records = _with_unrelated_image_hashes(records)
    out, pairs = deduplicate(records, {"max_distance": 0})
    assert out["drop_reason"].isna().all()
    assert len(pairs) == 1


def test_whole_image_copy_is_found_when_the_crops_differ(make_records):
    """A re-encoded copy whose detector box moved: crop hashes far apart, image hashes equal."""
    records = make_records(
        [
            {"source": "cafe", "role": "test", "phash": _hex(0), "image_phash": _hex(0xABC)},
            {
                "source": "guesswhat",
                "role": "guesswhat",
                "phash": _hex(2**64 - 1),
                "image_phash": _hex(0xABC ^ 1),
            },
        ]
    )
    out, pairs = deduplicate(records, {"max_distance": 4})
    assert out["drop_reason"].fillna("kept").tolist() == ["kept", "duplicate_of_test"]
    assert "image hash 1 bits" in out.loc[1, "detail"]
    assert pairs.loc[0, "image_distance"] == 1 and pd.isna(pairs.loc[0, "crop_distance"])


def test_faces_of_one_photo_are_not_duplicates_of_each_other(make_records):
    records = make_records(
        [
            {
                "source": "expw",
                "record_id": "a.jpg#0",
                "image_path": "/x/a.jpg",
                "phash": _hex(1),
                "image_phash": _hex(5),
            },
            {
                "source": "expw",
                "record_id": "a.jpg#1",
                "image_path": "/x/a.jpg",
                "phash": _hex(2**64 - 1),
                "image_phash": _hex(5),
            },
        ]
    )
    out, pairs = deduplicate(records, {"max_distance": 4})
    assert out["drop_reason"].isna().all()
    assert pairs.empty
