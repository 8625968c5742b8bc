import random

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


def _hex(value: int) -> str:
    return f"{value:016x}"


def test_train_copy_of_test_image_is_dropped_and_test_is_kept(make_records):
    base = 0x0F0F_F0F0_1234_ABCD
    records = make_records(
        [
            {"source": "cafe", "role": "test", "phash": _hex(base)},
            {"source": "guesswhat", "role": "guesswhat", "phash": _hex(base ^ 0b11)},
            {"source": "guesswhat", "role": "guesswhat", "phash": _hex(~base & (2**64 - 1))},
        ]
    )
    out, pairs = deduplicate(records, {"max_distance": 4})
    assert out["drop_reason"].fillna("kept").tolist() == ["kept", "duplicate_of_test", "kept"]
    assert "cafe:r0" in out.loc[1, "detail"]
    assert pairs.to_dict("records") == [
        {
            "image_id": "cafe:r0",
            "duplicate_image_id": "guesswhat:r1",
            "distance": 2,
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
    out, pairs = deduplicate(records, {"max_distance": 0})
    assert out["drop_reason"].isna().all()
    assert len(pairs) == 1
