import pytest

from pediatric_emotion.pipelines.label_harmonization.splits import assign_splits


@pytest.fixture
def records(make_records):
    rows = []
    for source in ("jaffe", "kdef"):
        for subject in range(10):
            for image in range(3):
                rows.append(
                    {
                        "source": source,
                        "record_id": f"{subject}_{image}",
                        "subject_id": f"{source}:{subject}",
                    }
                )
    rows += [{"source": "cafe", "role": "test", "record_id": f"c{n}"} for n in range(5)]
    rows += [{"source": "kdef", "record_id": "gone", "drop_reason": "no_face_found"}]
    return make_records(rows)


def test_no_subject_in_two_splits_and_fraction_respected(records):
    out = assign_splits(records, {"val_fraction": 0.2, "seed": 1})
    trainable = out[out["role"] != "test"].dropna(subset=["split"])
    assert (trainable.groupby("subject_id")["split"].nunique() == 1).all()
    val_subjects = trainable[trainable["split"] == "val"].groupby("source")["subject_id"].nunique()
    assert val_subjects.to_dict() == {"jaffe": 2, "kdef": 2}
    assert set(out.loc[out["role"] == "test", "split"]) == {"test"}
    assert out.loc[out["drop_reason"].notna(), "split"].isna().all()


def test_split_is_reproducible_and_depends_on_the_seed(records):
    first = assign_splits(records, {"val_fraction": 0.2, "seed": 1})["split"]
    again = assign_splits(records, {"val_fraction": 0.2, "seed": 1})["split"]
    other = assign_splits(records, {"val_fraction": 0.2, "seed": 2})["split"]
    assert first.equals(again)
    assert not first.equals(other)


def test_small_source_still_gets_one_validation_subject(make_records):
    records = make_records(
        [{"source": "tiny", "record_id": str(n), "subject_id": f"tiny:{n}"} for n in range(3)]
    )
    out = assign_splits(records, {"val_fraction": 0.1, "seed": 0})
    assert sorted(out["split"]) == ["train", "train", "val"]


def test_bad_fraction_is_refused(records):
    with pytest.raises(ValueError, match="val_fraction"):
        assign_splits(records, {"val_fraction": 1.0, "seed": 0})
