"""The paper's toy study (KP-RPE, CVPR 2024, Fig. 1): a shallow ViT trained on centred MNIST digits,
tested on the same digits under unseen AffNIST-style affine transforms, for every position encoding.

Run it with ``python tools/toy_mnist.py`` (``--help``, ``--quick`` for a smoke run). Modules:

* :mod:`.data`: MNIST loading, 40x40 canvas, the seeded and cached affine test set;
* :mod:`.keypoints`: box keypoints from an image, and Abs-PE*'s drawn keypoints;
* :mod:`.models`: the variants, all one :class:`kprpe.core.VisionTransformer`;
* :mod:`.train`: data preparation, one run, evaluation;
* :mod:`.report`: results file, markdown table and bar chart;
* :mod:`.cli`: the resumable study.
"""

from .data import AffineRanges, MnistSplits, affine_test_set, center_on_canvas, load_mnist, sample_affine, warp
from .keypoints import NUM_KEYPOINTS, box_keypoints, draw_keypoints
from .models import VARIANTS, ModelConfig, Variant, build_model
from .train import EvalSet, PreparedData, TrainConfig, evaluate, prepare_data, train_run

__all__ = [
    "AffineRanges",
    "EvalSet",
    "MnistSplits",
    "ModelConfig",
    "NUM_KEYPOINTS",
    "PreparedData",
    "TrainConfig",
    "VARIANTS",
    "Variant",
    "affine_test_set",
    "box_keypoints",
    "build_model",
    "center_on_canvas",
    "draw_keypoints",
    "evaluate",
    "load_mnist",
    "prepare_data",
    "sample_affine",
    "train_run",
    "warp",
]
