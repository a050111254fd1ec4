"""The authors' face ViT (CVLface ``models/vit``, ``vit_irpe``, ``vit_kprpe``) built on :mod:`kprpe.core`.

Layer by layer, as released (``cvlface/research/recognition/code/run_v1/models/vit_kprpe/vit.py``):

* input ``(B, 3, 112, 112)`` RGB in ``[-1, 1]``; patch embedding ``Conv2d(3, C, 8, stride 8)`` -> 196
  tokens, no class token; learned absolute position embedding ``(1, 196, C)``;
* ``depth`` pre-norm blocks: ``LayerNorm`` (eps 1e-5) -> attention (qkv **without bias**, logits
  ``(q * d^-0.5) k^T`` plus the relative bias, softmax, proj with bias) -> residual; ``LayerNorm`` ->
  MLP ``Linear -> ReLU6 -> Linear`` -> residual; stochastic depth ``linspace(0, drop_path_rate, depth)``;
* final ``LayerNorm``; head ``flatten (196 C) -> Linear(no bias) -> BatchNorm1d(eps 2e-5) -> Linear(no
  bias) -> BatchNorm1d(eps 2e-5)``: a ``(B, output_dim)`` embedding, not normalised;
* ``rpe="kprpe"``: one ``Linear(10, K * heads * depth)`` (``multihead``; other variants: see
  :data:`kprpe.core.VARIANTS`) on the patch-centre-minus-landmark offsets, split per block and head,
  looked up per query row ``table[b, h, i, bucket(i, j)]`` (product buckets, ratio 1.9, K = 49);
* ``rpe="irpe"``: iRPE's contextual key-side RPE (product, shared heads): ``bias = (q * d^-0.5) . r``;
* ``mask_ratio > 0`` (training only, ``rpe="none"`` only, as in their code): a random ``mask_ratio``
  share of tokens is dropped before the blocks and replaced by a learned ``mask_token`` after the norm.

Presets (:data:`PRESETS`): ``vit_small`` (depth 12, 8 heads, MLP 5) and ``vit_base`` (depth 24, 16 heads,
MLP 3) are the paper's (width 512, patch 8); ``vit_tiny`` is a CPU-sized model for tests and demos
(width 96, depth 4, 4 heads, MLP 2, patch 8 on 112 px: the same 14 x 14 token grid and buckets).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from kprpe.core import VisionTransformer

from .inputs import check_images, check_landmarks

__all__ = ["PRESETS", "RPE_KINDS", "FaceViT"]

#: ``FaceViT.rpe`` -> the core ``VisionTransformer`` rpe mode
RPE_KINDS: dict[str, str] = {"none": "none", "irpe": "contextual", "kprpe": "kprpe"}

#: named architectures; :func:`face.models.build_model` overrides any of their keys
PRESETS: dict[str, dict[str, Any]] = {
    "vit_small": {"embed_dim": 512, "depth": 12, "num_heads": 8, "mlp_ratio": 5.0},
    "vit_base": {"embed_dim": 512, "depth": 24, "num_heads": 16, "mlp_ratio": 3.0},
    "vit_tiny": {"embed_dim": 96, "depth": 4, "num_heads": 4, "mlp_ratio": 2.0},
}


class FaceViT(VisionTransformer):
    """The authors' face ViT with ``rpe`` = ``"none"``, ``"irpe"`` or ``"kprpe"``.

    Args:
        img_size: square input side in pixels (112).
        patch_size: patch side (8: a 14 x 14 grid).
        embed_dim, depth, num_heads, mlp_ratio: transformer size (see :data:`PRESETS`).
        output_dim: embedding size (512).
        rpe: ``"none"``, ``"irpe"`` (contextual key-side) or ``"kprpe"``.
        kprpe_variant: :data:`kprpe.core.VARIANTS` key (``"multihead"`` is the released one).
        rpe_ratio: bucket ratio (1.9 in every released config).
        num_keypoints: landmarks per face (5).
        min_confidence: landmarks with confidence ``<= min_confidence`` (or NaN) are missing.
        mask_ratio: share of tokens dropped in training (``rpe="none"`` only).
        drop_path_rate: stochastic depth of the last block (the authors train with 0.1).
        qkv_bias: bias in the qkv projection (False, as released).
        backend: attention backend of the biased attention (:func:`kprpe.core.kprpe_attention`).

    Shape:
        - images: ``(B, 3, img_size, img_size)`` float, RGB, ``(x / 255 - 0.5) / 0.5``.
        - landmarks: ``(B, num_keypoints, 2|3)`` ``(x, y)`` in ``[0, 1]`` of the image the model sees
          (optional third column: confidence); required for ``kprpe``, ignored otherwise. Missing
          landmarks (NaN or confidence 0) contribute nothing to the bias: never NaN, never a crash.
        - output: ``(B, output_dim)`` unnormalised embedding.

    Attributes:
        config: plain dict of the constructor arguments; ``FaceViT(**model.config)`` rebuilds the model.
    """

    def __init__(
        self,
        img_size: int = 112,
        patch_size: int = 8,
        embed_dim: int = 512,
        depth: int = 12,
        num_heads: int = 8,
        mlp_ratio: float = 5.0,
        output_dim: int = 512,
        rpe: str = "none",
        kprpe_variant: str = "multihead",
        rpe_ratio: float = 1.9,
        num_keypoints: int = 5,
        min_confidence: float = 0.0,
        mask_ratio: float = 0.0,
        drop_path_rate: float = 0.0,
        qkv_bias: bool = False,
        backend: str = "auto",
    ) -> None:
        if rpe not in RPE_KINDS:
            raise ValueError(f"unknown rpe {rpe!r}; choose one of {sorted(RPE_KINDS)}")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        if mask_ratio > 0 and rpe != "none":
            raise ValueError(
                f"mask_ratio={mask_ratio} needs rpe='none': relative encodings need every token of the grid "
                "(the authors' code asserts mask_ratio == 0 for KP-RPE too)"
            )
        super().__init__(
            img_size=img_size, patch_size=patch_size, in_chans=3, num_classes=0, embed_dim=embed_dim, depth=depth,
            num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, mlp_act="relu6", pos_embed="learned",
            rpe=RPE_KINDS[rpe], rpe_method="product", rpe_ratio=rpe_ratio, kprpe_variant=kprpe_variant,
            num_keypoints=num_keypoints, min_confidence=min_confidence, class_token=False, global_pool="flatten",
            drop_path_rate=drop_path_rate, backend=backend,
        )  # fmt: skip
        self.config: dict[str, Any] = {
            "img_size": img_size, "patch_size": patch_size, "embed_dim": embed_dim, "depth": depth,
            "num_heads": num_heads, "mlp_ratio": float(mlp_ratio), "output_dim": output_dim, "rpe": rpe,
            "kprpe_variant": kprpe_variant, "rpe_ratio": float(rpe_ratio), "num_keypoints": num_keypoints,
            "min_confidence": float(min_confidence), "mask_ratio": float(mask_ratio),
            "drop_path_rate": float(drop_path_rate), "qkv_bias": qkv_bias, "backend": backend,
        }  # fmt: skip
        self.mask_ratio = float(mask_ratio)
        self.rpe = rpe
        self.embed_dim = embed_dim
        self.output_dim = output_dim
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if mask_ratio > 0 else None
        self.head = nn.Sequential(
            nn.Linear(self.num_features, embed_dim, bias=False),
            nn.BatchNorm1d(embed_dim, eps=2e-5),
            nn.Linear(embed_dim, output_dim, bias=False),
            nn.BatchNorm1d(output_dim, eps=2e-5),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The core ViT's init (trunc-normal 0.02, KP-RPE/iRPE tables zero), BN at identity, mask token N(0, 0.02)."""
        super().reset_parameters()
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.reset_parameters()
        if getattr(self, "mask_token", None) is not None:
            nn.init.normal_(self.mask_token, std=0.02)

    def no_weight_decay(self) -> set[str]:
        return super().no_weight_decay() | ({"mask_token"} if self.mask_token is not None else set())

    def _random_masking(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep a random ``1 - mask_ratio`` share of the tokens: ``(B, N_keep, C)`` and the restoring order."""
        batch, tokens, channels = x.shape
        keep = int(tokens * (1 - self.mask_ratio))
        order = torch.rand(batch, tokens, device=x.device).argsort(dim=1)
        restore = order.argsort(dim=1)
        kept = x.gather(1, order[:, :keep, None].expand(-1, -1, channels))
        return kept, restore

    def forward_features(self, x: torch.Tensor, keypoints: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens after the last block and norm: ``(B, N, C)`` (masked tokens restored as ``mask_token``)."""
        x = self.embed(x)
        if not (self.training and self.mask_token is not None):
            return self.encode(x, keypoints)
        kept, restore = self._random_masking(x)
        kept = self.encode(kept, keypoints)
        fill = self.mask_token.expand(kept.shape[0], restore.shape[1] - kept.shape[1], -1)
        full = torch.cat([kept, fill.to(kept.dtype)], dim=1)
        return full.gather(1, restore[..., None].expand(-1, -1, full.shape[2]))

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings ``(B, output_dim)`` of ``images`` with their ``landmarks`` (see the class docstring)."""
        check_images(images, self.img_size)
        if self.kprpe is None:
            landmarks = None  # ignored without KP-RPE
        elif landmarks is None:
            raise ValueError("rpe='kprpe' needs landmarks: call model(images, landmarks) with (B, 5, 2|3) in [0, 1]")
        else:
            check_landmarks(landmarks, images.shape[0], self.num_keypoints)
        return self.forward_head(self.forward_features(images, landmarks))

    def extra_repr(self) -> str:
        return f"rpe={self.rpe!r}, output_dim={self.output_dim}, mask_ratio={self.mask_ratio}"
