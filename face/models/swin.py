"""The authors' face Swin with KP-RPE (CVLface ``models/swin_kprpe``) built on :mod:`kprpe.core`.

Layer by layer, as released (``cvlface/research/recognition/code/run_v1/models/swin_kprpe/``, a Swin V2 in
torchvision's code with the KP-RPE bias in place of Swin V2's continuous position bias):

* input ``(B, 3, 112, 112)`` RGB in ``[-1, 1]``; patch embedding ``Conv2d(3, C, 3, stride 3)`` (37 x 37
  tokens; the last image row and column are not seen) and ``LayerNorm``; no absolute position embedding;
* four stages on 37 x 37, 19 x 19, 10 x 10 and 5 x 5 grids with widths ``C, 2C, 4C, 8C``: Swin V2 blocks
  (:class:`kprpe.core.SwinBlock` with ``post_norm`` and ``cosine_attention``: ``x + norm1(attn(x))``,
  ``x + norm2(mlp(x))``, cosine logits times a learned per-head scale, qkv bias without its key part,
  GELU MLP of ratio 4) in 5 x 5 windows, every second block shifted by 2; grids are zero-padded to the
  window at the bottom/right and the padded tokens take part in attention, as in torchvision; Swin V2's
  patch merging (:class:`kprpe.core.PatchMerging`: reduction, then ``LayerNorm``) between stages;
  stochastic depth growing linearly over all blocks;
* final ``LayerNorm``; head ``flatten (25 * 8C) -> Linear(no bias) -> BatchNorm1d(eps 2e-5) -> Linear(no
  bias) -> BatchNorm1d(eps 2e-5)``: a ``(B, output_dim)`` embedding, not normalised;
* ``rpe="kprpe"`` (their ``rel_keypoint_splithead_unshared``): per stage one
  ``Linear(2L, 49 * heads * blocks)`` on the offsets ``D = M - P`` of the **whole stage grid** (token
  centres ``(c + 0.5) / w`` in ``[0, 1]``, the frame of the landmarks), split per block and head; the
  ``(B, H, h*w, 49)`` table is padded, shifted and partitioned like the features and read through the
  5 x 5 window's product bucket map (ratio 1.9), added to the cosine logits before the shift mask
  (:mod:`kprpe.core.windows`, "stage grid");
* ``rpe="cpb"``: Swin V2's own continuous position bias (:class:`kprpe.core.ContinuousPositionBias`), the
  same network without keypoints: the baseline of a paired comparison;
* ``rpe="none"``: no position bias at all.

Their model is defined for 112 px only (their head raises otherwise). At other sizes a stage grid smaller than
the window is handled as :class:`kprpe.core.SwinBlock` does (the window clamped to the grid), where torchvision
would pad the grid to the window: the same for every grid of a 112 px input (the last, 5 x 5, equals the window).

Presets (:data:`PRESETS`): ``swin_small`` (depths 2-2-12-2, their ``v1_small_kprpe_splithead_unshared``,
``swin_v2_s``) and ``swin_base`` (2-2-18-2, ``v1_base_*``, ``swin_v2_b``): width 128, heads 4-8-16-32,
stochastic depth 0.3 / 0.5 as released; ``swin_tiny`` is a CPU-sized model for tests and demos (width 32,
heads 1-2-4-8, depths 2-2-2-2: the same grids, windows and buckets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from kprpe.core import ContinuousPositionBias, KeypointRPE, PatchMerging, swin_stage_blocks
from kprpe.core.decay import position_parameter_names, position_rng, shared_modules
from kprpe.core.layers import init_linear_and_norm

from .inputs import check_images, check_landmarks

__all__ = ["PRESETS", "RPE_KINDS", "FaceSwin", "FaceSwinStage", "head_inputs", "stage_grids"]

#: ``FaceSwin.rpe`` -> the core ``SwinBlock`` ``rel_pos``
RPE_KINDS: dict[str, str] = {"kprpe": "table", "cpb": "cpb", "none": "none"}

#: named architectures; :func:`face.models.build_model` overrides any of their keys
PRESETS: dict[str, dict[str, Any]] = {
    "swin_small": {"embed_dim": 128, "depths": [2, 2, 12, 2], "num_heads": [4, 8, 16, 32], "drop_path_rate": 0.3},
    "swin_base": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "drop_path_rate": 0.5},
    "swin_tiny": {"embed_dim": 32, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 4, 8], "drop_path_rate": 0.0},
}


def stage_grids(img_size: int, patch_size: int, num_stages: int) -> list[tuple[int, int]]:
    """Token grid of each stage: ``img_size // patch_size`` (the convolution's floor), then halved with
    rounding up (patch merging pads an odd side)."""
    side = img_size // patch_size
    grids = []
    for _ in range(num_stages):
        grids.append((side, side))
        side = (side + 1) // 2
    return grids


def head_inputs(img_size: int, patch_size: int, embed_dim: int, num_stages: int) -> int:
    """Width of the flattened last stage the head reads: last grid's tokens times ``embed_dim * 2^(stages-1)``."""
    (h, w) = stage_grids(img_size, patch_size, num_stages)[-1]
    return h * w * embed_dim * 2 ** (num_stages - 1)


