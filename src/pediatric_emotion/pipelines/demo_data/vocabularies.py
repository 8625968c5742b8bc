"""Label vocabularies and fixed names of the real data sets, as their files write them.

Each map goes from the expression the renderer draws (``faces.ALL_EXPRESSIONS``) to the set's own
code or word (docs/data_sets.md, /shared/DATASETS.md).
"""

from __future__ import annotations

from pediatric_emotion.native_layouts import FERPLUS_VOTE_COLUMNS

FER2013_CODES = {
    "anger": 0,
    "disgust": 1,
    "fear": 2,
    "happy": 3,
    "sad": 4,
    "surprise": 5,
    "neutral": 6,
}
FERPLUS_COLUMNS = FERPLUS_VOTE_COLUMNS  # one definition, shared with the reader
FERPLUS_WORDS = {
    "neutral": "neutral",
    "happy": "happiness",
    "surprise": "surprise",
    "sad": "sadness",
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "contempt": "contempt",
}
CKPLUS_CODES = {
    "neutral": 0,
    "anger": 1,
    "contempt": 2,
    "disgust": 3,
    "fear": 4,
    "happy": 5,
    "sad": 6,
    "surprise": 7,
}
JAFFE_CODES = {
    "anger": "AN",
    "disgust": "DI",
    "fear": "FE",
    "happy": "HA",
    "neutral": "NE",
    "sad": "SA",
    "surprise": "SU",
}
JAFFE_SUBJECTS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")
KDEF_CODES = {
    "fear": "AF",
    "anger": "AN",
    "disgust": "DI",
    "happy": "HA",
    "neutral": "NE",
    "sad": "SA",
    "surprise": "SU",
}
KDEF_ANGLES = {"FL": -78.0, "HL": -40.0, "S": 0.0, "HR": 40.0, "FR": 78.0}  # head yaw, degrees
RAFD_WORDS = {
    "anger": "angry",
    "contempt": "contemptuous",
    "disgust": "disgusted",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}
RAFD_ANGLES = {"000": 80.0, "045": 42.0, "090": 0.0, "135": -42.0, "180": -80.0}
RAFD_GAZES = {"frontal": (0.0, 0.0), "left": (-0.9, 0.0), "right": (0.9, 0.0)}
AFFECTNET_CODES = {
    "neutral": 0,
    "happy": 1,
    "sad": 2,
    "surprise": 3,
    "fear": 4,
    "disgust": 5,
    "anger": 6,
    "contempt": 7,
}
AFFECTNET_EXCLUDED = {"contempt": 7, "none": 8, "uncertain": 9, "no_face": 10}  # drop cases
AFFECTNET_COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
EXPW_CODES = FER2013_CODES
RAFDB_CODES = {
    "surprise": 1,
    "fear": 2,
    "disgust": 3,
    "happy": 4,
    "sad": 5,
    "anger": 6,
    "neutral": 7,
}
CAFE_WORDS = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprise",
}
CAFE_VARIANTS = {"disgust": ("tongue", "notongue"), "surprise": ("open",)}  # others: open, closed
CAFE_ETHNICITIES = {  # name -> skin tone range (0 lightest .. 1 darkest)
    "African American": (0.62, 1.0),
    "Asian": (0.08, 0.35),
    "Caucasian": (0.0, 0.25),
    "Latino": (0.22, 0.55),
    "South Asian": (0.4, 0.75),
}
CAFE_COLUMNS = ("file", "emotion", "subject", "ethnicity", "age", "sex", "mouth", "agreement")
# Demo-only columns after them: the planted case ("", head_tilt, hand_over_mouth), the head roll.
CAFE_PLANTED_COLUMNS = ("planted", "head_roll_deg")
GUESSWHAT_WORDS = {
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "fear": "scared",
    "disgust": "disgust",
    "anger": "mad",
    "neutral": "neutral",
}
NIMH_WORDS = {
    "fear": "fear",
    "anger": "anger",
    "happy": "happy",
    "sad": "sad",
    "neutral": "neutral",
}
NIMH_GAZES = ("direct", "averted")
DARTMOUTH_WORDS = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "anger": "angry",
    "fear": "afraid",
    "surprise": "surprised",
    "disgust": "disgusted",
    "contempt": "contempt",
}
DARTMOUTH_ANGLES = {"front": 0.0, "left": -30.0, "right": 30.0}
LIRIS_WORDS = {
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprise",
    "disgust": "disgust",
    "fear": "fear",
    "anger": "anger",
}
VALENCE_AROUSAL = {  # AffectNet-style (valence, arousal) at full intensity
    "neutral": (0.0, 0.0),
    "happy": (0.75, 0.45),
    "sad": (-0.65, -0.3),
    "surprise": (0.2, 0.75),
    "fear": (-0.6, 0.7),
    "disgust": (-0.65, 0.35),
    "anger": (-0.6, 0.65),
    "contempt": (-0.45, 0.25),
}
