"""Records frames as read_sources builds them, for tests of the later harmonization stages."""

import pandas as pd
import pytest

from pediatric_emotion.harmonized_crops import DIGEST_COLUMN
from pediatric_emotion.pipelines.label_harmonization.cropping import CROP_COLUMNS
from pediatric_emotion.pipelines.label_harmonization.sources import RECORD_COLUMNS


@pytest.fixture
def make_records():
    def _make(rows: list[dict]) -> pd.DataFrame:
        full = []
        for number, row in enumerate(rows):
            record = dict.fromkeys([*RECORD_COLUMNS, *CROP_COLUMNS, DIGEST_COLUMN])
            record.update(
                {
                    "record_id": f"r{number}",
                    "population": "adult",
                    "role": "train",
                    "face_box": "detect",
                    "emotion": "happy",
                    "original_label": "happy",
                }
            )
            record.update(row)
            record.setdefault("source", "src")
            record["image_id"] = f"{record['source']}:{record['record_id']}"
            if record.get("subject_id") is None:
                record["subject_id"] = f"{record['source']}:{record['record_id']}"
            full.append(record)
        return pd.DataFrame(full, columns=[*RECORD_COLUMNS, *CROP_COLUMNS, DIGEST_COLUMN])

    return _make
