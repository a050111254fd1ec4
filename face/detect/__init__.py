"""Face detector front-ends for raw photos: boxes, five landmarks and scores.

* :class:`CsvLandmarks` -- landmarks (and optionally boxes) someone already has, from CSV files; always
  available.
* :class:`MTCNNDetector` -- MTCNN from ``facenet-pytorch`` (the optional extra ``detect``; its weights ship
  in the wheel). Importing :mod:`face.detect` does not import it; constructing one does, and says how to
  install it when it is missing.

Every front-end implements :meth:`FaceDetector.detect` and returns one :class:`Detections` per photo.
:func:`prepare_face` turns one detection into the model's input (aligned or detection crop + landmarks in
``[0, 1]``); :func:`batched_nms` / :func:`nms` reproduce torchvision's, for MTCNN where torchvision does not
import.
"""

from face.detect.base import Detections, FaceDetector, box_from_landmarks, landmarks_inside
from face.detect.inputs import FaceInput, prepare_face
from face.detect.mtcnn import INSTALL_HINT, MTCNNDetector
from face.detect.nms import batched_nms, nms
from face.detect.table import CsvLandmarks, read_box_csv, write_box_csv

__all__ = [
    "INSTALL_HINT",
    "CsvLandmarks",
    "Detections",
    "FaceDetector",
    "FaceInput",
    "MTCNNDetector",
    "batched_nms",
    "box_from_landmarks",
    "landmarks_inside",
    "nms",
    "prepare_face",
    "read_box_csv",
    "write_box_csv",
]
