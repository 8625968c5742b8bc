"""One writer per native layout (docs/data_sets.md): synthetic faces saved as the real sets do.

Every writer takes a ``SourceContext`` (the source's parameters, the shared look and its own random
generator) and the outputs of the sources written before it, and returns a ``SourceFiles``: the
files by path relative to the source's root, and the images another source may copy (CAFE images
leak into GuessWhat, AffectNet images are duplicated in ExpW). Each writer also plants the drop
cases its parameters ask for.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from pediatric_emotion.images import encode_image, image_to_pixels

from . import faces
from .context import (
    SourceContext,
    SourceFiles,
    WrittenImage,
    age_childness,
    balanced,
    choose,
    csv_bytes,
    gray,
    person,
    pick,
    random_pose,
    reencode,
    render_one,
    studio_scene,
    unique_ids,
    unreadable,
    wild_scene,
)
from .faces import EMOTIONS, Expression, Identity, PlacedFace
from .planted import PlantedCases
from .scenes import Scene, render
from .vocabularies import (
    AFFECTNET_CODES,
    AFFECTNET_COLUMNS,
    AFFECTNET_EXCLUDED,
    CAFE_COLUMNS,
    CAFE_ETHNICITIES,
    CAFE_PLANTED_COLUMNS,
    CAFE_VARIANTS,
    CAFE_WORDS,
    CKPLUS_CODES,
    DARTMOUTH_ANGLES,
    DARTMOUTH_WORDS,
    EXPW_CODES,
    FER2013_CODES,
    FERPLUS_COLUMNS,
    FERPLUS_WORDS,
    GUESSWHAT_WORDS,
    JAFFE_CODES,
    JAFFE_SUBJECTS,
    KDEF_ANGLES,
    KDEF_CODES,
    LIRIS_WORDS,
    NIMH_GAZES,
    NIMH_WORDS,
    RAFD_ANGLES,
    RAFD_GAZES,
    RAFD_WORDS,
    RAFDB_CODES,
    VALENCE_AROUSAL,
)

# ------------------------------------------------------------------------------------------------
# FER2013 + FER+


def _ferplus_votes(rng: np.random.Generator, winner: str, top: int) -> list[int]:
    """10 votes with ``top`` for ``winner`` and the rest spread so that no column ties it."""
    votes = dict.fromkeys(FERPLUS_COLUMNS, 0)
    votes[winner] = top
    others = [c for c in FERPLUS_COLUMNS if c not in (winner, "NF")]
    pool = list(rng.choice(others, size=3, replace=False))
    for _ in range(10 - top):
        candidates = [c for c in pool if votes[c] + 1 < top] or [
            c for c in others if votes[c] + 1 < top
        ]
        votes[pick(rng, candidates)] += 1
    return [votes[c] for c in FERPLUS_COLUMNS]


def _ferplus_tie(rng: np.random.Generator) -> tuple[list[int], str]:
    first, second = rng.choice(FERPLUS_COLUMNS[:7], size=2, replace=False)
    top = int(rng.integers(3, 6))
    votes = dict.fromkeys(FERPLUS_COLUMNS, 0)
    votes[str(first)] = votes[str(second)] = top
    rest = [c for c in FERPLUS_COLUMNS[:9] if c not in (first, second)]
    for _ in range(10 - 2 * top):
        votes[pick(rng, [c for c in rest if votes[c] + 1 < top])] += 1
    word = {v: k for k, v in FERPLUS_WORDS.items()}[str(first)]
    return [votes[c] for c in FERPLUS_COLUMNS], word


def write_fer2013(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``fer2013.csv`` (emotion, 48x48 gray pixels, Usage) and ``fer2013new.csv`` (FER+ votes)."""
    rng, look = ctx.rng, ctx.look
    n = ctx.count("rows")
    side = int(ctx.option("image_size"))
    usage_names = list(ctx.option("usage"))
    usage_p = np.asarray([float(ctx.option("usage")[k]) for k in usage_names])
    special: list[str] = []
    for key in (
        "ferplus_tie",
        "ferplus_contempt",
        "ferplus_unknown",
        "ferplus_not_face",
        "ferplus_blank_name",
        "wrong_pixel_count",
    ):
        special += [key] * ctx.drops(key)
    n = max(n, len(special))
    kinds = special + ["face"] * (n - len(special))
    kinds = [kinds[i] for i in rng.permutation(n)]
    emotions = iter(balanced(rng, EMOTIONS, n))
    fer_rows, plus_rows = [], []
    for index, kind in enumerate(kinds):
        emotion = next(emotions)
        usage = str(rng.choice(usage_names, p=usage_p / usage_p.sum()))
        intensity = ctx.intensity()
        if kind == "ferplus_tie":
            votes, emotion = _ferplus_tie(rng)
            intensity = float(rng.uniform(0.3, 0.6))
        elif kind == "ferplus_contempt":
            emotion = "contempt"
            votes = _ferplus_votes(rng, "contempt", int(rng.integers(5, 8)))
        elif kind == "ferplus_unknown":
            intensity = float(rng.uniform(0.15, 0.4))
            votes = _ferplus_votes(rng, "unknown", int(rng.integers(4, 7)))
        elif kind == "ferplus_not_face":
            votes = [0] * 9 + [10]
        else:
            votes = _ferplus_votes(rng, FERPLUS_WORDS[emotion], int(rng.integers(5, 11)))
        if kind == "ferplus_not_face":
            scene = wild_scene(ctx, look)
            image = render((side, side), [], scene).image
            code = int(rng.integers(0, 7))
        else:
            identity = person(ctx, child_share=0.1)
            pose = random_pose(ctx, look, (0.92, 1.08), centre_jitter=0.04, cy=0.52)
            image = render_one(
                (side, side),
                identity,
                Expression(emotion, intensity, pick(rng, (None, "open", "closed"))),
                pose,
                wild_scene(ctx, look),
            ).image
            code = FER2013_CODES.get(emotion, int(pick(rng, (0, 1, 6))))
        pixels = image_to_pixels(gray(image))
        if kind == "wrong_pixel_count":
            pixels = pixels.rsplit(" ", 1)[0]  # one value short: 2303 for 48x48
        fer_rows.append((code, pixels, usage))
        name = "" if kind == "ferplus_blank_name" else f"fer{index:07d}.png"
        plus_rows.append((usage, name, *votes))
    return SourceFiles(
        {
            "fer2013.csv": csv_bytes(("emotion", "pixels", "Usage"), fer_rows),
            "fer2013new.csv": csv_bytes(("Usage", "Image name", *FERPLUS_COLUMNS), plus_rows),
        }
    )


