"""The on-disk formats every gait tool reads and writes (Gait3D raw, OpenGait pickles, partitions).

OpenGait pickle layout (what ``pretreat-gait3d`` and ``synth`` write, what the plugin reads)::

    <root>/<id>/<type>/<view>/00-sils.pkl     (T, 64, 64) uint8 in 0..255, OpenGait's crop (binary
                                              silhouette, resize-interpolated grey edges)
    <root>/<id>/<type>/<view>/01-joints.pkl   (T, 17, 3) float32: x, y in pixels of that 64x64 frame
                                              (pixel centres at integer + 0.5 ... see below), confidence

For Gait3D ``<type>`` is the camera/video (``camid0_videoid2``) and ``<view>`` the sequence (``seq0``).
OpenGait loads every ``.pkl`` of a folder **sorted by file name**, so the two-digit prefixes fix the
modality order: index 0 = silhouettes, index 1 = joints (``data_in_use: [true, true]``; a
silhouette-only model uses ``[true, false]``). Both hold the same frames in the same order.

Joint coordinates: ``x`` is the column and ``y`` the row in continuous pixel units where pixel
``(r, c)`` covers ``[c, c+1) x [r, r+1)``; a joint at the centre of pixel ``(r, c)`` is
``(c + 0.5, r + 0.5)``. Normalising to ``[0, 1]`` of a ``W x H`` frame is then ``(x / W, y / H)``.
Confidence ``0`` means "not detected" (the coordinates are then meaningless and may be 0 or NaN).

Partition JSON (Gait3D's ``Gait3D.json`` shape)::

    {"TRAIN_SET": ["0000", ...], "TEST_SET": ["0002", ...], "PROBE_SET": ["0002-camid33_videoid2-seq0", ...]}

Probes are the listed test sequences (``id-type-view``); the gallery is every other test sequence.
"""

from __future__ import annotations

SIL_PKL_NAME = "00-sils.pkl"
JOINT_PKL_NAME = "01-joints.pkl"
SIL_SIZE = 64  # OpenGait crop: height 64, width 64 (a later transform may cut 10 px per side -> 44)

NUM_JOINTS = 17
COCO_JOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
#: joint order after a horizontal flip (left <-> right)
COCO_FLIP_ORDER = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
#: limbs for drawing skeletons (pairs of joint indices)
COCO_SKELETON = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip

PARTITION_KEYS = ("TRAIN_SET", "TEST_SET", "PROBE_SET")


def probe_key(identity: str, seq_type: str, view: str) -> str:
    """Gait3D's probe string ``"id-type-view"``."""
    return f"{identity}-{seq_type}-{view}"
