"""The compared position encodings: one shallow :class:`kprpe.core.VisionTransformer`, one flag set each.

The paper's variants all keep the learned absolute position embedding and differ only in what is added to it,
as in the authors' ViT (their KP-RPE ViT always adds ``pos_embed``; the paper's Fig. 1 calls RPE and iRPE
"Relative Position Embedding adopted to ViT"). Two extra controls: ``rpe_only`` drops the absolute
embedding so that only relative positions are left, and ``kprpe_only`` does the same for KP-RPE: the
pair shows what the keypoints add once no token knows its absolute position.

=================  ==========  ==================  ==========================================
variant            pos_embed   rpe                 note
=================  ==========  ==================  ==========================================
abs_pe             learned     none                Abs-PE
abs_pe_drawn       learned     none                Abs-PE*: keypoints drawn into the image
rpe                learned     bias                RPE: a learned bias per (layer, head, bucket)
rpe_only           none        bias                RPE without any absolute embedding (control)
irpe               learned     contextual          iRPE, key side, product buckets
kprpe_absolute     learned     kprpe (absolute)    KP-RPE, f(P) of the keypoints themselves
kprpe_relative     learned     kprpe (relative)    KP-RPE, f(M - P), one table for all heads/layers
kprpe_multihead    learned     kprpe (multihead)   KP-RPE as released: a table per head and layer
kprpe_only         none        kprpe (multihead)   KP-RPE without any absolute embedding (control)
=================  ==========  ==================  ==========================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kprpe.core import VisionTransformer

from .data import CANVAS
from .keypoints import NUM_KEYPOINTS

__all__ = ["ModelConfig", "Variant", "VARIANTS", "build_model"]


@dataclass(frozen=True)
class Variant:
    """One row of the study: a label for tables and the :class:`VisionTransformer` flags it sets."""

    label: str
    vit_kwargs: dict[str, Any] = field(default_factory=dict)
    draw_keypoints: bool = False

    @property
    def uses_keypoints(self) -> bool:
        return self.vit_kwargs.get("rpe") == "kprpe"


VARIANTS: dict[str, Variant] = {
    "abs_pe": Variant("Abs-PE", {"pos_embed": "learned", "rpe": "none"}),
    "abs_pe_drawn": Variant("Abs-PE*", {"pos_embed": "learned", "rpe": "none"}, draw_keypoints=True),
    "rpe": Variant("RPE", {"pos_embed": "learned", "rpe": "bias"}),
    "rpe_only": Variant("RPE, no Abs-PE", {"pos_embed": "none", "rpe": "bias"}),
    "irpe": Variant("iRPE", {"pos_embed": "learned", "rpe": "contextual"}),
    "kprpe_absolute": Variant("KP-RPE absolute", {"pos_embed": "learned", "rpe": "kprpe", "kprpe_variant": "absolute"}),
    "kprpe_relative": Variant("KP-RPE relative", {"pos_embed": "learned", "rpe": "kprpe", "kprpe_variant": "relative"}),
    "kprpe_multihead": Variant(
        "KP-RPE multihead", {"pos_embed": "learned", "rpe": "kprpe", "kprpe_variant": "multihead"}
    ),
    "kprpe_only": Variant(
        "KP-RPE multihead, no Abs-PE", {"pos_embed": "none", "rpe": "kprpe", "kprpe_variant": "multihead"}
    ),
}


@dataclass(frozen=True)
class ModelConfig:
    """The shallow ViT shared by all variants: 40x40 input, 5x5 patches (8x8 tokens), 3 blocks.

    ``global_pool="token"`` prepends a CLS token (ViT's classifier); ``"avg"`` averages the tokens.
    """

    patch_size: int = 5
    embed_dim: int = 64
    depth: int = 3
    num_heads: int = 4
    mlp_ratio: float = 2.0
    global_pool: str = "token"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_model(variant: str, config: ModelConfig = ModelConfig()) -> VisionTransformer:
    """The classifier of ``variant`` (a :data:`VARIANTS` key): ``(B, 1, 40, 40)`` -> ``(B, 10)`` logits."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
    return VisionTransformer(
        img_size=CANVAS,
        patch_size=config.patch_size,
        in_chans=1,
        num_classes=10,
        embed_dim=config.embed_dim,
        depth=config.depth,
        num_heads=config.num_heads,
        mlp_ratio=config.mlp_ratio,
        num_keypoints=NUM_KEYPOINTS,
        class_token=config.global_pool == "token",
        global_pool=config.global_pool,
        **VARIANTS[variant].vit_kwargs,
    )
