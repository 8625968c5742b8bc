"""Planted robustness cases of the CAFE-like test set (``sources.cafe.planted``): heads rolled
far beyond the studio's small roll, and a hand held over the mouth.

They serve the robustness sweep (camera corruptions over the test set) and the face-alignment
benchmark (eyes levelled from BlazeFace's eye keypoints). Which pictures are planted, and how, is
drawn from a generator of its own (``SourceContext.side_rng("planted")``), so the source's main
random stream, and with it every picture that is not planted, stays as it was without them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from numbers import Real
from typing import Any

import numpy as np

from .faces import Hand, PlacedFace

HEAD_TILT = "head_tilt"
HAND_OVER_MOUTH = "hand_over_mouth"
PLANTED_KINDS = ("", HEAD_TILT, HAND_OVER_MOUTH)  # "" = not planted
MAX_TILT_DEG = 90.0  # a roll, not a flip
HAND_ANGLE_DEG = 12.0  # fingers tilted within +-this from level
HAND_SIZE = (0.9, 1.1)  # hand size multiplier range
WHERE = "demo_data.sources.cafe.planted"


@dataclass(frozen=True)
class Planting:
    """What is planted in one picture: ``kind`` (a PLANTED_KINDS value), the head's roll in
    degrees for a head tilt, the hand for a hand over the mouth."""

    kind: str = ""
    roll: float | None = None
    hand: Hand | None = None

    def apply(self, face: PlacedFace) -> PlacedFace:
        """The face with this case planted: the head rolled on a neck that keeps the face's
        own (small) roll, or a hand over the mouth; unchanged when nothing is planted."""
        if self.roll is not None:
            face = replace(face, pose=replace(face.pose, roll=self.roll, body_roll=face.pose.roll))
        if self.hand is not None:
            face = replace(face, hand=self.hand)
        return face


NOT_PLANTED = Planting()


def _share(params: Mapping[str, Any], key: str, where: str) -> float:
    value = params.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{where}.{key} must be a number in [0, 1], got {value!r}")
    return float(value)


def _tilt_range(params: Mapping[str, Any], where: str) -> tuple[float, float]:
    value = params.get("tilt_degrees", (12.0, 30.0))
    problem = f"{where}.tilt_degrees must be [min, max] with 0 <= min <= max <= {MAX_TILT_DEG:g}"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{problem}, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, Real) for v in value):
        raise ValueError(f"{problem}, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not (0.0 <= low <= high <= MAX_TILT_DEG) or not math.isfinite(high):
        raise ValueError(f"{problem}, got {value!r}")
    return low, high


def _rounded(share: float, n: int) -> int:
    """``share`` of ``n``, rounded half up."""
    return int(math.floor(share * n + 0.5))


@dataclass(frozen=True)
class PlantedCases:
    """Shares of the pictures with a tilted head and with a hand over the mouth (disjoint), and
    the range of the tilt's magnitude (either sign)."""

    head_tilt_share: float = 0.0
    tilt_degrees: tuple[float, float] = (12.0, 30.0)
    hand_over_mouth_share: float = 0.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = WHERE) -> PlantedCases:
        """Build from the ``planted`` parameters (None or absent: nothing planted); a bad value
        raises a ValueError naming its key."""
        if params is None:
            return cls()
        if not isinstance(params, Mapping):
            raise ValueError(f"{where} must be a mapping, got {params!r}")
        unknown = sorted(set(params) - {"head_tilt_share", "tilt_degrees", "hand_over_mouth_share"})
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {unknown}; known: head_tilt_share, tilt_degrees, "
                "hand_over_mouth_share"
            )
        tilt, hand = (
            _share(params, "head_tilt_share", where),
            _share(params, "hand_over_mouth_share", where),
        )
        if tilt + hand > 1.0:
            raise ValueError(
                f"{where}.head_tilt_share + {where}.hand_over_mouth_share must be at most 1 "
                f"(a picture gets one case at most), got {tilt} + {hand}"
            )
        return cls(tilt, _tilt_range(params, where), hand)

    def counts(self, n: int) -> tuple[int, int]:
        """How many of ``n`` pictures get a head tilt and a hand over the mouth (rounded)."""
        tilt = _rounded(self.head_tilt_share, n)
        return tilt, min(_rounded(self.hand_over_mouth_share, n), n - tilt)

    def assign(self, rng: np.random.Generator, n: int) -> list[Planting]:
        """One ``Planting`` per picture, in order: which pictures (uniformly at random), the
        tilt (magnitude uniform in ``tilt_degrees``, either sign) and the hand (side, angle,
        size), all drawn from ``rng``."""
        n_tilt, n_hand = self.counts(n)
        order = rng.permutation(n)
        tilted, covered = (
            set(order[:n_tilt].tolist()),
            set(order[n_tilt : n_tilt + n_hand].tolist()),
        )
        low, high = self.tilt_degrees
        out: list[Planting] = []
        for index in range(n):
            if index in tilted:
                sign = 1.0 if rng.random() < 0.5 else -1.0
                out.append(Planting(HEAD_TILT, roll=sign * float(rng.uniform(low, high))))
            elif index in covered:
                hand = Hand(
                    side=1 if rng.random() < 0.5 else -1,
                    angle=float(rng.uniform(-HAND_ANGLE_DEG, HAND_ANGLE_DEG)),
                    size=float(rng.uniform(*HAND_SIZE)),
                )
                out.append(Planting(HAND_OVER_MOUTH, hand=hand))
            else:
                out.append(NOT_PLANTED)
        return out