# ------------------------------------------------------------------------------------------------
# CK+


def write_ckplus(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``cohn-kanade-images/S005/001/S005_001_00000011.png`` sequences (neutral to peak) and
    ``Emotion/S005/001/S005_001_00000011_emotion.txt`` for the labelled ones."""
    rng, look = ctx.rng, ctx.look.studio()
    size = ctx.size()
    n_subjects = ctx.count("subjects")
    per_subject = ctx.count("sequences_per_subject")
    frames_low, frames_high = (int(v) for v in ctx.option("frames"))
    subjects = [f"S{v:03d}" for v in unique_ids(rng, n_subjects, 5, 999)]
    identities = {s: faces.random_identity(rng, 0.0) for s in subjects}
    labelled = [e for e in EMOTIONS if e != "neutral"]
    plan = [
        (s, e, True)
        for s, e in zip(
            [s for s in subjects for _ in range(per_subject)],
            balanced(rng, labelled, n_subjects * per_subject),
            strict=True,
        )
    ]
    plan += [
        (pick(rng, subjects), "contempt", True) for _ in range(ctx.drops("contempt_sequences"))
    ]
    plan += [
        (pick(rng, subjects), pick(rng, labelled), False)
        for _ in range(ctx.drops("unlabelled_sequences"))
    ]
    plan.sort(key=lambda item: item[0])
    files: dict[str, bytes] = {}
    sequence_numbers: dict[str, int] = {}
    for subject, emotion, has_label in plan:
        sequence_numbers[subject] = sequence_numbers.get(subject, 0) + 1
        sequence = f"{sequence_numbers[subject]:03d}"
        n_frames = int(rng.integers(frames_low, frames_high + 1))
        peak = ctx.intensity(low=0.7)
        pose = random_pose(ctx, look, (0.6, 0.72), centre_jitter=0.04)
        scene = studio_scene(ctx, (150, 150, 150), look)
        variant = pick(rng, (None, "open", "closed"))
        for k in range(n_frames):
            intensity = peak * (k / (n_frames - 1)) ** 1.2
            jittered = replace(
                pose,
                cx=pose.cx + float(rng.normal(0, 0.003)),
                cy=pose.cy + float(rng.normal(0, 0.003)),
            )
            frame_scene = replace(scene, seed=scene.seed + k)
            image = render_one(
                size,
                identities[subject],
                Expression(emotion, intensity, variant),
                jittered,
                frame_scene,
            ).image
            name = f"{subject}_{sequence}_{k + 1:08d}"
            files[f"cohn-kanade-images/{subject}/{sequence}/{name}.png"] = encode_image(
                gray(image), ".png"
            )
        if has_label:
            code = float(CKPLUS_CODES[emotion])
            files[f"Emotion/{subject}/{sequence}/{name}_emotion.txt"] = f"   {code:.7e}\n".encode(
                "ascii"
            )
    return SourceFiles(files)


# ------------------------------------------------------------------------------------------------
# JAFFE


def write_jaffe(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``KA.AN1.39.tiff``: gray TIFFs of Japanese women, subject, expression code + repeat, id."""
    rng, look = ctx.rng, ctx.look.studio()
    size = ctx.size()
    n_subjects = ctx.count("subjects")
    repeats = ctx.count("repeats")
    extra = [a + b for a in "ABCDEFGHIJ" for b in "XYZ"]
    subjects = list(JAFFE_SUBJECTS[:n_subjects]) + extra[: max(0, n_subjects - len(JAFFE_SUBJECTS))]
    plan = [(s, e, r) for s in subjects for e in EMOTIONS for r in range(1, repeats + 1)]
    plan = [plan[i] for i in rng.permutation(len(plan))]  # image ids run across subjects
    identities = {
        s: faces.random_identity(
            rng, 0.0, "F", float(rng.uniform(0.05, 0.3)), hair=("black", "dark_brown")
        )
        for s in subjects
    }
    files = {}
    for image_id, (subject, emotion, repeat) in enumerate(plan, start=1):
        pose = random_pose(ctx, look, (0.62, 0.74), centre_jitter=0.03, cy=0.52)
        scene = studio_scene(ctx, (170, 170, 170), look)
        image = render_one(
            size, identities[subject], Expression(emotion, ctx.intensity()), pose, scene
        ).image
        files[f"{subject}.{JAFFE_CODES[emotion]}{repeat}.{image_id}.tiff"] = encode_image(
            gray(image), ".tiff"
        )
    return SourceFiles(files)


# ------------------------------------------------------------------------------------------------
# KDEF


def write_kdef(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``AF01/AF01ANS.JPG``: session, sex, id, expression code, angle (all five angles)."""
    rng, look = ctx.rng, ctx.look.studio()
    size = ctx.size()
    n_subjects = ctx.count("subjects")
    sessions = [str(s) for s in ctx.option("sessions")]
    sexes = [("F", "M")[i % 2] for i in range(n_subjects)]
    ids = unique_ids(rng, n_subjects, 1, 35)
    files: dict[str, bytes] = {}
    straight: list[str] = []
    for sex, number in zip(sexes, ids, strict=True):
        identity = faces.random_identity(rng, 0.0, sex, float(rng.uniform(0.0, 0.3)))
        identity = replace(identity, clothing=(120.0, 120.0, 124.0))
        for session in sessions:
            folder = f"{session}{sex}{number:02d}"
            for emotion, code in KDEF_CODES.items():
                intensity = ctx.intensity()
                for angle, yaw in KDEF_ANGLES.items():
                    pose = random_pose(ctx, look, (0.5, 0.58), base_yaw=yaw, centre_jitter=0.03)
                    scene = studio_scene(ctx, (168, 176, 188), look)
                    image = render_one(
                        size, identity, Expression(emotion, intensity), pose, scene
                    ).image
                    path = f"{folder}/{folder}{code}{angle}.JPG"
                    files[path] = ctx.jpeg(image)
                    if angle == "S":
                        straight.append(path)
    for path in choose(rng, straight, ctx.drops("unreadable_images")):
        files[path] = unreadable(files[path])
    return SourceFiles(files)


# ------------------------------------------------------------------------------------------------
# RaFD


def write_rafd(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``Rafd090_01_Caucasian_female_angry_frontal.jpg``: angle, model, ethnicity or ``Kid``, sex,
    emotion, gaze. Angles 045/090/135 for every model and emotion, a few 000/180 profiles."""
    rng, look = ctx.rng, ctx.look.studio()
    size = ctx.size()
    n_models = ctx.count("models")
    n_kids = min(ctx.count("kid_models"), n_models)
    model_ids = unique_ids(rng, n_models, 1, 73)
    models = []
    for k, model in enumerate(model_ids):
        kid = k >= n_models - n_kids
        ethnicity = "Kid" if kid else ("Moroccan" if rng.random() < 0.3 else "Caucasian")
        sex = pick(rng, ("female", "male"))
        tone = float(rng.uniform(0.25, 0.5) if ethnicity == "Moroccan" else rng.uniform(0.0, 0.25))
        childness = float(rng.uniform(0.5, 0.9)) if kid else 0.0
        identity = faces.random_identity(rng, childness, sex[0].upper(), tone)
        models.append(
            (f"{model:02d}", ethnicity, sex, replace(identity, clothing=(28.0, 28.0, 30.0)))
        )
    plan = [(m, e, a) for m in models for e in RAFD_WORDS for a in ("045", "090", "135")]
    plan += [
        (pick(rng, models), pick(rng, list(RAFD_WORDS)), pick(rng, ("000", "180")))
        for _ in range(ctx.drops("profile_images"))
    ]
    files = {}
    for (model, ethnicity, sex, identity), emotion, angle in plan:
        gaze = pick(rng, list(RAFD_GAZES))
        pose = random_pose(ctx, look, (0.5, 0.58), base_yaw=RAFD_ANGLES[angle], centre_jitter=0.03)
        scene = studio_scene(ctx, (238, 238, 236), look, jitter=3.0)
        expression = Expression(emotion, ctx.intensity(), gaze=RAFD_GAZES[gaze])
        image = render_one(size, identity, expression, pose, scene).image
        name = f"Rafd{angle}_{model}_{ethnicity}_{sex}_{RAFD_WORDS[emotion]}_{gaze}.jpg"
        files[name] = ctx.jpeg(image)
    return SourceFiles(files)


# ------------------------------------------------------------------------------------------------
# AffectNet


def _landmarks(box: tuple[int, int, int, int]) -> str:
    """68 approximate landmark points inside a face box, as AffectNet writes them (x;y;x;y...)."""
    x, y, w, h = box
    t = np.linspace(0, math.pi, 17)
    jaw = np.stack([0.5 - 0.48 * np.cos(t), 0.4 + 0.58 * np.sin(t)], 1)
    brows = np.concatenate(
        [
            np.stack(
                [np.linspace(a, a + 0.24, 5), 0.3 - 0.04 * np.sin(np.linspace(0, math.pi, 5))], 1
            )
            for a in (0.18, 0.58)
        ]
    )
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.38, 0.58, 4)], 1)
    nostrils = np.stack([np.linspace(0.4, 0.6, 5), np.full(5, 0.64)], 1)
    s = np.linspace(0, 2 * math.pi, 6, endpoint=False)
    eyes = np.concatenate(
        [np.stack([c - 0.08 * np.cos(s), 0.42 - 0.035 * np.sin(s)], 1) for c in (0.32, 0.68)]
    )
    s = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    outer = np.stack([0.5 - 0.16 * np.cos(s), 0.8 - 0.06 * np.sin(s)], 1)
    s = np.linspace(0, 2 * math.pi, 8, endpoint=False)
    inner = np.stack([0.5 - 0.1 * np.cos(s), 0.8 - 0.025 * np.sin(s)], 1)
    points = np.concatenate([jaw, brows, bridge, nostrils, eyes, outer, inner]) * (w, h) + (x, y)
    return ";".join(f"{v:.2f}" for v in points.reshape(-1))


