"""Bad inputs in their native layouts, built here, each with its outcome: counted under its reason
in the records and the report, or a clear error naming the file and the problem. No log line and
no error of any case carries image content (long runs of numbers)."""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from pediatric_emotion.config import ProjectConfigLoader
from pediatric_emotion.images import encode_image, image_to_pixels
from pediatric_emotion.pipelines.label_harmonization.adapters import SourceLayoutError
from pediatric_emotion.pipelines.label_harmonization.cropping import crop_faces
from pediatric_emotion.pipelines.label_harmonization.deduplication import deduplicate
from pediatric_emotion.pipelines.label_harmonization.manifest import build_manifest
from pediatric_emotion.pipelines.label_harmonization.sources import check_sources, read_sources
from pediatric_emotion.pipelines.label_harmonization.splits import assign_splits

EMOTIONS = ["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"]
LABEL_MAPS = {
    "folder": {"happy": "happy", "sad": "sad"},
    "cafe": {"happy": "happy", "sad": "sad"},
    "fer2013": {str(code): EMOTIONS[code] for code in range(7)},
}
FACE_CROP = {"size": 32, "margin": 0.2, "image_format": "png", "jpeg_quality": 95}
IMAGE_CONTENT = re.compile(r"(\d{1,3}[ ,]+){20,}")
LATIN1_NAME = os.fsdecode(b"caf\xe9.jpg")  # not UTF-8: Python sees a surrogate escape


