"""kprpe_gait.train: a compact re-implementation of OpenGait's training and inference semantics.

Small enough to read in one sitting and to run SwinGait-2D on a CPU (``kprpe-gait demo``):

* :class:`GaitDataset`: OpenGait pickle layout reader (silhouettes + joints, frame counts checked);
* :class:`TripletSampler`, :func:`sample_ordered_frames`: P x K batches, fixed ordered frames;
* :class:`TripletLoss` (margin 0.2), :class:`CrossEntropyLoss` (scale 16, label smoothing 0.1);
* :class:`Trainer` / :class:`TrainConfig`: AdamW + SGDR, TensorBoard, atomic checkpoints, resume;
* :func:`extract_features`: whole ordered sequences packed with ``seqL``, OpenGait's inference dict.
"""

from kprpe.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from kprpe_gait.inputs import network_inputs

from .dataset import GaitDataset, SequenceKey, read_partition
from .features import extract_features
from .inputs import stack_batch
from .losses import CrossEntropyLoss, TripletLoss, part_distances
from .mean_pose import mean_pose
from .sampling import TripletSampler, sample_ordered_frames
from .trainer import OPENGAIT_AUGMENT, TrainConfig, Trainer

__all__ = [
    "OPENGAIT_AUGMENT",
    "CrossEntropyLoss",
    "GaitDataset",
    "SequenceKey",
    "TrainConfig",
    "Trainer",
    "TripletLoss",
    "TripletSampler",
    "extract_features",
    "latest_checkpoint",
    "load_checkpoint",
    "mean_pose",
    "network_inputs",
    "part_distances",
    "read_partition",
    "sample_ordered_frames",
    "save_checkpoint",
    "stack_batch",
]