def _valence_arousal(rng: np.random.Generator, emotion: str, intensity: float) -> tuple[str, str]:
    valence, arousal = VALENCE_AROUSAL[emotion]
    v = float(np.clip(valence * intensity + rng.normal(0, 0.08), -1, 1))
    a = float(np.clip(arousal * intensity + rng.normal(0, 0.08), -1, 1))
    return f"{v:.6f}", f"{a:.6f}"


def write_affectnet(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``training.csv`` / ``validation.csv`` (face boxes, expression 0-10) and
    ``Manually_Annotated_Images/<subdir>/<hash>.jpg``."""
    rng, look = ctx.rng, ctx.look
    low, high = (int(v) for v in ctx.option("side_range"))
    n_subdirs = int(ctx.option("subdirectories"))
    plan: list[tuple[str, str]] = []  # (csv file, kind)
    for csv_name, key in (("training.csv", "training"), ("validation.csv", "validation")):
        plan += [(csv_name, e) for e in balanced(rng, EMOTIONS, ctx.count(key))]
    for kind, key in (
        ("contempt", "contempt"),
        ("none", "none"),
        ("uncertain", "uncertain"),
        ("no_face", "no_face"),
        ("malformed_box", "malformed_box"),
        ("missing_image", "missing_image"),
    ):
        plan += [("training.csv", kind)] * ctx.drops(key)
    rows: dict[str, list[tuple[Any, ...]]] = {"training.csv": [], "validation.csv": []}
    files: dict[str, bytes] = {}
    shared: list[WrittenImage] = []
    for index, (csv_name, kind) in enumerate(plan):
        digest = hashlib.sha224(f"{ctx.name}:{index}".encode()).hexdigest()
        sub_path = f"{int(rng.integers(1, n_subdirs + 1))}/{digest}.jpg"
        size = (int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
        scene = wild_scene(ctx, look)
        emotion, intensity = kind, ctx.intensity()
        if kind in ("none", "uncertain"):  # a face with a weak, unclear expression
            emotion, intensity = pick(rng, EMOTIONS), float(rng.uniform(0.1, 0.35))
        elif kind in ("malformed_box", "missing_image", "no_face"):
            emotion = pick(rng, EMOTIONS)
        if kind == "no_face":
            rendered = render(size, [], scene)
            w, h = int(size[0] * rng.uniform(0.3, 0.6)), int(size[1] * rng.uniform(0.3, 0.6))
            box = (int(rng.integers(0, size[0] - w)), int(rng.integers(0, size[1] - h)), w, h)
        else:
            expression = Expression(emotion, intensity, pick(rng, (None, "open", "closed")))
            pose = random_pose(ctx, look, (0.4, 0.62), centre_jitter=0.08)
            rendered = render_one(size, person(ctx, child_share=0.08), expression, pose, scene)
            box = rendered.boxes[0]
        code = AFFECTNET_EXCLUDED.get(kind, AFFECTNET_CODES[emotion])
        if kind in ("uncertain", "no_face"):  # AffectNet writes -2 where it has no valence
            valence, arousal = "-2", "-2"
        else:
            valence, arousal = _valence_arousal(rng, emotion, intensity)
        face_box: list[Any] = list(box)
        if kind == "malformed_box":
            face_box[2] = f"{box[2]}px"  # not a number
        rows[csv_name].append((sub_path, *face_box, _landmarks(box), code, valence, arousal))
        quality = ctx.quality()
        data = ctx.jpeg(rendered.image, quality)
        if kind != "missing_image":
            files[f"Manually_Annotated_Images/{sub_path}"] = data
        if kind in EMOTIONS:
            path = f"Manually_Annotated_Images/{sub_path}"
            shared.append(WrittenImage(path, data, kind, quality, box))
    for csv_name, csv_rows in rows.items():
        order = rng.permutation(len(csv_rows))
        files[csv_name] = csv_bytes(AFFECTNET_COLUMNS, [csv_rows[i] for i in order])
    return SourceFiles(files, shared)


def _expw_line(
    name: str, face_id: int, box: tuple[int, int, int, int], confidence: float, label: int
) -> str:
    x, y, w, h = box
    return f"{name} {face_id} {y} {x} {x + w} {y + h} {confidence:.6f} {label}"


def write_expw(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``label/label.lst`` (``image face_id top left right bottom confidence label``, one line per
    face) and ``image/origin/*.jpg``; some images hold two faces."""
    rng, look = ctx.rng, ctx.look
    low, high = (int(v) for v in ctx.option("side_range"))
    n_images = ctx.count("images")
    share = float(ctx.option("two_face_share"))
    n_two = min(n_images, max(1, round(share * n_images))) if share > 0 else 0
    two_faces = set(choose(rng, range(n_images), n_two))
    lines: list[str] = []
    files: dict[str, bytes] = {}
    emotions = iter(balanced(rng, EMOTIONS, 2 * n_images))
    for index in range(n_images):
        name = f"expw_{index + 1:05d}.jpg"
        scene = wild_scene(ctx, look)
        if index in two_faces:
            size = (int(rng.integers(max(low, 200), high + 1)), int(rng.integers(low, low + 40)))
            placed = []
            for cx in (0.28, 0.72):
                pose = replace(
                    random_pose(ctx, look, (0.38, 0.48), centre_jitter=0.03),
                    cx=cx + float(rng.uniform(-0.03, 0.03)),
                )
                placed.append(
                    PlacedFace(person(ctx, 0.1), Expression(next(emotions), ctx.intensity()), pose)
                )
        else:
            size = (int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
            pose = random_pose(ctx, look, (0.4, 0.62), centre_jitter=0.08)
            placed = [
                PlacedFace(
                    person(ctx, 0.1),
                    Expression(
                        next(emotions), ctx.intensity(), pick(rng, (None, "open", "closed"))
                    ),
                    pose,
                )
            ]
        rendered = render(size, placed, scene)
        files[f"image/origin/{name}"] = ctx.jpeg(rendered.image)
        for face_id, (face, box) in enumerate(zip(placed, rendered.boxes, strict=True)):
            confidence = float(rng.uniform(30, 99))
            lines.append(
                _expw_line(name, face_id, box, confidence, EXPW_CODES[face.expression.emotion])
            )
    donors = choose(
        rng,
        upstream["affectnet"].shared if "affectnet" in upstream else [],
        ctx.drops("affectnet_duplicates"),
    )
    for k, donor in enumerate(donors):
        name = f"expw_{n_images + k + 1:05d}.jpg"
        files[f"image/origin/{name}"] = reencode(ctx, donor)
        lines.append(
            _expw_line(name, 0, donor.box, float(rng.uniform(30, 99)), EXPW_CODES[donor.emotion])
        )
    for _ in range(ctx.drops("too_few_fields")):
        line = pick(rng, lines).split()
        position = int(rng.integers(0, len(lines) + 1))
        lines.insert(position, " ".join(line[:5]))  # image, face id, top, left, right
    files["label/label.lst"] = ("\n".join(lines) + "\n").encode("utf-8")
    return SourceFiles(files)


# ------------------------------------------------------------------------------------------------
# RAF-DB


def write_rafdb(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``EmoLabel/list_patition_label.txt`` (``train_00001.jpg 5``) and aligned 100x100 faces
    ``Image/aligned/train_00001_aligned.jpg``."""
    rng, look = ctx.rng, ctx.look
    side = int(ctx.option("image_size"))
    aligned = replace(look, roll=min(look.roll, 4.0))
    lines, files = [], {}
    for split, digits in (("train", 5), ("test", 4)):
        for k, emotion in enumerate(balanced(rng, EMOTIONS, ctx.count(split)), start=1):
            pose = random_pose(ctx, aligned, (0.8, 0.9), centre_jitter=0.02, cy=0.53)
            expression = Expression(emotion, ctx.intensity(), pick(rng, (None, "open", "closed")))
            image = render_one(
                (side, side), person(ctx, 0.12), expression, pose, wild_scene(ctx, look)
            ).image
            stem = f"{split}_{k:0{digits}d}"
            files[f"Image/aligned/{stem}_aligned.jpg"] = ctx.jpeg(image)
            lines.append(f"{stem}.jpg {RAFDB_CODES[emotion]}")
    files["EmoLabel/list_patition_label.txt"] = ("\n".join(lines) + "\n").encode("utf-8")
    return SourceFiles(files)


# ------------------------------------------------------------------------------------------------
# CAFE (the children's test set)


def write_cafe(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``images/<emotion>/<subject>_<emotion>_<variant>.jpg`` and ``cafe_metadata.csv``, whose
    last columns record the planted cases (``planted``: head_tilt, hand_over_mouth or blank) and
    every picture's head roll in degrees (``head_roll_deg``, +: clockwise in the picture)."""
    rng, look = ctx.rng, ctx.look.studio()
    planted = PlantedCases.from_params(ctx.params.get("planted"))
    size = ctx.size()
    n_subjects = ctx.count("subjects")
    second_variant = float(ctx.option("second_variant_share"))
    ethnicities = list(CAFE_ETHNICITIES)
    shots: list[tuple[PlacedFace, Scene, str, int, tuple[Any, ...]]] = []
    for subject_number in unique_ids(rng, n_subjects, 1, 999):
        subject = f"c{subject_number:03d}"
        ethnicity = pick(rng, ethnicities)
        age = int(rng.integers(2, 9))
        sex = pick(rng, ("F", "M"))
        identity = faces.random_identity(
            rng, age_childness(age), sex, float(rng.uniform(*CAFE_ETHNICITIES[ethnicity]))
        )
        identity = replace(identity, clothing=(236.0, 236.0, 232.0))
        for emotion, word in CAFE_WORDS.items():
            variants = list(CAFE_VARIANTS.get(emotion, ("open", "closed")))
            first = variants.pop(int(rng.integers(0, len(variants))))
            chosen = [first] + ([variants[0]] if variants and rng.random() < second_variant else [])
            for variant in chosen:  # the draws of the main stream, in the order they always had
                intensity = ctx.intensity()
                pose = random_pose(ctx, look, (0.5, 0.62), centre_jitter=0.04)
                scene = studio_scene(ctx, (228, 226, 218), look)
                face = PlacedFace(identity, Expression(emotion, intensity, variant), pose)
                path = f"images/{word}/{subject}_{word}_{variant}.jpg"
                quality = ctx.quality()
                agreement = float(np.clip(0.22 + 0.72 * intensity + rng.normal(0, 0.12), 0, 1))
                mouth = {"tongue": "open", "notongue": "closed"}.get(variant, variant)
                row = (path, word, subject, ethnicity, age, sex, mouth, f"{agreement:.2f}")
                shots.append((face, scene, path, quality, row))
    plantings = planted.assign(ctx.side_rng("planted"), len(shots))
    files: dict[str, bytes] = {}
    shared: list[WrittenImage] = []
    rows = []
    for (drawn, scene, path, quality, row), planting in zip(shots, plantings, strict=True):
        face = planting.apply(drawn)
        data = ctx.jpeg(render(size, [face], scene).image, quality)
        files[path] = data
        shared.append(WrittenImage(path, data, face.expression.emotion, quality))
        rows.append((*row, planting.kind, f"{round(face.pose.roll, 1) + 0.0:.1f}"))  # no -0.0
    files["cafe_metadata.csv"] = csv_bytes(CAFE_COLUMNS + CAFE_PLANTED_COLUMNS, rows)
    return SourceFiles(files, shared)


# ------------------------------------------------------------------------------------------------
# GuessWhat (children playing the app)


def write_guesswhat(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``<label>/<session>_f<frame:04d>.jpg`` landscape phone frames, one session per child; an
    ``unknown`` folder, frames without a face and copies of CAFE test images."""
    rng, look = ctx.rng, replace(ctx.look, noise=ctx.look.noise * 1.3, blur=ctx.look.blur * 1.4)
    size = ctx.size()
    n_sessions = ctx.count("sessions")
    per_session = ctx.count("frames_per_session")
    sessions = []
    for number in unique_ids(rng, n_sessions, 1000, 9999):
        age = float(rng.uniform(3, 12))
        identity = faces.random_identity(rng, age_childness(age))
        room = wild_scene(ctx, look)
        sessions.append((f"gw{number}", identity, room))
    files: dict[str, bytes] = {}
    next_frame = {name: 1 for name, _, _ in sessions}

    def frame_path(folder: str, session: str) -> str:
        next_frame[session] += int(rng.integers(1, 40))
        return f"{folder}/{session}_f{next_frame[session]:04d}.jpg"

    def render_frame(
        identity: Identity, room: Scene, emotion: str | None, intensity: float
    ) -> np.ndarray:
        scene = replace(
            room,
            seed=int(rng.integers(0, 2**31 - 1)),
            backdrop_seed=room.seed,
            light_strength=float(rng.uniform(0, look.light)),
            blur=float(rng.uniform(0, look.blur)),
            noise=float(rng.uniform(0, look.noise)),
        )
        if emotion is None:
            return render(size, [], scene).image
        pose = random_pose(ctx, look, (0.42, 0.7), centre_jitter=0.12)
        return render_one(size, identity, Expression(emotion, intensity), pose, scene).image

    for name, identity, room in sessions:
        for emotion in balanced(rng, EMOTIONS, per_session):
            image = render_frame(identity, room, emotion, ctx.intensity())
            files[frame_path(GUESSWHAT_WORDS[emotion], name)] = ctx.jpeg(image)
    for _ in range(ctx.drops("no_face_frames")):
        name, identity, room = pick(rng, sessions)
        folder = GUESSWHAT_WORDS[pick(rng, EMOTIONS)]
        files[frame_path(folder, name)] = ctx.jpeg(render_frame(identity, room, None, 0.0))
    for _ in range(ctx.drops("unknown_frames")):
        name, identity, room = pick(rng, sessions)
        image = render_frame(identity, room, pick(rng, EMOTIONS), float(rng.uniform(0.1, 0.4)))
        files[frame_path("unknown", name)] = ctx.jpeg(image)
    cafe = upstream["cafe"].shared if "cafe" in upstream else []
    for donor in choose(rng, cafe, ctx.drops("cafe_copies")):
        name = pick(rng, sessions)[0]
        files[frame_path(GUESSWHAT_WORDS[donor.emotion], name)] = reencode(ctx, donor)
    return SourceFiles(files)


# ------------------------------------------------------------------------------------------------
# NIMH-ChEFS, Dartmouth, LIRIS-CSE (children)


def _children_metadata_row(
    path: str, word: str, subject: str, age: int, sex: str, **extra: str
) -> dict[str, Any]:
    return {"file": path, "emotion": word, "subject": subject, "age": age, "sex": sex, **extra}


def write_nimh_chefs(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``<subject>_<emotion>_<direct|averted>.jpg`` (children 10-17) and
    ``nimh_chefs_metadata.csv``."""
    rng, look = ctx.rng, ctx.look.studio()
    size = ctx.size()
    files, rows = {}, []
    for number in unique_ids(rng, ctx.count("subjects"), 1, 999):
        subject = f"ch{number:03d}"
        age = int(rng.integers(10, 18))
        sex = pick(rng, ("F", "M"))
        identity = faces.random_identity(rng, age_childness(age), sex)
        for emotion, word in NIMH_WORDS.items():
            for gaze in NIMH_GAZES:  # separate photos: the pose and intensity differ a little
                side = float(pick(rng, (-1.0, 1.0)))
                gx, yaw = (0.0, 0.0) if gaze == "direct" else (0.95 * side, 8.0 * side)
                pose = random_pose(ctx, look, (0.52, 0.62), base_yaw=yaw, centre_jitter=0.03)
                scene = studio_scene(ctx, (196, 200, 206), look)
                expression = Expression(emotion, ctx.intensity(), gaze=(gx, 0.0))
                image = render_one(size, identity, expression, pose, scene).image
                path = f"{subject}_{word}_{gaze}.jpg"
                files[path] = ctx.jpeg(image)
                rows.append(_children_metadata_row(path, word, subject, age, sex, gaze=gaze))
    files["nimh_chefs_metadata.csv"] = csv_bytes(
        ("file", "emotion", "subject", "age", "sex", "gaze"), [list(r.values()) for r in rows]
    )
    return SourceFiles(files)


def write_dartmouth(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``<subject>_<expression>_<angle>.jpg`` (children 6-16, 8 expressions incl. contempt,
    front and half-turned views) and ``dartmouth_metadata.csv``."""
    rng, look = ctx.rng, ctx.look.studio()
    size = ctx.size()
    files, rows = {}, []
    for number in unique_ids(rng, ctx.count("subjects"), 1, 99):
        subject = f"dm{number:02d}"
        age = int(rng.integers(6, 17))
        sex = pick(rng, ("F", "M"))
        identity = faces.random_identity(rng, age_childness(age), sex, float(rng.uniform(0.0, 0.3)))
        identity = replace(identity, clothing=(22.0, 22.0, 24.0))
        for emotion, word in DARTMOUTH_WORDS.items():
            intensity = ctx.intensity()
            for angle in ("front", pick(rng, ("left", "right"))):
                pose = random_pose(
                    ctx, look, (0.52, 0.62), base_yaw=DARTMOUTH_ANGLES[angle], centre_jitter=0.03
                )
                scene = studio_scene(ctx, (26, 26, 28), look, jitter=3.0)
                image = render_one(
                    size, identity, Expression(emotion, intensity), pose, scene
                ).image
                path = f"{subject}_{word}_{angle}.jpg"
                files[path] = ctx.jpeg(image)
                rows.append(_children_metadata_row(path, word, subject, age, sex, angle=angle))
    files["dartmouth_metadata.csv"] = csv_bytes(
        ("file", "emotion", "subject", "age", "sex", "angle"), [list(r.values()) for r in rows]
    )
    return SourceFiles(files)


def write_liris_cse(ctx: SourceContext, upstream: Mapping[str, SourceFiles]) -> SourceFiles:
    """``<expression>/<child>_clip<NN>/<frame:04d>.jpg``: frames of short clips whose expression
    ramps up from nearly neutral (children 6-12, at home)."""
    rng, look = ctx.rng, ctx.look
    size = ctx.size()
    children = []
    for number in range(1, ctx.count("children") + 1):
        age = float(rng.uniform(6, 12))
        children.append(
            (
                f"child{number:02d}",
                faces.random_identity(rng, age_childness(age)),
                wild_scene(ctx, look),
            )
        )
    clip_numbers: dict[str, int] = {}
    files = {}
    n_frames = int(ctx.option("frames_per_clip"))
    for emotion in balanced(rng, list(LIRIS_WORDS), ctx.count("clips")):
        name, identity, room = pick(rng, children)
        clip_numbers[name] = clip_numbers.get(name, 0) + 1
        clip = f"{name}_clip{clip_numbers[name]:02d}"
        peak = ctx.intensity(low=0.6)
        pose = random_pose(ctx, look, (0.45, 0.65), centre_jitter=0.1)
        for k in range(n_frames):
            intensity = peak * (0.15 + 0.85 * k / max(n_frames - 1, 1))
            moved = replace(
                pose,
                cx=pose.cx + float(rng.normal(0, 0.01)),
                roll=pose.roll + float(rng.normal(0, 1.0)),
            )
            scene = replace(room, seed=int(rng.integers(0, 2**31 - 1)), backdrop_seed=room.seed)
            image = render_one(size, identity, Expression(emotion, intensity), moved, scene).image
            files[f"{LIRIS_WORDS[emotion]}/{clip}/{k + 1:04d}.jpg"] = ctx.jpeg(image)
    return SourceFiles(files)


# Writers in the order they run: CAFE before GuessWhat, AffectNet before ExpW (they copy images).
Writer = Callable[[SourceContext, Mapping[str, SourceFiles]], SourceFiles]
WRITERS: dict[str, Writer] = {
    "fer2013": write_fer2013,
    "ckplus": write_ckplus,
    "jaffe": write_jaffe,
    "kdef": write_kdef,
    "rafd": write_rafd,
    "affectnet": write_affectnet,
    "expw": write_expw,
    "rafdb": write_rafdb,
    "cafe": write_cafe,
    "guesswhat": write_guesswhat,
    "nimh_chefs": write_nimh_chefs,
    "dartmouth": write_dartmouth,
    "liris_cse": write_liris_cse,
}