def noise(seed: int, size: int = 48) -> np.ndarray:
    """A small RGB picture, different for each seed (so no two are near-duplicates)."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def write_picture(path: Path, seed: int, extension: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(noise(seed), extension or path.suffix))
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A small real PNG whose header (IHDR) claims ``width`` x ``height``: 1 KB on disk."""
    data = bytearray(encode_image(noise(3), ".png"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def source(fmt: str, root: Path, role: str = "train", **options) -> dict:
    return {
        "format": fmt,
        "path": str(root),
        "population": "child",
        "role": role,
        "face_box": "whole_image",
        "options": options,
    }


def harmonize(sources: dict, out: Path, **face_crop) -> dict[str, pd.DataFrame]:
    """The harmonization nodes in order; the manifest and both reports written as the catalog
    writes them (parquet, CSV), so a name that cannot be written fails here."""
    inventory = check_sources(sources, LABEL_MAPS, EMOTIONS)
    records = read_sources(inventory, sources, LABEL_MAPS)
    _, cropped = crop_faces(records, {}, {**FACE_CROP, **face_crop}, {"hash_size": 8})
    deduplicated, _ = deduplicate(cropped, {"hash_size": 8, "max_distance": 0})
    split = assign_splits(deduplicated, {"val_fraction": 0.2, "seed": 1})
    manifest, report, drops = build_manifest(split, EMOTIONS, inventory)
    out.mkdir(parents=True, exist_ok=True)
    manifest.to_parquet(out / "face_manifest.parquet")
    report.to_csv(out / "harmonization_report.csv", index=False)
    drops.to_csv(out / "harmonization_drops.csv", index=False)
    return {
        "manifest": pd.read_parquet(out / "face_manifest.parquet"),
        "report": pd.read_csv(out / "harmonization_report.csv"),
        "drops": pd.read_csv(out / "harmonization_drops.csv"),
    }


def counts(report: pd.DataFrame, name: str) -> dict[str, int]:
    rows = report[report["source"] == name]
    return dict(zip(rows["reason"], rows["count"], strict=True))


def assert_no_image_content(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    for text in [*texts, *(record.getMessage() for record in caplog.records)]:
        assert not IMAGE_CONTENT.search(text), text[:200]


@pytest.fixture(autouse=True)
def _no_image_content_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every case logs at INFO and up, and no line it logs carries image content."""
    caplog.set_level(logging.INFO, logger="pediatric_emotion")
    yield
    assert_no_image_content(caplog)


def test_a_file_name_that_is_not_utf8_is_kept_and_written_printably(tmp_path, caplog):
    root = tmp_path / "gw"
    write_picture(root / "happy" / LATIN1_NAME, 1)
    write_picture(root / "sad" / "ok.png", 2)
    out = harmonize({"gw": source("folder", root)}, tmp_path / "out")
    manifest = out["manifest"].set_index("record_id")
    assert counts(out["report"], "gw") == {"kept": 2}
    kept = manifest.loc["happy/caf\\xe9.jpg"]  # the undecodable byte as a backslash escape
    assert kept["image_path"].endswith("happy/caf\\xe9.jpg")
    assert kept["image_width"] == 48  # read from its real path
    assert_no_image_content(caplog)


def test_a_source_of_dangling_and_looping_links_is_reported_not_absent(tmp_path, caplog):
    annexed = tmp_path / "annexed"
    (annexed / "happy").mkdir(parents=True)
    for index in range(3):  # an unfetched git-annex copy: links to objects that are not there
        (annexed / "happy" / f"f{index}.jpg").symlink_to(
            tmp_path / ".git/annex/objects" / str(index)
        )
    loop = annexed / "sad" / "loop.png"
    loop.parent.mkdir()
    loop.symlink_to(loop)
    fine = tmp_path / "fine"
    write_picture(fine / "happy" / "a.png", 4)
    with caplog.at_level(logging.WARNING):
        out = harmonize(
            {"annexed": source("folder", annexed), "fine": source("folder", fine)}, tmp_path / "o"
        )
    assert counts(out["report"], "annexed") == {"kept": 0, "broken_link": 4}
    assert counts(out["report"], "fine") == {"kept": 1}
    drops = out["drops"].set_index("record_id")
    assert "broken symbolic link -> " in drops.loc["happy/f0.jpg", "detail"]
    assert ".git/annex/objects/0" in drops.loc["happy/f0.jpg", "detail"]
    assert "symbolic link loop" in drops.loc["sad/loop.png", "detail"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("annexed" in m and "no image kept" in m for m in warnings), warnings


def test_an_empty_source_is_a_report_row_and_a_warning(tmp_path, caplog):
    (tmp_path / "empty").mkdir()
    write_picture(tmp_path / "fine" / "happy" / "a.png", 5)
    sources = {
        "empty": source("folder", tmp_path / "empty"),
        "fine": source("folder", tmp_path / "fine"),
    }
    out = harmonize(sources, tmp_path / "o")
    assert counts(out["report"], "empty") == {"kept": 0}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("empty" in m and "0 records read" in m and str(tmp_path) in m for m in warnings)


def test_fer2013_without_its_header_row_names_the_file_and_shows_no_pixels(tmp_path, caplog):
    root = tmp_path / "fer"
    pixels = image_to_pixels(noise(6, 48))
    (root).mkdir()
    (root / "fer2013.csv").write_text(f"3,{pixels},Training\n0,{pixels},PublicTest\n")
    with pytest.raises(SourceLayoutError) as info:
        check_sources({"fer": source("fer2013", root)}, LABEL_MAPS, EMOTIONS)
    message = str(info.value)
    assert "fer2013.csv" in message and "'fer'" in message
    assert "the first row looks like data, not a header (3 fields)" in message
    assert_no_image_content(caplog, message)


def test_fer2013_pixel_out_of_range_is_a_malformed_row_with_its_line(tmp_path, caplog):
    root = tmp_path / "fer"
    pixels = image_to_pixels(noise(7, 48)).split()
    bad = " ".join(["300", *pixels[1:]])
    root.mkdir()
    (root / "fer2013.csv").write_text(
        f"emotion,pixels,Usage\n3,{' '.join(pixels)},Training\n4,{bad},Training\n"
    )
    out = harmonize({"fer": source("fer2013", root)}, tmp_path / "o")
    assert counts(out["report"], "fer") == {"kept": 1, "malformed_row": 1}
    detail = out["drops"]["detail"].iloc[0]
    assert "fer2013.csv line 3" in detail and "outside 0-255" in detail
    assert_no_image_content(caplog, detail)


def test_an_image_over_the_pixel_limit_is_dropped_before_decoding(tmp_path, caplog):
    root = tmp_path / "big"
    png_claiming(root / "happy" / "huge.png", 12000, 12000)  # 144 MP: 432 MB decoded
    png_claiming(root / "happy" / "bomb.png", 30000, 30000)  # over PIL's own bomb limit
    write_picture(root / "happy" / "small.png", 8)  # 48 x 48 = 2,304 pixels
    out = harmonize({"big": source("folder", root)}, tmp_path / "o")
    assert counts(out["report"], "big") == {"kept": 1, "image_too_large": 2}
    details = out["drops"].set_index("record_id")["detail"]
    assert "12000x12000" in details["happy/huge.png"]
    assert "limit of 50,000,000" in details["happy/huge.png"]
    assert "huge.png" in details["happy/huge.png"]
    assert "bomb.png" in details["happy/bomb.png"]
    small = harmonize({"big": source("folder", root)}, tmp_path / "o2", max_image_pixels=2000)
    assert counts(small["report"], "big") == {"kept": 0, "image_too_large": 3}
    assert_no_image_content(caplog)


def test_a_root_that_is_a_file_says_so(tmp_path):
    (tmp_path / "kdef.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(SourceLayoutError, match=r"'kdef'.*is a file, not a folder.*kdef\.zip"):
        check_sources({"kdef": source("folder", tmp_path / "kdef.zip")}, LABEL_MAPS, EMOTIONS)


def test_an_animated_gif_uses_its_first_frame_and_says_so(tmp_path, caplog):
    root = tmp_path / "gifs"
    (root / "happy").mkdir(parents=True)
    frames = [Image.fromarray(noise(seed)) for seed in (9, 10, 11)]
    frames[0].save(root / "happy" / "clip.gif", save_all=True, append_images=frames[1:])
    out = harmonize({"gifs": source("folder", root)}, tmp_path / "o")
    assert counts(out["report"], "gifs") == {"kept": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("clip.gif" in m and "3 frames" in m and "first" in m for m in warnings), warnings


def test_a_test_source_without_subjects_warns_once(tmp_path, caplog):
    root = tmp_path / "cafe"
    for index in range(3):
        write_picture(root / f"happy_{index}.png", 20 + index)
    harmonize({"cafe": source("cafe", root, role="test")}, tmp_path / "o")
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "own subject" in r.getMessage()
    ]
    assert len(warnings) == 1 and "cafe" in warnings[0] and "3 of 3" in warnings[0]


def test_a_duplicate_source_key_names_the_file_and_line(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "local").mkdir()
    parameters = tmp_path / "local" / "parameters_label_harmonization.yml"
    parameters.write_text(
        "sources:\n  kdef:\n    format: kdef\n  kdef:\n    format: jaffe\n", encoding="utf-8"
    )
    (tmp_path / "base" / "parameters.yml").write_text(yaml.safe_dump({"emotions": EMOTIONS}))
    loader = ProjectConfigLoader(
        conf_source=str(tmp_path), base_env="base", default_run_env="local"
    )
    with pytest.raises(ValueError) as info:
        loader["parameters"]
    message = str(info.value)
    assert str(parameters) in message
    assert "duplicate key kdef" in message and "line 4" in message
