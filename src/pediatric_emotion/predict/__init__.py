"""``pediatric-emotion predict``: classify the faces in pictures or video frames with a TFLite file.

Every step is the one the project uses elsewhere: the model and its preprocessing spec are read
with :func:`pediatric_emotion.datasets.load_tflite`; images are decoded by
:mod:`pediatric_emotion.images`; the face is found by :class:`pediatric_emotion.faces.FaceDetector`
(configured by the project's ``face_detection`` parameters when run inside the project) and
cropped by :func:`pediatric_emotion.faces.crop_detected_face` as the spec's ``face_crop`` says
(size, margin, eyes levelled where it records ``align: true``), then saved as PNG like the
training crops; the crops are fed to the LiteRT
interpreter by :func:`pediatric_emotion.modeling.tflite_runner.tflite_probabilities`,
exactly as evaluation feeds the test crops.

One row per face of every picture or sampled video frame (``face_index`` 0 is the face the
detector is most confident about, the one training would have kept), or one row saying that no
face was found or that the picture could not be read (or is over the pixel limit, checked from its
header before decoding), with the reason. Nothing about image content is logged. File names that
are not UTF-8 are read from their real path and written printably
(:func:`pediatric_emotion.images.printable`).

The command is split in five modules: :mod:`~pediatric_emotion.predict.inputs` (finding and
reading pictures and video frames), :mod:`~pediatric_emotion.predict.model` (the TFLite file with
its spec), :mod:`~pediatric_emotion.predict.predictor` (the detect-crop-classify loop),
:mod:`~pediatric_emotion.predict.outputs` (the rows, the annotated pictures,
predictions.csv/.json) and :mod:`~pediatric_emotion.predict.cli` (:func:`predict` and the
``predict`` command).
"""

from pediatric_emotion.predict.cli import predict, predict_command, project_parameters
from pediatric_emotion.predict.inputs import (
    VIDEO_SUFFIXES,
    Picture,
    PredictError,
    list_pictures,
    read_pictures,
    read_video,
    video_frame_count,
)
from pediatric_emotion.predict.model import Model, load_model
from pediatric_emotion.predict.outputs import BASE_COLUMNS, FORMATS, write_outputs
from pediatric_emotion.predict.predictor import CHUNK, ON_ERROR, Predictor

__all__ = [
    "BASE_COLUMNS",
    "CHUNK",
    "FORMATS",
    "ON_ERROR",
    "VIDEO_SUFFIXES",
    "Model",
    "Picture",
    "PredictError",
    "Predictor",
    "list_pictures",
    "load_model",
    "predict",
    "predict_command",
    "project_parameters",
    "read_pictures",
    "read_video",
    "video_frame_count",
    "write_outputs",
]
