"""An independent transcription of the authors' face Swin-KP-RPE (CVLface ``models/swin_kprpe``), for parity
tests only.

Written from their published code: ``swin/model.py`` (``features`` = patch conv + permute + LayerNorm, then
blocks and ``PatchMergingV2`` in order; ``norm``; flatten; ``feature.{0..3}``), ``swin/modules_v2.py`` and
torchvision's ``shifted_window_attention`` copied into ``swin/ops.py`` (pad, roll, partition, cosine
attention with the clamped ``logit_scale``, the key third of the qkv bias zeroed, the bias added, the -100
shift mask, reverse), ``rpe_options.py`` (per stage: ``make_grid_0_1`` on the stage's feature size,
``calc_rel_keypoints``, ``keypoint_linear``, ``view(B, N, sum(heads), 49).transpose(1, 2)`` split by block,
``split_window`` padding/rolling/partitioning the table, and the KPRPE module's flattened
``bucket + row * 49`` lookup per window) and Swin V2's continuous position bias for the same network
without keypoints. Nothing here imports ``kprpe`` or ``face``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from cvlface_reference import random_state_dict, their_buckets, their_head

BUCKETS = 49


def _feature_sizes(img: int, patch: int, stages: int) -> list[int]:
    """Their stage feature sizes, by running the shapes as their ``get_swin_config`` does."""
    side = (img - patch) // patch + 1  # Conv2d(kernel=stride=patch), no padding
    sizes = []
    for _ in range(stages):
        sizes.append(side)
        side = (side + side % 2) // 2  # _patch_merging_pad, then 0::2
    return sizes


def their_window_buffers(window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``relative_coords_table`` and ``relative_position_index`` as torchvision's V2 attention registers them."""
    h = torch.arange(-(window - 1), window, dtype=torch.float32)
    w = torch.arange(-(window - 1), window, dtype=torch.float32)
    table = torch.stack(torch.meshgrid([h, w], indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
    table[:, :, :, 0] /= window - 1
    table[:, :, :, 1] /= window - 1
    table *= 8
    table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return table, rel.sum(-1).flatten()


def their_swin_layout(
    embed_dim: int, depths: list[int], heads: list[int], output_dim: int, rpe: str = "kprpe", window: int = 5,
    mlp_ratio: float = 4.0, img: int = 112, patch: int = 3, keypoints: int = 5,
) -> dict[str, tuple[int, ...]]:  # fmt: skip
    """Key -> shape of their ``SWINKPRPEModelWithKPRPE.net`` + ``keypoint_linear`` (``rpe="kprpe"``) or of the
    same ``SwinTransformer`` with Swin V2's ``cpb_mlp`` (``rpe="cpb"``), no prefix, buffers included."""
    shapes: dict[str, tuple[int, ...]] = {
        "features.0.0.weight": (embed_dim, 3, patch, patch), "features.0.0.bias": (embed_dim,),
        "features.0.2.weight": (embed_dim,), "features.0.2.bias": (embed_dim,),
    }  # fmt: skip
    index = 1
    for stage, (depth, h) in enumerate(zip(depths, heads)):
        c = embed_dim * 2**stage
        hidden = int(c * mlp_ratio)
        for _ in range(depth):
            p = f"features.{index}."
            shapes |= {p + "norm1.weight": (c,), p + "norm1.bias": (c,)}
            shapes |= {p + "attn.logit_scale": (h, 1, 1)}
            shapes |= {p + "attn.relative_coords_table": (1, 2 * window - 1, 2 * window - 1, 2)}
            shapes |= {p + "attn.relative_position_index": (window**4,)}
            shapes |= {p + "attn.qkv.weight": (3 * c, c), p + "attn.qkv.bias": (3 * c,)}
            shapes |= {p + "attn.proj.weight": (c, c), p + "attn.proj.bias": (c,)}
            if rpe == "cpb":
                shapes |= {p + "attn.cpb_mlp.0.weight": (512, 2), p + "attn.cpb_mlp.0.bias": (512,)}
                shapes |= {p + "attn.cpb_mlp.2.weight": (h, 512)}
            shapes |= {p + "norm2.weight": (c,), p + "norm2.bias": (c,)}
            shapes |= {p + "mlp.0.weight": (hidden, c), p + "mlp.0.bias": (hidden,)}
            shapes |= {p + "mlp.3.weight": (c, hidden), p + "mlp.3.bias": (c,)}
            index += 1
        if stage < len(depths) - 1:
            p = f"features.{index}."
            shapes |= {p + "reduction.weight": (2 * c, 4 * c), p + "norm.weight": (2 * c,), p + "norm.bias": (2 * c,)}
            index += 1
    width = embed_dim * 2 ** (len(depths) - 1)
    last = _feature_sizes(img, patch, len(depths))[-1]
    shapes |= {"norm.weight": (width,), "norm.bias": (width,), "feature.0.weight": (width, last * last * width)}
    for j, size in ((1, width), (3, output_dim)):
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"feature.{j}.{name}"] = (size,)
        shapes[f"feature.{j}.num_batches_tracked"] = ()
    shapes["feature.2.weight"] = (output_dim, width)
    if rpe == "kprpe":
        for stage, (depth, h) in enumerate(zip(depths, heads)):
            shapes[f"keypoint_linear.{stage}.weight"] = (BUCKETS * depth * h, 2 * keypoints)
            shapes[f"keypoint_linear.{stage}.bias"] = (BUCKETS * depth * h,)
    return shapes


def random_swin_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`cvlface_reference.random_state_dict` scales, plus what only the Swin has: the window buffers as
    registered, logit scales around log 10 (some above the clamp at log 100), the patch norm near identity."""
    out = random_state_dict(shapes, seed)
    g = torch.Generator().manual_seed(seed + 1)
    for key, shape in shapes.items():
        if key.endswith("relative_coords_table"):
            out[key] = their_window_buffers((shape[1] + 1) // 2)[0]
        elif key.endswith("relative_position_index"):
            out[key] = their_window_buffers(round(shape[0] ** 0.25))[1]
        elif key.endswith("logit_scale"):
            out[key] = math.log(10) + 0.5 * torch.randn(shape, generator=g)
        elif key in ("features.0.2.weight", "feature.1.weight", "feature.3.weight"):
            out[key] = 1 + 0.1 * torch.randn(shape, generator=g)
    return out


def _pad_and_roll(t, window, shift):
    """Their pad-to-the-window and cyclic shift of a (N, H, W, C) map (in both ``split_window`` and
    ``shifted_window_attention``): the padded map and the shift actually applied."""
    pad_r = (window - t.shape[2] % window) % window
    pad_b = (window - t.shape[1] % window) % window
    t = F.pad(t, (0, 0, 0, pad_r, 0, pad_b))
    shift = list(shift)
    if window >= t.shape[1]:
        shift[0] = 0
    if window >= t.shape[2]:
        shift[1] = 0
    if sum(shift) > 0:
        t = torch.roll(t, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    return t, shift


def _split_window(ctx, x_h, x_w, window, shift):
    """Their ``split_window``: (B, H, N, D) stage table -> (B, H, nW, window^2, D)."""
    batch, heads, _, d = ctx.shape
    ctx, _ = _pad_and_roll(ctx.reshape(batch * heads, x_h, x_w, d), window, shift)
    gh, gw = ctx.shape[1] // window, ctx.shape[2] // window
    ctx = ctx.view(batch * heads, gh, window, gw, window, d).permute(0, 1, 3, 2, 4, 5)
    return ctx.reshape(batch, heads, gh * gw, window * window, d).contiguous()


def _attention(x, sd, p, heads, window, shift, bias):
    """torchvision's ``shifted_window_attention`` (V2: cosine, logit scale) as in their ``ops.py``."""
    batch, h, w, c = x.shape
    x, shift = _pad_and_roll(x, window, shift)
    _, pad_h, pad_w, _ = x.shape
    n_windows = (pad_h // window) * (pad_w // window)
    x = x.view(batch, pad_h // window, window, pad_w // window, window, c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch * n_windows, window * window, c)
    qkv_bias = sd[p + "attn.qkv.bias"].clone()
    length = qkv_bias.numel() // 3
    qkv_bias[length : 2 * length].zero_()
    qkv = F.linear(x, sd[p + "attn.qkv.weight"], qkv_bias)
    qkv = qkv.reshape(x.size(0), x.size(1), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
    attn = attn * torch.clamp(sd[p + "attn.logit_scale"], max=math.log(100.0)).exp()
    attn = attn + bias
    if sum(shift) > 0:
        mask = x.new_zeros((pad_h, pad_w))
        h_slices = ((0, -window), (-window, -shift[0]), (-shift[0], None))
        w_slices = ((0, -window), (-window, -shift[1]), (-shift[1], None))
        count = 0
        for hs in h_slices:
            for ws in w_slices:
                mask[hs[0] : hs[1], ws[0] : ws[1]] = count
                count += 1
        mask = mask.view(pad_h // window, window, pad_w // window, window).permute(0, 2, 1, 3)
        mask = mask.reshape(n_windows, window * window)
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        attn = attn.view(x.size(0) // n_windows, n_windows, heads, x.size(1), x.size(1))
        attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, x.size(1), x.size(1))
    attn = F.softmax(attn, dim=-1)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c)
    x = F.linear(x, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
    x = x.view(batch, pad_h // window, pad_w // window, window, window, c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, pad_h, pad_w, c)
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
    return x[:, :h, :w, :].contiguous()


def _cpb_bias(sd, p, heads, window):
    table = F.linear(F.relu(F.linear(sd[p + "attn.relative_coords_table"], sd[p + "attn.cpb_mlp.0.weight"],
                                     sd[p + "attn.cpb_mlp.0.bias"])), sd[p + "attn.cpb_mlp.2.weight"])  # fmt: skip
    n = window * window
    bias = table.view(-1, heads)[sd[p + "attn.relative_position_index"]].view(n, n, -1)
    return 16 * torch.sigmoid(bias.permute(2, 0, 1).contiguous().unsqueeze(0))


def _stage_kprpe(sd, stage, landmarks, size, depth, heads, window):
    """Per block of the stage: (B * nW, H, window^2, window^2) biases, as their ``make_kprpe_bias``."""
    coord = torch.linspace(0, 1, size + 1)
    coord = (coord[:-1] + coord[1:]) / 2
    gx, gy = torch.meshgrid(coord, coord, indexing="ij")
    grid = torch.stack([gy, gx], dim=-1).reshape(-1, 2).unsqueeze(0).unsqueeze(-2)
    rel = (grid - landmarks.unsqueeze(-3)).flatten(2)[:, :, : 2 * landmarks.shape[1]]
    rel = F.linear(rel, sd[f"keypoint_linear.{stage}.weight"], sd[f"keypoint_linear.{stage}.bias"])
    batch = landmarks.shape[0]
    rel = rel.view(batch, -1, depth * heads, BUCKETS).transpose(1, 2)
    n = window * window
    flat = (their_buckets(window) + torch.arange(0, n * BUCKETS, BUCKETS)[:, None]).flatten()
    out = []
    for block, ctx in enumerate(torch.split(rel, [heads] * depth, dim=1)):
        shift = [0, 0] if block % 2 == 0 else [window // 2, window // 2]
        windowed = _split_window(ctx, size, size, window, shift)
        per_window = [w.squeeze(2).flatten(2)[:, :, flat].view(batch, -1, n, n) for w in torch.split(windowed, 1, 2)]
        biases = torch.stack(per_window, dim=1)
        out.append(biases.view(-1, heads, n, n).contiguous())
    return out


def their_swin_forward(
    sd: dict[str, torch.Tensor], depths: list[int], heads: list[int], images: torch.Tensor,
    landmarks: torch.Tensor | None = None, window: int = 5, bgr: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Embedding ``(B, output_dim)`` of their model in eval mode with weights ``sd`` (their keys, no prefix)."""
    if bgr:
        images = images.flip(1)
    weight = sd["features.0.0.weight"]
    x = F.conv2d(images, weight, sd["features.0.0.bias"], stride=weight.shape[-1]).permute(0, 2, 3, 1)
    x = F.layer_norm(x, (x.shape[-1],), sd["features.0.2.weight"], sd["features.0.2.bias"], eps=1e-5)
    kprpe = "keypoint_linear.0.weight" in sd
    sizes = _feature_sizes(images.shape[-1], weight.shape[-1], len(depths))
    index = 1
    for stage, (depth, h) in enumerate(zip(depths, heads)):
        biases = _stage_kprpe(sd, stage, landmarks, sizes[stage], depth, h, window) if kprpe else None
        c = x.shape[-1]
        for block in range(depth):
            p = f"features.{index}."
            shift = [0, 0] if block % 2 == 0 else [window // 2, window // 2]
            bias = biases[block] if kprpe else _cpb_bias(sd, p, h, window)
            y = _attention(x, sd, p, h, window, shift, bias)
            x = x + F.layer_norm(y, (c,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-5)
            y = F.linear(F.gelu(F.linear(x, sd[p + "mlp.0.weight"], sd[p + "mlp.0.bias"])), sd[p + "mlp.3.weight"],
                         sd[p + "mlp.3.bias"])  # fmt: skip
            x = x + F.layer_norm(y, (c,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-5)
            index += 1
        if stage < len(depths) - 1:
            p = f"features.{index}."
            hh, ww = x.shape[1:3]
            x = F.pad(x, (0, 0, 0, ww % 2, 0, hh % 2))
            x = torch.cat(
                [x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1
            )
            x = F.linear(x, sd[p + "reduction.weight"])
            x = F.layer_norm(x, (2 * c,), sd[p + "norm.weight"], sd[p + "norm.bias"], eps=1e-5)
            index += 1
    x = F.layer_norm(x, (x.shape[-1],), sd["norm.weight"], sd["norm.bias"], eps=1e-5).flatten(1)
    return their_head(sd, x)