class FaceSwinStage(nn.Module):
    """``len(drop_path)`` Swin V2 blocks on one grid, their KP-RPE (``rpe="kprpe"``), then patch merging.

    Args:
        dim: channels ``C``.
        num_heads: heads per block.
        grid_size: ``(h, w)`` token grid.
        window_size: ``(wh, ww)``; odd blocks shift by ``window // 2``.
        mlp_ratio: MLP hidden width over ``dim``.
        drop_path: stochastic depth of each block.
        rpe: ``"kprpe"``, ``"cpb"`` or ``"none"`` (:data:`RPE_KINDS`).
        rpe_ratio: bucket ratio of the window product map and of the stage's :class:`KeypointRPE`.
        num_keypoints, min_confidence: of the stage's :class:`KeypointRPE` (``rpe="kprpe"``).
        downsample: end with :class:`~kprpe.core.PatchMerging` (Swin V2 order).
        backend: attention backend (:func:`kprpe.core.kprpe_attention`).

    Shape:
        - x: ``(B, h, w, C)``
        - landmarks (``rpe="kprpe"``): ``(B, L, 2|3)`` in ``[0, 1]`` of the image
        - output: ``(B, h, w, C)``, or ``(B, ceil(h / 2), ceil(w / 2), 2C)`` with ``downsample``
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        grid_size: tuple[int, int],
        window_size: tuple[int, int],
        mlp_ratio: float,
        drop_path: Sequence[float],
        rpe: str = "kprpe",
        rpe_ratio: float = 1.9,
        num_keypoints: int = 5,
        min_confidence: float = 0.0,
        downsample: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if rpe not in RPE_KINDS:
            raise ValueError(f"unknown rpe {rpe!r}; choose one of {sorted(RPE_KINDS)}")
        depth = len(drop_path)
        self.blocks = swin_stage_blocks(
            dim, num_heads, grid_size, window_size, drop_path, mlp_ratio=mlp_ratio, qkv_bias=True,
            rel_pos=RPE_KINDS[rpe], ratio=rpe_ratio, backend=backend, table_grid="stage", post_norm=True,
            cosine_attention=True,
        )  # fmt: skip
        self.rpe = None
        if rpe == "kprpe":
            with position_rng():  # paired with the same model under "cpb"/"none" (kprpe.core.decay.position_rng)
                self.rpe = KeypointRPE(num_keypoints, grid_size, num_heads, depth, "multihead", rpe_ratio,
                                       min_confidence=min_confidence)  # fmt: skip
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.rpe.features(landmarks) if self.rpe is not None else None  # (B, h*w, 2L)
        for i, block in enumerate(self.blocks):
            x = block(x, self.rpe.layer_table(feats, i) if feats is not None else None)
        return self.downsample(x) if self.downsample is not None else x


class FaceSwin(nn.Module):
    """The authors' face Swin (Swin V2 blocks, flatten-BN head) with ``rpe`` = ``"kprpe"``, ``"cpb"`` or ``"none"``.

    Args:
        img_size: square input side in pixels (112).
        patch_size: patch side (3: a 37 x 37 first grid).
        embed_dim: first-stage width ``C`` (doubles at each merge).
        depths: blocks per stage.
        num_heads: heads per stage.
        window_size: square window side (5).
        mlp_ratio: MLP hidden width over the stage width (4).
        output_dim: embedding size (512).
        rpe: ``"kprpe"``, ``"cpb"`` or ``"none"`` (module docstring).
        rpe_ratio: bucket ratio (1.9 in the released configs).
        num_keypoints: landmarks per face (5).
        min_confidence: landmarks with confidence ``<= min_confidence`` (or NaN) are missing.
        drop_path_rate: stochastic depth of the last block (0.3 small, 0.5 base as released).
        backend: attention backend of the windows (:func:`kprpe.core.kprpe_attention`).

    Shape:
        - images: ``(B, 3, img_size, img_size)`` float, RGB, ``(x / 255 - 0.5) / 0.5``.
        - landmarks: ``(B, num_keypoints, 2|3)`` ``(x, y)`` in ``[0, 1]`` of the image the model sees
          (optional third column: confidence); required for ``kprpe``, ignored otherwise. Missing
          landmarks (NaN or confidence 0) contribute nothing to the bias.
        - output: ``(B, output_dim)`` unnormalised embedding.

    Attributes:
        config: plain dict of the constructor arguments; ``FaceSwin(**model.config)`` rebuilds the model
            (:func:`face.models.build_model` needs ``arch: swin`` beside them, or a ``swin_*`` preset).
    """

    def __init__(
        self,
        img_size: int = 112,
        patch_size: int = 3,
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 12, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_size: int = 5,
        mlp_ratio: float = 4.0,
        output_dim: int = 512,
        rpe: str = "kprpe",
        rpe_ratio: float = 1.9,
        num_keypoints: int = 5,
        min_confidence: float = 0.0,
        drop_path_rate: float = 0.0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if rpe not in RPE_KINDS:
            raise ValueError(f"unknown rpe {rpe!r}; choose one of {sorted(RPE_KINDS)}")
        depths, num_heads = [int(d) for d in depths], [int(h) for h in num_heads]
        if not depths or len(depths) != len(num_heads) or min(depths) < 1 or min(num_heads) < 1:
            raise ValueError(f"depths {depths} and num_heads {num_heads} must be equally long lists of positive ints")
        for i, heads in enumerate(num_heads):
            if (embed_dim * 2**i) % heads:
                raise ValueError(f"stage {i} width {embed_dim * 2**i} is not divisible by its {heads} heads")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.config: dict[str, Any] = {
            "img_size": img_size, "patch_size": patch_size, "embed_dim": embed_dim,
            "depths": depths, "num_heads": num_heads, "window_size": window_size, "mlp_ratio": float(mlp_ratio),
            "output_dim": output_dim, "rpe": rpe, "rpe_ratio": float(rpe_ratio), "num_keypoints": num_keypoints,
            "min_confidence": float(min_confidence), "drop_path_rate": float(drop_path_rate), "backend": backend,
        }  # fmt: skip
        self.img_size = (img_size, img_size)
        self.rpe = rpe
        self.num_keypoints = num_keypoints
        self.output_dim = output_dim
        self.grids = stage_grids(img_size, patch_size, len(depths))
        self.num_features = embed_dim * 2 ** (len(depths) - 1)

        self.patch_embed = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.patch_norm = nn.LayerNorm(embed_dim)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (depth, heads, grid) in enumerate(zip(depths, num_heads, self.grids)):
            first = sum(depths[:i])
            self.stages.append(
                FaceSwinStage(
                    embed_dim * 2**i,
                    heads,
                    grid,
                    (window_size, window_size),
                    mlp_ratio,
                    rates[first : first + depth],
                    rpe,
                    rpe_ratio,
                    num_keypoints,
                    min_confidence,
                    downsample=i < len(depths) - 1,
                    backend=backend,
                )  # fmt: skip
            )
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Sequential(
            nn.Linear(head_inputs(img_size, patch_size, embed_dim, len(depths)), self.num_features, bias=False),
            nn.BatchNorm1d(self.num_features, eps=2e-5),
            nn.Linear(self.num_features, output_dim, bias=False),
            nn.BatchNorm1d(output_dim, eps=2e-5),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Their init: every ``Linear`` trunc-normal(0.02) with zero bias (theirs overrides the MLPs' Xavier
        init the same way), norms at identity, the patch convolution PyTorch's default, logit scales
        ``log 10``; KP-RPE's ``W_L`` zero. Position modules draw from a forked stream (paired models)."""
        for m in shared_modules(self):
            init_linear_and_norm(m)
            if isinstance(m, nn.BatchNorm1d):
                m.reset_parameters()
        self.patch_embed.reset_parameters()
        with position_rng():
            for m in self.modules():
                if isinstance(m, KeypointRPE):
                    m.reset_parameters()
                elif isinstance(m, ContinuousPositionBias):
                    for layer in m.modules():
                        init_linear_and_norm(layer)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("attn.logit_scale"):
                    p.fill_(math.log(10.0))

    def no_weight_decay(self) -> set[str]:
        """Norms, biases, the logit scales and every position encoding (as timm's Swin V2 exempts
        ``logit_scale`` and ``cpb_mlp``; :func:`kprpe.core.decay.position_parameter_names`)."""
        names = position_parameter_names(self)
        for name, p in self.named_parameters():
            if p.dim() <= 1 or name.endswith("logit_scale"):
                names.add(name)
        return names

    def forward_features(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of the last stage after the final norm: ``(B, h, w, num_features)``."""
        x = self.patch_norm(self.patch_embed(images).permute(0, 2, 3, 1))  # (B, h, w, C)
        for stage in self.stages:
            x = stage(x, landmarks)
        return self.norm(x)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings ``(B, output_dim)`` of ``images`` with their ``landmarks`` (see the class docstring)."""
        check_images(images, self.img_size)
        if self.rpe != "kprpe":
            landmarks = None  # ignored without KP-RPE
        elif landmarks is None:
            raise ValueError("rpe='kprpe' needs landmarks: call model(images, landmarks) with (B, 5, 2|3) in [0, 1]")
        else:
            check_landmarks(landmarks, images.shape[0], self.num_keypoints)
        return self.head(self.forward_features(images, landmarks).flatten(1))

    def extra_repr(self) -> str:
        return f"rpe={self.rpe!r}, grids={self.grids}, output_dim={self.output_dim}"
