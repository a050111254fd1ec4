"""Face data formats: identity folders, insightface RecordIO, verification ``.bin`` pairs, probe/gallery sets,
IJB-B/C templates.

Every dataset yields ``(image, landmarks, label)``: ``(3, H, W)`` uint8 RGB, ``(5, 3)`` float32 pixel ``x, y`` +
confidence (NaN / 0 where missing), and an integer label.
"""

from face.data.crop import box_crop_matrix, warp_faces
from face.data.folder import IMAGE_EXTENSIONS, FaceFolder
from face.data.identification import DISTRACTOR_LABEL, FaceList, IdentificationSet, read_identification_folder
from face.data.ijb import (
    IJB_NAMES,
    IJBPairs,
    IJBSearch,
    IJBSet,
    iter_pair_chunks,
    read_ijb,
    read_ijb_pairs,
    read_ijb_search,
)
from face.data.images import decode_image, encode_image, load_image, missing_landmarks
from face.data.recordio import (
    IRHeader,
    RecordFaceDataset,
    RecordIOReader,
    RecordIOWriter,
    pack_record,
    unpack_record,
    write_face_recordio,
)
from face.data.verification import (
    VerificationPairs,
    read_verification_bin,
    sidecar_path,
    write_landmark_sidecars,
    write_verification_bin,
)

__all__ = [
    "DISTRACTOR_LABEL",
    "IMAGE_EXTENSIONS",
    "FaceFolder",
    "FaceList",
    "IJBPairs",
    "IJBSearch",
    "IJBSet",
    "IJB_NAMES",
    "IRHeader",
    "IdentificationSet",
    "RecordFaceDataset",
    "RecordIOReader",
    "RecordIOWriter",
    "VerificationPairs",
    "box_crop_matrix",
    "decode_image",
    "encode_image",
    "iter_pair_chunks",
    "load_image",
    "missing_landmarks",
    "pack_record",
    "read_identification_folder",
    "read_ijb",
    "read_ijb_pairs",
    "read_ijb_search",
    "read_verification_bin",
    "sidecar_path",
    "unpack_record",
    "warp_faces",
    "write_face_recordio",
    "write_landmark_sidecars",
    "write_verification_bin",
]
