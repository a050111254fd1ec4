"""kprpe.core: KeyPoint Relative Position Encoding (KP-RPE, CVPR 2024) as a small attention library.

Public surface::

    from kprpe.core import product_buckets, patch_centers, KeypointRPE, kprpe_attention

    buckets, K = product_buckets(h, w, ratio=1.9)        # (h*w, h*w) int64, K = 49
    rpe = KeypointRPE(num_keypoints=L, grid_size=(h, w), num_heads=H, depth=D)
    tables = rpe(keypoints)                              # D tables, each (B, H, h*w, K)
    out = kprpe_attention(q, k, v, tables[l], buckets)   # q, k, v (B, H, N, d), unscaled

Nothing here knows about faces or gait; task packages turn their inputs into tokens and keypoints.
"""

from .attention import BACKENDS, backend_unavailable, explain_backend, gather_bias, kprpe_attention, select_backend
from .baselines import ContextualRPE, ContinuousPositionBias, RelPosBias
from .buckets import bucket_map, check_buckets, cross_buckets, num_buckets, piecewise_index, product_buckets
from .geometry import keypoint_offsets, patch_centers, split_keypoints
from .keypoint_rpe import VARIANTS, KeypointRPE
from .layers import Attention, Block, DropPath, Mlp
from .swin import PatchMerging, SwinBlock, swin_stage_blocks
from .vit import VisionTransformer
from .windows import (
    compact_window_buckets,
    from_windows,
    partition_tables,
    shifted_window_mask,
    to_windows,
    window_buckets,
    window_keypoints,
    window_partition,
    window_reverse,
)

__all__ = [
    "BACKENDS",
    "VARIANTS",
    "Attention",
    "Block",
    "ContextualRPE",
    "ContinuousPositionBias",
    "DropPath",
    "KeypointRPE",
    "Mlp",
    "PatchMerging",
    "RelPosBias",
    "SwinBlock",
    "VisionTransformer",
    "backend_unavailable",
    "bucket_map",
    "check_buckets",
    "compact_window_buckets",
    "cross_buckets",
    "explain_backend",
    "from_windows",
    "gather_bias",
    "keypoint_offsets",
    "kprpe_attention",
    "num_buckets",
    "partition_tables",
    "patch_centers",
    "piecewise_index",
    "product_buckets",
    "select_backend",
    "shifted_window_mask",
    "split_keypoints",
    "swin_stage_blocks",
    "to_windows",
    "window_buckets",
    "window_keypoints",
    "window_partition",
    "window_reverse",
]
