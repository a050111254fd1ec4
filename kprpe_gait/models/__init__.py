"""kprpe_gait.models: SwinGait-2D with Swin's window bias, window KP-RPE or no bias (pure PyTorch).

::

    from kprpe_gait.models import SwinGait2D, build_from_model_cfg, load_weights

    net = SwinGait2D(num_classes=3000, rel_pos="kprpe")
    out = net(sils, joints)          # sils (n, s, h, w), joints (n, s, 17, 3) in [0, 1] of the frame
    out["embeddings"]                # (n, 256, 15), before the BNNeck: triplet loss and retrieval

Never imports OpenGait; the plugin in :mod:`kprpe_gait.opengait` wraps this network.
"""

from .build import MODEL_NAMES, build_from_model_cfg, checkpoint_filter_fn, load_weights
from .modules import BasicBlock2D, HorizontalPoolingPyramid, SeparateBNNecks, SeparateFCs, temporal_max
from .swingait2d import REL_POS, PatchEmbed2D, SwinGait2D, SwinStage2D, SwinTransformer2D

__all__ = [
    "MODEL_NAMES",
    "REL_POS",
    "BasicBlock2D",
    "HorizontalPoolingPyramid",
    "PatchEmbed2D",
    "SeparateBNNecks",
    "SeparateFCs",
    "SwinGait2D",
    "SwinStage2D",
    "SwinTransformer2D",
    "build_from_model_cfg",
    "checkpoint_filter_fn",
    "load_weights",
    "temporal_max",
]
