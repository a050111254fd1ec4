"""KeypointRPE: per-query attention-bias tables computed from keypoints (the paper's ``f(P)``).

For keypoints ``P`` (B, L, 2) and the token grid ``M`` (N, 2), the relative variants form the offsets
``D = M - P`` (B, N, 2L) and map them linearly with ``W_L``; the absolute variant maps the flattened
keypoints (B, 2L) instead, giving one row shared by all queries. The bias of a (query i, key j) pair in
layer ``l`` and head ``h`` is then ``tables[l][b, h, i, buckets[i, j]]``.

Variants (paper Table 2, plus the two intermediate ones seen in the authors' code):

============  ========  ========  =========  ===================================
variant       relative  per head  per layer  ``W_L`` output columns
============  ========  ========  =========  ===================================
absolute      no        no        no         ``K``
relative      yes       no        no         ``K``
per_head      yes       yes       no         ``H * K``
per_layer     yes       no        yes        ``depth * K``
multihead     yes       yes       yes        ``depth * H * K`` (released, default)
============  ========  ========  =========  ===================================

Columns are ordered ``(depth, head, bucket)``, the layout of the authors' released checkpoints. ``W_L``
(``self.proj``) is zero-initialised, so a freshly built model computes exactly what the same model
without the bias computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .buckets import product_buckets
from .geometry import keypoint_offsets, patch_centers, split_keypoints

__all__ = ["KeypointRPE", "VARIANTS"]

# variant -> (relative, per_head, per_layer)
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "absolute": (False, False, False),
    "relative": (True, False, False),
    "per_head": (True, True, False),
    "per_layer": (True, False, True),
    "multihead": (True, True, True),
}


class KeypointRPE(nn.Module):
    """Keypoint-dependent bias tables for the ``depth`` attention layers of a transformer.

    Args:
        num_keypoints: ``L``, keypoints per sample (5 for faces, 17 for COCO body joints).
        grid_size: ``(h, w)`` of the token grid the tables are built for.
        num_heads: ``H``, attention heads per layer.
        depth: number of attention layers that receive a table.
        variant: one of :data:`VARIANTS` (default ``"multihead"``, the released one).
        ratio: bucket ratio of the product bucket map (``K = 49`` for 1.9).
        num_prefix_tokens: tokens before the grid (e.g. CLS). Their pairs use an extra bucket ``K``.
            In the relative variants a prefix query's features are zero offsets, so its rows do not
            depend on the keypoints: ``f(0)``, which is ``W_L``'s bias for the linear map and
            ``proj(GELU(b_1))`` with ``hidden_dim`` (``b_1`` the first layer's bias). In the absolute
            variant every row, prefix rows included, is the same keypoint-dependent row.
        hidden_dim: if set, ``f(P)`` is a 2-layer MLP (``2L -> hidden_dim -> GELU -> out``) whose last
            layer is ``proj`` and is zero-initialised; ``None`` (default) is the paper's linear map.
        min_confidence: keypoints with confidence ``<= min_confidence`` (or NaN) contribute nothing
            (see :mod:`kprpe.core.geometry`).
        keypoint_grad: let gradients flow into the keypoints (off in the reference, which computes
            ``D`` under ``no_grad``).
        used_buckets: the buckets the tables get a column for, increasing ids of the full map (default
            all ``K'``). Column ``k`` then stands for bucket ``used_buckets[k]``, so a bucket that the
            attention's map never reaches costs no parameters and no ``W_L`` column goes without a
            gradient: a Swin window's map reaches 35 of the 49 buckets
            (:func:`kprpe.core.compact_window_buckets` gives them and the renumbered map to gather with).

    Shape:
        - keypoints: ``(B, L, 2)`` ``(x, y)`` in ``[0, 1]``, or ``(B, L, 3)`` with confidence.
        - output of :meth:`forward`: list of ``depth`` tables, each ``(B, H, N', K')`` with
          ``N' = num_prefix_tokens + h*w`` and ``K' = K + (1 if num_prefix_tokens else 0)``
          (``len(used_buckets)`` when given). Shared variants return expanded views (no copies).

    Attributes:
        proj: the ``nn.Linear`` ``W_L``; output columns ordered ``(depth, head, bucket)``.
        buckets: ``(N', N')`` int64 product bucket map of the grid (non-persistent buffer), renumbered to
            the table's columns with ``used_buckets``; ``None`` when the grid's own map reaches a bucket
            outside ``used_buckets`` (a Swin stage-grid table, gathered with the window's map instead).
        used_buckets: ``(K',)`` int64, the full-map bucket of each table column (non-persistent buffer).
        grid: ``(h*w, 2)`` token centres (non-persistent buffer).

    Example:
        >>> rpe = KeypointRPE(num_keypoints=5, grid_size=(14, 14), num_heads=8, depth=12)
        >>> tables = rpe(torch.rand(2, 5, 2))
        >>> len(tables), tables[0].shape
        (12, torch.Size([2, 8, 196, 49]))
    """

    def __init__(
        self,
        num_keypoints: int,
        grid_size: Sequence[int],
        num_heads: int,
        depth: int = 1,
        variant: str = "multihead",
        ratio: float = 1.9,
        num_prefix_tokens: int = 0,
        hidden_dim: int | None = None,
        min_confidence: float = 0.0,
        keypoint_grad: bool = False,
        used_buckets: Sequence[int] | torch.Tensor | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown KP-RPE variant {variant!r}; choose one of {sorted(VARIANTS)}")
        for name, value in (("num_keypoints", num_keypoints), ("num_heads", num_heads), ("depth", depth)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if len(grid_size) != 2:
            raise ValueError(f"grid_size must be (h, w), got {grid_size!r}")
        if hidden_dim is not None and (not isinstance(hidden_dim, int) or hidden_dim < 1):
            raise ValueError(f"hidden_dim must be a positive int or None, got {hidden_dim!r}")
        factory = {"device": device, "dtype": dtype}
        self.num_keypoints = num_keypoints
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.num_heads = num_heads
        self.depth = depth
        self.variant = variant
        self.relative, self.per_head, self.per_layer = VARIANTS[variant]
        self.ratio = float(ratio)
        self.num_prefix_tokens = num_prefix_tokens
        self.min_confidence = float(min_confidence)
        self.keypoint_grad = keypoint_grad

        buckets, full_buckets = product_buckets(*self.grid_size, ratio, num_prefix_tokens, device=device)
        used = _check_used_buckets(used_buckets, full_buckets, device)
        self.num_buckets = int(used.numel())
        self._full_num_buckets = full_buckets
        self.register_buffer("used_buckets", used, persistent=False)
        self.register_buffer("buckets", _renumber(buckets, used, full_buckets), persistent=False)
        self.register_buffer(
            "grid", patch_centers(*self.grid_size, device=device, dtype=dtype or torch.float32), persistent=False
        )

        in_features = 2 * num_keypoints
        self._heads_out = num_heads if self.per_head else 1
        self._layers_out = depth if self.per_layer else 1
        out_features = self._layers_out * self._heads_out * self.num_buckets
        if hidden_dim is None:
            self.hidden = None
            self.proj = nn.Linear(in_features, out_features, **factory)
        else:
            self.hidden = nn.Sequential(nn.Linear(in_features, hidden_dim, **factory), nn.GELU())
            self.proj = nn.Linear(hidden_dim, out_features, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero ``W_L`` (the model starts as the same model without bias); default-init the MLP."""
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        if self.hidden is not None:
            self.hidden[0].reset_parameters()

    @property
    def num_tokens(self) -> int:
        """``N'``: prefix tokens plus grid tokens."""
        return self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]

    def features(self, keypoints: torch.Tensor) -> torch.Tensor:
        """The input of ``proj``: ``(B, N', 2L)`` offsets (relative) or ``(B, 1, 2L)`` keypoints (absolute),
        passed through the hidden MLP when there is one."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.keypoint_grad):
            coords, valid = split_keypoints(keypoints, self.num_keypoints, self.min_confidence)
            coords = coords.to(self.proj.weight.dtype)
            if self.relative:
                feats = keypoint_offsets(coords, valid, self.grid)  # (B, N, 2L)
                if self.num_prefix_tokens:  # prefix queries: zero offsets (rows f(0), whatever the keypoints)
                    feats = F.pad(feats, (0, 0, self.num_prefix_tokens, 0))
            else:
                feats = coords.flatten(1)[:, None, :]  # (B, 1, 2L)
            if not self.keypoint_grad:
                feats = feats.detach()
        if self.hidden is not None:
            feats = self.hidden(feats)
        return feats

    def layer_table(self, features: torch.Tensor, layer: int) -> torch.Tensor:
        """Table of one layer from :meth:`features`: ``(B, H, N', K')``.

        Computing each layer's table when it is needed keeps only one table alive at a time, which
        is cheaper than materialising all ``depth`` tables at once.
        """
        if not 0 <= layer < self.depth:
            raise IndexError(f"layer {layer} out of range for depth {self.depth}")
        rows = self._heads_out * self.num_buckets
        start = (layer if self.per_layer else 0) * rows
        weight = self.proj.weight[start : start + rows]
        bias = self.proj.bias[start : start + rows]
        out = F.linear(features, weight, bias)  # (B, N' or 1, heads_out * K')
        batch, queries = out.shape[:2]
        table = out.view(batch, queries, self._heads_out, self.num_buckets).permute(0, 2, 1, 3)
        return table.expand(batch, self.num_heads, self.num_tokens, self.num_buckets)

    def forward(self, keypoints: torch.Tensor) -> list[torch.Tensor]:
        """Tables of all ``depth`` layers, each ``(B, H, N', K')``."""
        feats = self.features(keypoints)
        return [self.layer_table(feats, layer) for layer in range(self.depth)]

    def extra_repr(self) -> str:
        h, w = self.grid_size
        s = (
            f"num_keypoints={self.num_keypoints}, grid_size=({h}, {w}), num_heads={self.num_heads}, "
            f"depth={self.depth}, variant={self.variant!r}, num_buckets={self.num_buckets}, ratio={self.ratio}"
        )
        if self.num_prefix_tokens:
            s += f", num_prefix_tokens={self.num_prefix_tokens}"
        if self.keypoint_grad:
            s += ", keypoint_grad=True"
        if self.num_buckets != self._full_num_buckets:
            s += f", used_buckets={self.num_buckets} of {self._full_num_buckets}"
        return s


def _check_used_buckets(
    used_buckets: Sequence[int] | torch.Tensor | None, full: int, device: torch.device | str | None
) -> torch.Tensor:
    """``used_buckets`` as an increasing int64 tensor of ids in ``[0, full)`` (all of them for ``None``)."""
    if used_buckets is None:
        return torch.arange(full, device=device)
    used = torch.as_tensor(used_buckets, device=device)
    if used.dim() != 1 or used.numel() == 0 or used.is_floating_point() or used.dtype == torch.bool:
        raise ValueError(f"used_buckets must be a non-empty 1-D sequence of ints, got {used_buckets!r}")
    used = used.long()
    if bool((used[1:] <= used[:-1]).any()) or int(used.min()) < 0 or int(used.max()) >= full:
        raise ValueError(f"used_buckets must be increasing bucket ids in [0, {full}), got {used.tolist()}")
    return used


def _renumber(buckets: torch.Tensor, used: torch.Tensor, full: int) -> torch.Tensor | None:
    """``buckets`` with every id replaced by its column in ``used``; ``None`` if one is not in ``used``."""
    column = torch.full((full,), -1, dtype=torch.long, device=buckets.device)
    column[used.to(buckets.device)] = torch.arange(used.numel(), device=buckets.device)
    out = column[buckets]
    return None if bool((out < 0).any()) else out
