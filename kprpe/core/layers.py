"""Transformer layers that thread a bucket-table bias through attention.

:class:`Attention` takes its bias either from outside (a KP-RPE table and its bucket map, passed to
``forward``) or from a module it owns (``rpe=RelPosBias(...)`` or ``rpe=ContextualRPE(...)``), never
both. Without any, it is plain ``scaled_dot_product_attention``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import kprpe_attention
from .baselines import ContextualRPE, ContinuousPositionBias, RelPosBias

__all__ = ["Attention", "Mlp", "DropPath", "Block", "init_linear_and_norm"]


def init_linear_and_norm(module: nn.Module) -> None:
    """timm's ViT init of one module: ``nn.Linear`` weights trunc-normal(0.02) and biases 0, ``nn.LayerNorm``
    1 and 0; other modules are left alone. Call it on ``model.modules()`` in order (the random draws follow
    that order)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability ``p`` in training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """``Linear -> act -> Dropout -> Linear -> Dropout``; ``act_layer`` is GELU by default (ReLU6 in the
    authors' face ViT)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0, act_layer: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    """Multi-head self-attention with an optional bucket-table bias.

    Args:
        dim: token channels ``C``.
        num_heads: heads ``H`` (``C`` must be divisible by ``H``).
        qkv_bias: bias in the qkv projection.
        attn_drop: attention dropout.
        proj_drop: output dropout.
        backend: :func:`kprpe.core.kprpe_attention` backend used when there is a bias.
        rpe: optional bias module the layer owns: :class:`RelPosBias`, :class:`ContinuousPositionBias` or
            :class:`ContextualRPE`.
        cosine: Swin V2's scaled cosine attention: logits ``cos(q, k) * exp(min(s_h, log 100))`` with a
            learned ``logit_scale`` ``s_h`` per head (``log 10`` at init) instead of ``q . k / sqrt(d)``;
            the key part of the qkv bias is not used (held at zero, as in Swin V2). The bias is added to
            these logits unscaled.

    Shape:
        - x: ``(B, N, C)``
        - table: ``(B|1, H|1, N, K)`` with ``buckets`` ``(N, N)``, e.g. a ``KeypointRPE`` layer table
        - attn_mask: broadcastable to ``(B, H, N, N)``, additive float or bool (True = attend)
        - output: ``(B, N, C)``
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        backend: str = "auto",
        rpe: RelPosBias | ContinuousPositionBias | ContextualRPE | None = None,
        cosine: bool = False,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if cosine and isinstance(rpe, ContextualRPE):
            raise ValueError("cosine attention with iRPE's contextual RPE is not defined (it reads the scaled q)")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.backend = backend
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.rpe = rpe
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0))) if cosine else None
        if cosine and qkv_bias:
            with torch.no_grad():
                self.qkv.bias[dim : 2 * dim].zero_()

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """``q, k, v`` ``(B, H, N, d)`` as the logits read them and the logit scale: the logits before any
        bias are ``(q @ k^T) * scale`` (for ``cosine``, ``q`` and ``k`` are normalised, ``q`` carries the
        clamped per-head scale and ``scale`` is 1)."""
        batch, tokens, channels = x.shape
        bias = self.qkv.bias
        if self.logit_scale is not None and bias is not None:  # cosine attention: Swin V2 holds the key bias at zero
            bias = torch.cat([bias[:channels], torch.zeros_like(bias[channels : 2 * channels]), bias[2 * channels :]])
            qkv = F.linear(x, self.qkv.weight, bias)
        else:
            qkv = self.qkv(x)
        qkv = qkv.view(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.logit_scale is None:
            return q, k, v, self.scale
        q = F.normalize(q, dim=-1) * torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        return q, F.normalize(k, dim=-1), v, 1.0

    def forward(
        self,
        x: torch.Tensor,
        table: torch.Tensor | None = None,
        buckets: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch, tokens, channels = x.shape
        q, k, v, scale = self.heads(x)  # each (B, H, N, d)
        dropout_p = self.attn_drop if self.training else 0.0
        if self.rpe is not None:
            if table is not None:
                raise ValueError("this Attention owns its rpe module; do not also pass a table")
            table = self.rpe(q, scale) if isinstance(self.rpe, ContextualRPE) else self.rpe()
            buckets = self.rpe.buckets
        if table is not None:
            if buckets is None:
                raise ValueError("a bias table needs its bucket map: pass buckets=")
            out = kprpe_attention(q, k, v, table, buckets, self.backend, attn_mask, dropout_p, scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)
        out = out.transpose(1, 2).reshape(batch, tokens, channels)  # (B, N, C)
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}, backend={self.backend!r}" + (
            ", cosine=True" if self.logit_scale is not None else ""
        )


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``.

    Args:
        dim, num_heads, qkv_bias, attn_drop, backend, rpe: as :class:`Attention`.
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        drop: dropout after the projections.
        act_layer: the MLP's activation class (``nn.GELU`` default).
        drop_path: stochastic-depth probability.

    Shape:
        as :class:`Attention`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        backend: str = "auto",
        rpe: RelPosBias | ContextualRPE | None = None,
        act_layer: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop, backend, rpe)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop, act_layer)

    def forward(
        self,
        x: torch.Tensor,
        table: torch.Tensor | None = None,
        buckets: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), table, buckets, attn_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))
