"""SwinGait-2D: OpenGait's SwinGait with 2D convolutions and purely spatial (shifted) windows, frame by frame,
with Swin's learned window bias (the baseline), window KP-RPE from the frame's joints, or no bias.

Pipeline (sizes of the full model, OpenGait's SwinGait-3D with 2D parts; ``n`` sequences of ``s`` frames)::

    sils (n, s, h, w)  -> frames (n*s, 1, h, w)
    layer0  conv3x3 -> 64, BN, ReLU
    layer1  1 BasicBlock, 64
    layer2  4 BasicBlocks, 128, stride 2          (n*s, 128, h/2, w/2)
    bilinear resize (align_corners) to 30x20      (n*s, 128, 30, 20)
    transformer
      patch embed 2x2 -> 256, LayerNorm           (n*s, 15, 10, 256)   token grid 15x10
      stage 1: 4 Swin blocks, 16 heads, windows 3x5, shift (1, 2) on odd blocks
               LayerNorm + Linear(256, 512, bias=False)   (no spatial merging)
      stage 2: 2 Swin blocks, 32 heads, windows 3x5
      LayerNorm                                   (n*s, 15, 10, 512)
    temporal max (per sequence with seqL)         (n', 512, 15, 10)
    horizontal pooling, 15 strips (mean + max)    (n', 512, 15)
    + a detached copy of the last strip           (n', 512, 16)   OpenGait's "+1" part
    SeparateFCs 16 x 512 -> 256                   embeddings
    SeparateBNNecks (BN, cosine classifier)       bnneck, logits
    drop the extra part                           (n', 256, 15), (n', 256, 15), (n', classes, 15)

Relative positions (``rel_pos``):

* ``"swin"``: Swin's learned bias per (head, window offset), truncated-normal(0.02) init;
* ``"kprpe"``: window KP-RPE replacing Swin's bias, one :class:`~kprpe.core.KeypointRPE` per stage
  (``depth`` = the stage's block count, the stage's heads), in one of two frames (``kprpe_grid``; the
  exact definitions are in :mod:`kprpe.core.windows`):

  - ``"stage"`` (the authors' released Swin-KP-RPE code): ``M`` is the stage's 15x10 token grid and the
    joints are in ``[0, 1]`` of the input frame; for each frame the offsets of every token centre to
    that frame's joints are computed once per stage and each block's table (``layer_table``) is padded,
    shifted and partitioned like the features;
  - ``"window"`` (the paper's "grid M the size of the window"): ``M`` is the 3x5 window and the joints
    are moved into each window's frame for the block's shift (:func:`kprpe.core.windows.window_keypoints`,
    computed once per stage and shift), giving per-window tables directly.

  The token grid spans the whole input frame, so joints normalised to ``[0, 1]`` of that frame are stage
  grid coordinates. Joints stay in float32 (never the activations' dtype: bf16 would round positions
  by up to a quarter pixel). Joints with confidence ``<= min_confidence`` (or NaN) contribute nothing
  (``kprpe.core``'s rule).
* ``"none"``: no position bias.

``W_L`` is zero-initialised, so a KP-RPE model at initialisation computes exactly what the same
weights compute with ``rel_pos="none"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kprpe.core import VARIANTS, KeypointRPE, RelPosBias, swin_stage_blocks
from kprpe.core.decay import POSITION_MODULES, position_rng, shared_modules
from kprpe.core.layers import init_linear_and_norm
from kprpe.core.windows import TABLE_GRIDS, as_pair, compact_window_buckets, window_keypoints

from .modules import (
    HorizontalPoolingPyramid,
    SeparateBNNecks,
    SeparateFCs,
    make_res_layer,
    seq_lengths,
    temporal_max,
)

__all__ = ["REL_POS", "PatchEmbed2D", "SwinGait2D", "SwinStage2D", "SwinTransformer2D"]

#: ``rel_pos`` of :class:`SwinGait2D` -> ``rel_pos`` of :class:`kprpe.core.SwinBlock`
REL_POS = {"swin": "swin", "kprpe": "table", "none": "none"}


class PatchEmbed2D(nn.Module):
    """Non-overlapping ``patch x patch`` patches -> tokens, then LayerNorm (Swin's ``patch_norm``).

    Shape:
        ``(B, in_channels, H, W)`` -> ``(B, H / patch, W / patch, embed_dim)`` (channels last)
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int = 2) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinStage2D(nn.Module):
    """``depth`` Swin blocks on a fixed token grid, alternating regular and shifted windows.

    Args:
        dim: channels ``C``.
        depth: number of blocks.
        num_heads: heads per block.
        grid_size: ``(h, w)`` token grid.
        window_size: ``(wh, ww)``; odd blocks shift by ``window // 2``.
        drop_path: stochastic depth of each block (``depth`` values).
        rel_pos: ``"swin"``, ``"kprpe"`` or ``"none"``.
        kprpe_variant, num_joints, min_confidence: of the stage's :class:`KeypointRPE` (``"kprpe"``).
        kprpe_grid: ``"stage"`` or ``"window"``, the frame of the KP-RPE grid (module docstring).
        compact_buckets: KP-RPE tables with a column only for the buckets a window reaches (35 of 49
            for a 3x5 window; :func:`kprpe.core.compact_window_buckets`), not the full product map.
        out_dim: if set, the stage ends with ``LayerNorm(C) + Linear(C, out_dim, bias=False)``.
        backend: attention backend (:func:`kprpe.core.kprpe_attention`).

    Shape:
        - x: ``(B, h, w, C)``
        - joints (``rel_pos="kprpe"``): ``(B, J, 3)`` ``(x, y)`` in ``[0, 1]`` of the frame, confidence
        - output: ``(B, h, w, out_dim or C)``
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        grid_size: tuple[int, int],
        window_size: tuple[int, int],
        drop_path: Sequence[float],
        rel_pos: str = "swin",
        kprpe_variant: str = "multihead",
        num_joints: int = 17,
        min_confidence: float = 0.0,
        out_dim: int | None = None,
        backend: str = "auto",
        kprpe_grid: str = "stage",
        compact_buckets: bool = False,
    ) -> None:
        super().__init__()
        if len(drop_path) != depth:
            raise ValueError(f"need {depth} drop-path rates, got {len(drop_path)}")
        if kprpe_grid not in TABLE_GRIDS:
            raise ValueError(f"unknown kprpe_grid {kprpe_grid!r}; choose one of {TABLE_GRIDS}")
        self.rel_pos = rel_pos
        self.kprpe_grid = kprpe_grid
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.blocks = swin_stage_blocks(
            dim, num_heads, grid_size, window_size, drop_path, rel_pos=REL_POS[rel_pos], backend=backend,
            table_grid=kprpe_grid, compact_buckets=compact_buckets,
        )  # fmt: skip
        self.window_size = self.blocks[0].window_size  # clamped to the grid
        rpe_grid = self.grid_size if kprpe_grid == "stage" else self.window_size
        used = compact_window_buckets(self.window_size)[2] if compact_buckets else None
        self.rpe = None
        if rel_pos == "kprpe":
            with position_rng():  # paired with the Swin-bias model (kprpe.core.decay.position_rng)
                self.rpe = KeypointRPE(num_joints, rpe_grid, num_heads, depth, kprpe_variant,
                                       min_confidence=min_confidence, used_buckets=used)  # fmt: skip
        self.downsample: nn.Module = nn.Identity()
        if out_dim is not None:
            self.downsample = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, out_dim, bias=False))

    def forward(self, x: torch.Tensor, joints: torch.Tensor | None = None) -> torch.Tensor:
        features: dict[tuple[int, int], torch.Tensor] = {}  # per shift: (B, N, 2J) or (B*nW, Nw, 2J) offsets
        for i, block in enumerate(self.blocks):
            table = None
            if self.rpe is not None:
                shift = block.shift_size if self.kprpe_grid == "window" else (0, 0)
                if shift not in features:
                    frame = joints
                    if self.kprpe_grid == "window":
                        frame = window_keypoints(joints, self.grid_size, self.window_size, shift)
                    features[shift] = self.rpe.features(frame)
                table = self.rpe.layer_table(features[shift], i)  # (B, H, N, K) or (B*nW, H, Nw, K)
            x = block(x, table)
        return self.downsample(x)

    def extra_repr(self) -> str:
        return f"rel_pos={self.rel_pos!r}" + (f", kprpe_grid={self.kprpe_grid!r}" if self.rpe is not None else "")


class SwinTransformer2D(nn.Module):
    """Patch embedding and the Swin stages of SwinGait-2D, applied to frames.

    Args:
        in_channels: channels of the conv stem's output.
        embed_dim: stage-1 width; each later stage doubles it once (``Linear`` at the end of stage 1).
        depths: blocks per stage.
        num_heads: heads per stage.
        grid_size: token grid ``(h, w)``; the input must be ``(2h, 2w)`` (2x2 patches).
        window_size: window ``(wh, ww)`` of every stage.
        drop_path_rate: stochastic depth grows linearly from 0 to this over all blocks.
        rel_pos, kprpe_variant, num_joints, min_confidence, backend, kprpe_grid, compact_buckets: see
            :class:`SwinStage2D`.

    Shape:
        - x: ``(B, in_channels, 2h, 2w)``
        - joints: ``(B, J, 3)`` (``rel_pos="kprpe"``)
        - output: ``(B, h, w, num_features)`` with ``num_features = 2 * embed_dim``
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        depths: Sequence[int],
        num_heads: Sequence[int],
        grid_size: tuple[int, int],
        window_size: tuple[int, int],
        drop_path_rate: float = 0.1,
        rel_pos: str = "swin",
        kprpe_variant: str = "multihead",
        num_joints: int = 17,
        min_confidence: float = 0.0,
        backend: str = "auto",
        kprpe_grid: str = "stage",
        compact_buckets: bool = False,
    ) -> None:
        super().__init__()
        if len(depths) != 2 or len(num_heads) != 2:
            raise ValueError(f"SwinGait-2D has two stages: got depths {depths!r}, num_heads {num_heads!r}")
        self.grid_size = grid_size
        self.num_features = 2 * embed_dim
        self.patch_embed = PatchEmbed2D(in_channels, embed_dim)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        common = {
            "grid_size": grid_size,
            "window_size": window_size,
            "rel_pos": rel_pos,
            "kprpe_variant": kprpe_variant,
            "num_joints": num_joints,
            "min_confidence": min_confidence,
            "backend": backend,
            "kprpe_grid": kprpe_grid,
            "compact_buckets": compact_buckets,
        }
        self.stages = nn.ModuleList(
            [
                SwinStage2D(
                    embed_dim, depths[0], num_heads[0], drop_path=rates[: depths[0]], out_dim=2 * embed_dim, **common
                ),
                SwinStage2D(2 * embed_dim, depths[1], num_heads[1], drop_path=rates[depths[0] :], **common),
            ]
        )
        self.norm = nn.LayerNorm(self.num_features)

    def forward(self, x: torch.Tensor, joints: torch.Tensor | None = None) -> torch.Tensor:
        x = self.patch_embed(x)  # (B, h, w, C)
        for stage in self.stages:
            x = stage(x, joints)
        return self.norm(x)


