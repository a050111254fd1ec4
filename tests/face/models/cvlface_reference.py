"""An independent transcription of the authors' face ViT (CVLface ``models/vit*``), for parity tests only.

Written from their published module and key names: ``patch_embed.proj``, ``pos_embed``,
``blocks.{i}.{norm1,attn.qkv,attn.proj,attn.rpe_k.lookup_table_weight,norm2,mlp.fc1,mlp.fc2}``, ``norm``,
``feature.{0..3}``, ``keypoint_linear``. The forward pass follows theirs step by step: the channel flip of
BGR models, their patch-centre grid (``linspace`` midpoints, ``meshgrid`` ``ij`` then ``(col, row)``),
their keypoint offsets and ``keypoint_linear`` split (``view(B, N, T, 49).transpose(1, 2)`` then ``chunk``
by depth), their iRPE piecewise bucket formula, and the bias looked up per query row through the
flattened ``bucket + row * 49`` index, added after ``q`` is scaled. Nothing here imports ``kprpe``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BUCKETS = 49  # product method, ratio 1.9


def their_layout(
    embed_dim: int, depth: int, heads: int, mlp_ratio: float, output_dim: int, rpe: str = "none",
    tables: int = 0, patch: int = 8, img: int = 112, mask_token: bool = False,
) -> dict[str, tuple[int, ...]]:  # fmt: skip
    """Key -> shape of their ``VisionTransformer*`` state dict (no prefix)."""
    c, n, hidden = embed_dim, (img // patch) ** 2, int(embed_dim * mlp_ratio)
    shapes: dict[str, tuple[int, ...]] = {"pos_embed": (1, n, c)}
    if mask_token:
        shapes["mask_token"] = (1, 1, c)
    shapes |= {"patch_embed.proj.weight": (c, 3, patch, patch), "patch_embed.proj.bias": (c,)}
    for i in range(depth):
        b = f"blocks.{i}."
        shapes |= {b + "norm1.weight": (c,), b + "norm1.bias": (c,), b + "attn.qkv.weight": (3 * c, c)}
        shapes |= {b + "attn.proj.weight": (c, c), b + "attn.proj.bias": (c,)}
        if rpe == "irpe":
            shapes[b + "attn.rpe_k.lookup_table_weight"] = (1, c // heads, BUCKETS)
        shapes |= {b + "norm2.weight": (c,), b + "norm2.bias": (c,)}
        shapes |= {b + "mlp.fc1.weight": (hidden, c), b + "mlp.fc1.bias": (hidden,)}
        shapes |= {b + "mlp.fc2.weight": (c, hidden), b + "mlp.fc2.bias": (c,)}
    shapes |= {"norm.weight": (c,), "norm.bias": (c,), "feature.0.weight": (c, n * c)}
    for j, width in ((1, c), (3, output_dim)):
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"feature.{j}.{name}"] = (width,)
        shapes[f"feature.{j}.num_batches_tracked"] = ()
        if j == 1:
            shapes["feature.2.weight"] = (output_dim, c)
    if rpe == "kprpe":
        shapes |= {"keypoint_linear.weight": (tables * BUCKETS, 10), "keypoint_linear.bias": (tables * BUCKETS,)}
    return shapes


def parity_inputs(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(B, 3, 112, 112)`` in ``[-1, 1]`` and landmarks ``(B, 5, 2)`` inside the face, seeded."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, 112, 112, generator=g) * 2 - 1
    landmarks = torch.rand(batch, 5, 2, generator=g) * 0.6 + 0.2
    return images, landmarks


def random_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights at scales that keep activations O(1) and make every bias table matter."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        elif "norm" in key and key.endswith("weight") or key.startswith("feature.") and key.endswith("1.weight"):
            out[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif key.startswith("keypoint_linear") or "lookup_table" in key:
            out[key] = torch.randn(shape, generator=g)
        elif len(shape) >= 2 and key != "pos_embed":
            fan_in = math.prod(shape[1:])
            out[key] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        else:
            out[key] = 0.1 * torch.randn(shape, generator=g)
    return out


def _piecewise(rp: torch.Tensor, alpha: float, beta: float, gamma: float) -> torch.Tensor:
    """Their ``piecewise_index`` on integer offsets."""
    out = rp.clone()
    far = rp.abs() > alpha
    x = rp[far]
    y = torch.sign(x) * (alpha + torch.log(x.abs() / alpha) / math.log(gamma / alpha) * (beta - alpha)).round().clip(
        max=beta
    )
    out[far] = y.to(rp.dtype)
    return out


def their_buckets(side: int, ratio: float = 1.9) -> torch.Tensor:
    """Their product bucket ids ``(L, L)`` for a ``side x side`` grid (``diff = pos[query] - pos[key]``)."""
    alpha, beta, gamma = ratio, 2 * ratio, 8 * ratio
    rows = torch.arange(side).view(side, 1).repeat(1, side)
    cols = torch.arange(side).view(1, side).repeat(side, 1)
    pos = torch.stack([rows, cols], 2).view(-1, 2)
    diff = pos[:, None, :] - pos[None, :, :]
    b = int(beta)
    return (
        (_piecewise(diff[..., 0], alpha, beta, gamma) + b) * (2 * b + 1)
        + _piecewise(diff[..., 1], alpha, beta, gamma)
        + b
    )


def _keypoint_ctx(sd, landmarks, tokens, heads, depth, ctx_type):
    side = int(math.sqrt(tokens))
    coord = torch.linspace(0, 1, side + 1)
    coord = (coord[:-1] + coord[1:]) / 2
    gx, gy = torch.meshgrid(coord, coord, indexing="ij")
    grid = torch.stack([gy, gx], dim=-1).reshape(-1, 2).unsqueeze(0).unsqueeze(-2)  # (1, N, 1, 2)
    rel = (grid - landmarks.unsqueeze(-3)).flatten(2)  # (B, N, 10)
    out = F.linear(rel, sd["keypoint_linear.weight"], sd["keypoint_linear.bias"])
    batch = out.shape[0]
    if ctx_type == "rel_keypoint":
        return [out.unsqueeze(1)] * depth
    if ctx_type == "rel_keypoint_splithead":
        return [out.view(batch, -1, heads, BUCKETS).transpose(1, 2)] * depth
    if ctx_type == "rel_keypoint_unshared":
        return list(torch.chunk(out.view(batch, -1, depth, BUCKETS).transpose(1, 2), depth, dim=1))
    assert ctx_type == "rel_keypoint_splithead_unshared"
    return list(torch.chunk(out.view(batch, -1, heads * depth, BUCKETS).transpose(1, 2), depth, dim=1))


def their_forward(
    sd: dict[str, torch.Tensor], heads: int, images: torch.Tensor, landmarks: torch.Tensor | None = None,
    ctx_type: str = "rel_keypoint_splithead_unshared", bgr: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Embedding ``(B, output_dim)`` of their model in eval mode with weights ``sd`` (their keys, no prefix)."""
    if bgr:
        images = images.flip(1)
    weight = sd["patch_embed.proj.weight"]
    x = F.conv2d(images, weight, sd["patch_embed.proj.bias"], stride=weight.shape[-1]).flatten(2).transpose(1, 2)
    x = x + sd["pos_embed"]
    batch, tokens, dim = x.shape
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    head_dim = dim // heads
    scale = head_dim**-0.5
    flat = (their_buckets(int(math.sqrt(tokens))) + torch.arange(tokens)[:, None] * BUCKETS).flatten()
    ctx = _keypoint_ctx(sd, landmarks, tokens, heads, depth, ctx_type) if "keypoint_linear.weight" in sd else None
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (dim,), sd[p + "norm1.weight"], sd[p + "norm1.bias"])
        qkv = F.linear(h, sd[p + "attn.qkv.weight"], sd.get(p + "attn.qkv.bias"))
        qkv = qkv.reshape(batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * scale
        attn = q @ k.transpose(-2, -1)
        if ctx is not None:
            c = ctx[i]
            attn = attn + c.flatten(2)[:, :, flat].view(batch, -1, tokens, tokens)
        lookup = sd.get(p + "attn.rpe_k.lookup_table_weight")
        if lookup is not None:
            table = torch.matmul(q.transpose(0, 1).reshape(-1, batch * tokens, head_dim), lookup)
            table = table.view(-1, batch, tokens, BUCKETS).transpose(0, 1)
            attn = attn + table.flatten(2)[:, :, flat].view(batch, -1, tokens, tokens)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, tokens, dim)
        x = x + F.linear(out, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        h = F.layer_norm(x, (dim,), sd[p + "norm2.weight"], sd[p + "norm2.bias"])
        x = x + F.linear(
            F.relu6(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
            sd[p + "mlp.fc2.weight"],
            sd[p + "mlp.fc2.bias"],
        )
    x = F.layer_norm(x, (dim,), sd["norm.weight"], sd["norm.bias"]).reshape(batch, tokens * dim)
    return their_head(sd, x)


def their_head(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Their ``feature`` head (ViT and Swin alike) in eval mode: Linear, BatchNorm1d, Linear, BatchNorm1d."""
    for lin, bn in ((0, 1), (2, 3)):
        x = F.linear(x, sd[f"feature.{lin}.weight"])
        x = F.batch_norm(
            x, sd[f"feature.{bn}.running_mean"], sd[f"feature.{bn}.running_var"], sd[f"feature.{bn}.weight"],
            sd[f"feature.{bn}.bias"], training=False, eps=2e-5,
        )  # fmt: skip
    return x