class SwinGait2D(nn.Module):
    """SwinGait-2D gait recognition network (module docstring), optionally with window KP-RPE.

    Args:
        num_classes: training identities (classifier width of the BNNecks).
        rel_pos: ``"swin"`` (baseline), ``"kprpe"`` or ``"none"``.
        kprpe_variant: any key of :data:`kprpe.core.VARIANTS`.
        kprpe_grid: ``"stage"`` (M over the 15x10 token grid, the authors' released code) or ``"window"``
            (M the size of the 3x5 window, the paper's wording); module docstring.
        kprpe_compact_buckets: KP-RPE tables with a column only for the 35 of 49 buckets a 3x5 window
            reaches (no ``W_L`` column without a gradient; checkpoints of the two forms do not mix).
        num_joints: joints per frame (17 COCO joints).
        min_confidence: joints with confidence ``<= min_confidence`` contribute nothing.
        in_channels: input channels per frame (1 for silhouettes).
        channels: widths of the conv stem ``(c0, c1)``.
        layers: ``(blocks at c0, blocks at c1, stage-1 depth, stage-2 depth)`` (OpenGait's ``B1442``).
        embed_dim: stage-1 width (stage 2 has twice as many channels).
        num_heads: heads of the two stages.
        window_size: attention window ``(rows, cols)`` in tokens.
        token_grid: ``(h, w)`` tokens; the stem output is resized to twice this and cut into 2x2 patches.
        bin_num: horizontal strips (int or list, OpenGait's ``bin_num``); ``token_grid[0]`` must be divisible by each.
        parts_num: parts of SeparateFCs / BNNecks; must be ``sum(bin_num) + 1`` (OpenGait's extra part).
        out_channels: embedding channels per part.
        drop_path_rate: stochastic depth of the last block.
        backend: attention backend (``"auto"``: SDPA on CPU, flex where it is faster on CUDA).

    Shape:
        - sils: ``(n, s, h, w)`` in ``[0, 1]`` (or ``(n, s, in_channels, h, w)``)
        - joints: ``(n, s, J, 3)`` ``(x, y)`` in ``[0, 1]`` of the same frame, confidence; required when
          ``rel_pos="kprpe"``, ignored otherwise
        - seqL: ``None`` or, with ``n == 1``, lengths of the sequences packed along ``s``
        - output: dict with ``embeddings`` ``(n', out_channels, p)``, ``bnneck`` ``(n', out_channels, p)``
          and ``logits`` ``(n', num_classes, p)``, ``p = parts_num - 1``, ``n' = len(seqL)`` or ``n``

    Example:
        >>> net = SwinGait2D(num_classes=10, rel_pos="kprpe")
        >>> out = net(torch.rand(2, 4, 64, 44), torch.rand(2, 4, 17, 3))
        >>> out["embeddings"].shape
        torch.Size([2, 256, 15])
    """

    def __init__(
        self,
        num_classes: int,
        rel_pos: str = "swin",
        kprpe_variant: str = "multihead",
        num_joints: int = 17,
        min_confidence: float = 0.0,
        in_channels: int = 1,
        channels: Sequence[int] = (64, 128),
        layers: Sequence[int] = (1, 4, 4, 2),
        embed_dim: int = 256,
        num_heads: Sequence[int] = (16, 32),
        window_size: Sequence[int] = (3, 5),
        token_grid: Sequence[int] = (15, 10),
        bin_num: int | Sequence[int] = 15,
        parts_num: int = 16,
        out_channels: int = 256,
        drop_path_rate: float = 0.1,
        backend: str = "auto",
        kprpe_grid: str = "stage",
        kprpe_compact_buckets: bool = False,
    ) -> None:
        super().__init__()
        if rel_pos not in REL_POS:
            raise ValueError(f"unknown rel_pos {rel_pos!r}; choose one of {sorted(REL_POS)}")
        if kprpe_variant not in VARIANTS:
            raise ValueError(f"unknown kprpe_variant {kprpe_variant!r}; choose one of {sorted(VARIANTS)}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if len(channels) != 2 or len(layers) != 4 or len(num_heads) != 2:
            raise ValueError(
                f"expected channels (c0, c1), layers (4 ints) and num_heads (2 ints); got {channels!r}, "
                f"{layers!r}, {num_heads!r}"
            )
        bins = [bin_num] if isinstance(bin_num, int) else list(bin_num)
        if parts_num != sum(bins) + 1:
            raise ValueError(
                f"parts_num must be sum(bin_num) + 1 = {sum(bins) + 1} (OpenGait's extra detached part), "
                f"got {parts_num}"
            )
        if kprpe_grid not in TABLE_GRIDS:
            raise ValueError(f"unknown kprpe_grid {kprpe_grid!r}; choose one of {TABLE_GRIDS}")
        if not isinstance(kprpe_compact_buckets, bool):  # a YAML "false" string must not read as true
            raise ValueError(f"kprpe_compact_buckets must be true or false, got {kprpe_compact_buckets!r}")
        self.token_grid = as_pair(token_grid, "token_grid", minimum=1)
        self.window_size = as_pair(window_size, "window_size", minimum=1)
        if any(self.token_grid[0] % b for b in bins):
            raise ValueError(f"token_grid height {self.token_grid[0]} is not divisible by every bin of {bins}")
        self.num_classes = num_classes
        self.rel_pos = rel_pos
        self.kprpe_variant = kprpe_variant
        self.kprpe_grid = kprpe_grid
        self.kprpe_compact_buckets = bool(kprpe_compact_buckets)
        self.num_joints = num_joints
        self.in_channels = in_channels

        c0, c1 = int(channels[0]), int(channels[1])
        self.layer0 = nn.Sequential(
            nn.Conv2d(in_channels, c0, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True)
        )
        self.layer1 = make_res_layer(c0, c0, layers[0])
        self.layer2 = make_res_layer(c0, c1, layers[1], stride=2)
        self.transformer = SwinTransformer2D(
            c1,
            embed_dim,
            layers[2:],
            num_heads,
            self.token_grid,
            self.window_size,
            drop_path_rate,
            rel_pos,
            kprpe_variant,
            num_joints,
            min_confidence,
            backend,
            kprpe_grid,
            self.kprpe_compact_buckets,
        )
        self.num_features = self.transformer.num_features
        self.hpp = HorizontalPoolingPyramid(bins)
        self.fcs = SeparateFCs(parts_num, self.num_features, out_channels)
        self.bnnecks = SeparateBNNecks(parts_num, out_channels, num_classes)
        self.reset_parameters()

    # ------------------------------------------------------------------ init and optimiser groups
    def reset_parameters(self) -> None:
        """OpenGait's SwinGait init, then Swin's bias tables (trunc-normal 0.02) and every ``W_L`` (zeros).

        Linear: trunc-normal(0.02) weights, zero bias; LayerNorm: 1, 0; Conv: xavier-uniform, zero bias;
        BatchNorm: weight N(1, 0.02), bias 0, fresh running statistics; part matrices: xavier-uniform.
        """
        for m in shared_modules(self):  # paired: the same draws whatever rel_pos (position modules after)
            init_linear_and_norm(m)
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (SeparateFCs, SeparateBNNecks)):
                nn.init.xavier_uniform_(m.fc_bin)
        with position_rng():  # after the generic pass, from a forked stream: paired across rel_pos
            for m in self.modules():
                if isinstance(m, (RelPosBias, KeypointRPE)):
                    m.reset_parameters()

    def param_groups(self, lr: float, weight_decay: float, stem_lr_scale: float = 1.0) -> list[dict]:
        """Optimiser groups of OpenGait's SwinGait.

        * transformer norms, patch embedding and the position encodings (Swin bias tables, KP-RPE ``W_L``:
          the rule of :mod:`kprpe.core.decay`, shared with the ViT): ``lr``, no weight decay;
        * the rest of the transformer: ``lr``, ``weight_decay``;
        * conv stem, SeparateFCs and BNNecks: ``stem_lr_scale * lr``, ``weight_decay``. 1.0 (the default)
          trains from scratch; OpenGait's 0.1 fits its recipe, which starts these layers from a trained
          DeepGaitV2 (:mod:`kprpe_gait.models.deepgaitv2`).
        """
        # one pass in module order (the order older checkpoints' optimiser states were saved in)
        no_decay: list[nn.Parameter] = []
        no_decay_ids: set[int] = set()
        for name, module in self.transformer.named_modules():
            if isinstance(module, (nn.LayerNorm, *POSITION_MODULES)) or name.startswith("patch_embed"):
                for p in module.parameters():
                    if id(p) not in no_decay_ids:
                        no_decay_ids.add(id(p))
                        no_decay.append(p)
        decay = [p for p in self.transformer.parameters() if id(p) not in no_decay_ids]
        slow = [p for m in (self.layer0, self.layer1, self.layer2, self.fcs, self.bnnecks) for p in m.parameters()]
        groups = [
            {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": "transformer_no_decay"},
            {"params": decay, "lr": lr, "weight_decay": weight_decay, "name": "transformer"},
            {"params": slow, "lr": stem_lr_scale * lr, "weight_decay": weight_decay, "name": "stem_and_heads"},
        ]
        return [g for g in groups if g["params"]]

    # ------------------------------------------------------------------ forward
    def _check_inputs(
        self, sils: torch.Tensor, joints: torch.Tensor | None, seqL: Sequence[int] | torch.Tensor | None
    ) -> list[int] | None:
        if not torch.is_tensor(sils) or not sils.is_floating_point():
            raise TypeError(f"sils must be a floating-point tensor, got {getattr(sils, 'dtype', type(sils).__name__)}")
        frame_dims = 2 if self.in_channels == 1 and sils.dim() == 4 else 3
        if sils.dim() != 2 + frame_dims or (frame_dims == 3 and sils.shape[2] != self.in_channels):
            expected = "(n, s, h, w)" if self.in_channels == 1 else f"(n, s, {self.in_channels}, h, w)"
            raise ValueError(f"sils must have shape {expected}, got {tuple(sils.shape)}")
        n, s = sils.shape[:2]
        if n < 1 or s < 1:
            raise ValueError(f"sils has no frames: shape {tuple(sils.shape)}")
        if self.rel_pos == "kprpe":
            if joints is None:
                raise ValueError("rel_pos='kprpe' needs joints (n, s, J, 3) in [0, 1] of the input frame")
            if not torch.is_tensor(joints) or joints.dim() != 4 or joints.shape[-1] not in (2, 3):
                raise ValueError(
                    f"joints must have shape (n, s, J, 3) with (x, y, confidence), got "
                    f"{tuple(joints.shape) if torch.is_tensor(joints) else type(joints).__name__}"
                )
            if tuple(joints.shape[:2]) != (n, s):
                raise ValueError(
                    f"joints cover {tuple(joints.shape[:2])} (sequences, frames) but sils {(n, s)}: frame counts differ"
                )
            if joints.shape[2] != self.num_joints:
                raise ValueError(
                    f"got {joints.shape[2]} joints per frame but the model was built for {self.num_joints}"
                )
        lengths = seq_lengths(seqL, s)
        if lengths is not None and n != 1:
            raise ValueError(f"seqL packs sequences along time and needs n == 1, got n = {n}")
        return lengths

    def forward_frames(self, sils: torch.Tensor, joints: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame feature maps: ``(n, s, h, w)`` (+ joints) -> ``(n, s, num_features, gh, gw)``."""
        n, s = sils.shape[:2]
        x = sils.reshape(n * s, self.in_channels, *sils.shape[-2:])  # frames are the batch
        x = self.layer2(self.layer1(self.layer0(x)))  # (n*s, c1, h/2, w/2)
        gh, gw = self.token_grid
        x = F.interpolate(x, size=(2 * gh, 2 * gw), mode="bilinear", align_corners=True)  # (n*s, c1, 2gh, 2gw)
        frame_joints = None
        if self.rel_pos == "kprpe":
            # float32 (not x.dtype): under bf16 autocast x is bf16 and would round the joint positions
            frame_joints = joints.reshape(n * s, *joints.shape[2:]).float()  # (n*s, J, 3)
        x = self.transformer(x, frame_joints)  # (n*s, gh, gw, C)
        return x.view(n, s, gh, gw, -1).permute(0, 1, 4, 2, 3)

    def forward_features(
        self,
        sils: torch.Tensor,
        joints: torch.Tensor | None = None,
        seqL: Sequence[int] | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Temporally pooled feature map ``(n', num_features, gh, gw)``."""
        lengths = self._check_inputs(sils, joints, seqL)
        return temporal_max(self.forward_frames(sils, joints), lengths)

    def forward_head(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pooled map ``(n', C, gh, gw)`` -> embeddings, BNNeck features and logits (part layout)."""
        parts = self.hpp(feats)  # (n', C, p-1)
        parts = torch.cat([parts, parts[:, :, -1:].detach()], dim=-1)  # (n', C, p)
        embeddings = self.fcs(parts)  # (n', out, p)
        bnneck, logits = self.bnnecks(embeddings)
        return {"embeddings": embeddings[..., :-1], "bnneck": bnneck[..., :-1], "logits": logits[..., :-1]}

    def forward(
        self,
        sils: torch.Tensor,
        joints: torch.Tensor | None = None,
        seqL: Sequence[int] | torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        return self.forward_head(self.forward_features(sils, joints, seqL))

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, rel_pos={self.rel_pos!r}, kprpe_variant={self.kprpe_variant!r}, "
            f"kprpe_grid={self.kprpe_grid!r}, num_joints={self.num_joints}, token_grid={self.token_grid}, "
            f"window_size={self.window_size}" + (", kprpe_compact_buckets=True" if self.kprpe_compact_buckets else "")
        )
