"""The authors' face Swin checkpoints (CVLface ``swin_kprpe``, and the same network with Swin V2's own bias).

:func:`face.models.load_pretrained` sends a checkpoint here when its keys (prefix removed) are those of
their ``SwinTransformer`` (``features.0.0.weight`` ...). The architecture is inferred from the keys and
shapes: width and patch from the patch embedding, the stages from the order of blocks and patch mergings
in ``features``, the heads of each stage from its ``logit_scale`` ``(H, 1, 1)``, the window from the
``relative_coords_table`` buffer ``(1, 2w-1, 2w-1, 2)``, the MLP ratio, the output size, ``rpe`` and the
keypoint count; the config's ``name`` (``small``/``base``) and ``input_size`` are checked against them.

Key mapping (their ``features`` index ``i`` is the ``b``-th block of stage ``s``, or the merging after it):

=================================================  ===========================================
CVLface key                                        FaceSwin key
=================================================  ===========================================
``features.0.0.{weight,bias}`` (patch conv)        ``patch_embed.{weight,bias}`` (1)
``features.0.2.{weight,bias}`` (its LayerNorm)     ``patch_norm.{weight,bias}``
``features.{i}.norm1/norm2.{weight,bias}``         ``stages.{s}.blocks.{b}.norm1/norm2.*``
``features.{i}.attn.qkv/proj.{weight,bias}``       ``stages.{s}.blocks.{b}.attn.qkv/proj.*``
``features.{i}.attn.logit_scale``                  ``stages.{s}.blocks.{b}.attn.logit_scale``
``features.{i}.attn.cpb_mlp.{0,2}.*``              ``stages.{s}.blocks.{b}.attn.rpe.cpb_mlp.*`` (``rpe="cpb"``)
``features.{i}.attn.relative_coords_table``,       not parameters: compared with the values the window
``features.{i}.attn.relative_position_index``      implies, then dropped (their buffers)
``features.{i}.mlp.{0,3}.{weight,bias}``           ``stages.{s}.blocks.{b}.mlp.fc1/fc2.*``
``features.{i}.reduction.weight``, ``.norm.*``     ``stages.{s}.downsample.reduction/norm.*``
``norm.{weight,bias}``                             same
``feature.{0..3}.*``                               ``head.{0..3}.*``
``keypoint_linear.{s}.{weight,bias}``              ``stages.{s}.rpe.proj.{weight,bias}`` (2)
=================================================  ===========================================

(1) ``color_space: BGR`` is folded into the patch weights at load, as for the ViT. (2) Output columns
``(block, head, bucket)`` in both: their ``view(B, N, blocks * H, 49).transpose(1, 2)`` split by block is
the ``multihead`` table of a :class:`~kprpe.core.KeypointRPE` built on the stage grid.
Swin V1 blocks (``relative_position_bias_table``, pre-norm) are not the released face models and are
reported as unsupported keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from kprpe.core import bucket_map, num_buckets
from kprpe.core.baselines import continuous_coords

from .swin import PRESETS, head_inputs, stage_grids

__all__ = ["cvlface_swin_to_faceswin", "infer_swin_config", "is_swin_layout", "strip_swin_prefixes", "swin_layout"]

_FEATURE = re.compile(r"features\.(\d+)\.(.+)")
# block-relative key -> our block-relative key (None: a buffer, checked and dropped)
_BLOCK_KEYS: list[tuple[re.Pattern[str], str | None]] = [
    (re.compile(r"(norm1|norm2)\.(weight|bias)"), r"\1.\2"),
    (re.compile(r"attn\.(qkv|proj)\.(weight|bias)"), r"attn.\1.\2"),
    (re.compile(r"attn\.logit_scale"), "attn.logit_scale"),
    (re.compile(r"attn\.cpb_mlp\.(0\.weight|0\.bias|2\.weight)"), r"attn.rpe.cpb_mlp.\1"),
    (re.compile(r"attn\.(relative_coords_table|relative_position_index)"), None),
    (re.compile(r"mlp\.0\.(weight|bias)"), r"mlp.fc1.\1"),
    (re.compile(r"mlp\.3\.(weight|bias)"), r"mlp.fc2.\1"),
]
_TOP_KEYS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"features\.0\.0\.(weight|bias)"), r"patch_embed.\1"),
    (re.compile(r"features\.0\.2\.(weight|bias)"), r"patch_norm.\1"),
    (re.compile(r"norm\.(weight|bias)"), r"norm.\1"),
    (re.compile(r"feature\.([0-3])\.(weight|bias|running_mean|running_var|num_batches_tracked)"), r"head.\1.\2"),
]
_HINTS = {
    "relative_position_bias_table": "Swin V1 blocks (a learned bias table) are not supported; the released face "
    "Swins are Swin V2",
}
#: their config ``name`` -> our preset
_NAMES = {"small": "swin_small", "base": "swin_base"}


def is_swin_layout(state_dict: Mapping[str, Any]) -> bool:
    """Whether the keys are those of their Swin (a patch convolution in ``features.0``), with or without the
    ``net.`` / ``model.net.`` prefix."""
    return any(p + "features.0.0.weight" in state_dict for p in ("", "net.", "model.net."))


def strip_swin_prefixes(state_dict: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Their keys without the wrapper's prefixes.

    Their ``SWINKPRPEModelWithKPRPE`` holds the Swin as ``net`` and the stages' ``keypoint_linear`` beside
    it, so ``model.pt`` has ``net.features.*`` with ``keypoint_linear.*``, and the Hugging Face
    ``model.safetensors`` the same under ``model.``; bare keys (no ``net.``) are accepted too.
    """
    keys = list(state_dict)
    outer = "model." if keys and all(k.startswith("model.") for k in keys) else ""
    has_net = any(k.startswith(outer + "net.") for k in keys)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key[len(outer) :]
        if key.startswith("net."):
            key = key[len("net.") :]
        elif has_net and not key.startswith("keypoint_linear."):
            raise ValueError(f"{source}: key {outer + key!r} has no 'net.' prefix but others do")
        if key in out:
            raise ValueError(f"{source}: key {key!r} appears twice (with and without a prefix)")
        out[key] = value
    return out


def _feature_roles(state_dict: Mapping[str, Any], source: str) -> dict[int, tuple[str, int, int]]:
    """``features`` index -> ``("block", stage, block)`` or ``("merge", stage, 0)``, in order."""
    kinds: dict[int, str] = {}
    for key in state_dict:
        m = _FEATURE.fullmatch(key)
        if m and int(m.group(1)) > 0:
            index, rest = int(m.group(1)), m.group(2)
            kind = (
                "merge" if rest.startswith("reduction.") else "block" if rest.startswith(("attn.", "norm1.")) else None
            )
            if kind is not None:
                if kinds.setdefault(index, kind) != kind:
                    raise ValueError(f"{source}: features.{index} holds both a block and a patch merging")
    roles, stage, block = {}, 0, 0
    for index in sorted(kinds):
        if kinds[index] == "merge":
            if block == 0:
                raise ValueError(f"{source}: features.{index} merges a stage without blocks")
            roles[index] = ("merge", stage, 0)
            stage, block = stage + 1, 0
        else:
            roles[index] = ("block", stage, block)
            block += 1
    if sorted(kinds) != list(range(1, len(kinds) + 1)):
        raise ValueError(f"{source}: the features indices {sorted(kinds)} are not 1..{len(kinds)} without gaps")
    return roles


def cvlface_swin_to_faceswin(
    state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Rename a CVLface Swin state dict (:func:`strip_swin_prefixes`) to :class:`~face.models.FaceSwin` keys.

    Returns:
        ``(weights, buffers)``: the renamed tensors, and their window buffers (``relative_coords_table``,
        ``relative_position_index``, keyed by our block name) for :func:`infer_swin_config` to check.

    Raises:
        ValueError: listing every key the table in the module docstring does not map.
    """
    state_dict = strip_swin_prefixes(state_dict, source)
    roles = _feature_roles(state_dict, source)
    out: dict[str, torch.Tensor] = {}
    buffers: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        target = _map_key(key, roles)
        if target is None:
            unknown.append(key)
        elif target.endswith(("relative_coords_table", "relative_position_index")):
            buffers[target] = value
        else:
            out[target] = value
    if unknown:
        hints = sorted({h for k in unknown for part, h in _HINTS.items() if part in k})
        shown = ", ".join(unknown[:12]) + (f", ... ({len(unknown) - 12} more)" if len(unknown) > 12 else "")
        raise ValueError(
            f"{source}: {len(unknown)} key(s) are not part of the authors' face Swin: {shown}"
            + (f" ({'; '.join(hints)})" if hints else "")
        )
    return out, buffers


def _map_key(key: str, roles: Mapping[int, tuple[str, int, int]]) -> str | None:
    for pattern, template in _TOP_KEYS:
        if pattern.fullmatch(key):
            return pattern.sub(template, key)
    m = re.fullmatch(r"keypoint_linear\.(\d+)\.(weight|bias)", key)
    if m:
        return f"stages.{m.group(1)}.rpe.proj.{m.group(2)}"
    m = _FEATURE.fullmatch(key)
    if not m or int(m.group(1)) not in roles:
        return None
    kind, stage, block = roles[int(m.group(1))]
    rest = m.group(2)
    if kind == "merge":
        found = re.fullmatch(r"(reduction\.weight|norm\.weight|norm\.bias)", rest)
        return f"stages.{stage}.downsample.{rest}" if found else None
    for pattern, template in _BLOCK_KEYS:
        if pattern.fullmatch(rest):
            return f"stages.{stage}.blocks.{block}." + (rest if template is None else pattern.sub(template, rest))
    return None


#: dimensions of the tensors whose shapes the inference reads
_NDIM = {"patch_embed.weight": 4, "logit_scale": 3, "mlp.fc1.weight": 2, "head.0.weight": 2, "head.2.weight": 2,
         "rpe.proj.weight": 2}  # fmt: skip


def swin_layout(keys: Iterable[str]) -> tuple[list[int], str]:
    """Blocks per stage (0 for a stage without any) and the ``rpe`` kind that FaceSwin keys hold."""
    keys = list(keys)
    depths: list[int] = []
    for key in keys:
        if m := re.match(r"stages\.(\d+)\.blocks\.(\d+)\.", key):
            stage, block = int(m.group(1)), int(m.group(2))
            depths.extend([0] * (stage + 1 - len(depths)))
            depths[stage] = max(depths[stage], block + 1)
    rpe = (
        "kprpe" if "stages.0.rpe.proj.weight" in keys
        else "cpb" if "stages.0.blocks.0.attn.rpe.cpb_mlp.0.weight" in keys else "none"
    )  # fmt: skip
    return depths, rpe


def _shape(sd: Mapping[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    """The shape of ``sd[key]``, with the dimensions :data:`_NDIM` gives its kind, all positive."""
    if key not in sd:
        raise ValueError(f"{source}: no {key!r}: not a checkpoint of the authors' face Swin")
    shape = tuple(sd[key].shape)
    ndim = next(n for suffix, n in _NDIM.items() if key.endswith(suffix))
    if len(shape) != ndim or min(shape) < 1:
        raise ValueError(f"{source}: {key} has shape {shape}, expected {ndim} positive dimensions")
    return shape


def infer_swin_config(
    state_dict: Mapping[str, torch.Tensor],
    buffers: Mapping[str, torch.Tensor],
    their_config: Mapping[str, Any] | None = None,
    source: str = "checkpoint",
) -> dict[str, Any]:
    """:class:`~face.models.FaceSwin` arguments from a state dict in FaceSwin keys and its window buffers.

    Raises:
        ValueError: shapes that fit no face Swin, a window buffer that is not the one its window implies,
            or a config (``name``, ``input_size``, ``rpe_config``) that disagrees with the weights.
    """
    cfg = dict(their_config or {})
    rpe_cfg = dict(cfg.get("rpe_config") or {})
    embed_dim, in_chans, patch, patch_w = _shape(state_dict, "patch_embed.weight", source)
    if in_chans != 3 or patch != patch_w:
        raise ValueError(f"{source}: patch embedding {(embed_dim, in_chans, patch, patch_w)} is not 3-channel square")
    depths, rpe = swin_layout(state_dict)
    if not depths or min(depths) == 0:
        raise ValueError(f"{source}: no Swin blocks found in every stage (blocks per stage: {depths})")
    heads = [_shape(state_dict, f"stages.{s}.blocks.0.attn.logit_scale", source)[0] for s in range(len(depths))]
    window = _window(buffers, source)
    hidden = _shape(state_dict, "stages.0.blocks.0.mlp.fc1.weight", source)[0]
    output_dim = _shape(state_dict, "head.2.weight", source)[0]
    img_size = _img_size(cfg, source)
    ratio = float(rpe_cfg.get("ratio", 1.9))
    args: dict[str, Any] = {
        "img_size": img_size, "patch_size": patch, "embed_dim": embed_dim, "depths": depths, "num_heads": heads,
        "window_size": window, "mlp_ratio": hidden / embed_dim, "output_dim": output_dim, "rpe_ratio": ratio,
    }  # fmt: skip
    _check_head(state_dict, args, source)
    _check_buffers(buffers, window, source)
    args["rpe"] = rpe
    if rpe == "kprpe":
        args["num_keypoints"] = _check_keypoint_linears(state_dict, depths, heads, ratio, rpe_cfg, source)
    name = cfg.get("name")
    if name is not None:
        if name not in _NAMES:
            raise ValueError(f"{source}: config name {name!r} is not a face Swin of this package (small, base)")
        preset = PRESETS[_NAMES[name]]
        if [depths, heads, embed_dim] != [preset["depths"], preset["num_heads"], preset["embed_dim"]]:
            raise ValueError(
                f"{source}: the config says Swin-{name} (depths {preset['depths']}, heads {preset['num_heads']}, "
                f"width {preset['embed_dim']}) but the weights are depths {depths}, heads {heads}, width {embed_dim}"
            )
        args["drop_path_rate"] = preset["drop_path_rate"]  # used only if the model is trained further
    return args


def _window(buffers: Mapping[str, torch.Tensor], source: str) -> int:
    table = buffers.get("stages.0.blocks.0.attn.relative_coords_table")
    if table is None or table.dim() != 4 or table.shape[1] != table.shape[2] or table.shape[1] % 2 == 0:
        shape = None if table is None else tuple(table.shape)
        raise ValueError(
            f"{source}: cannot tell the window size: features.1.attn.relative_coords_table is {shape}, "
            "expected (1, 2w-1, 2w-1, 2)"
        )
    return (table.shape[1] + 1) // 2


def _img_size(cfg: Mapping[str, Any], source: str) -> int:
    size = cfg.get("input_size", [3, 112, 112])
    if not (isinstance(size, (list, tuple)) and len(size) == 3 and size[1] == size[2] and type(size[1]) is int):
        raise ValueError(f"{source}: input_size {size!r} is not [3, S, S]")
    return size[1]


def _check_head(state_dict: Mapping[str, torch.Tensor], args: Mapping[str, Any], source: str) -> None:
    grids = stage_grids(args["img_size"], args["patch_size"], len(args["depths"]))
    width = args["embed_dim"] * 2 ** (len(args["depths"]) - 1)
    want = head_inputs(args["img_size"], args["patch_size"], args["embed_dim"], len(args["depths"]))
    got = _shape(state_dict, "head.0.weight", source)[1]
    if got != want:
        raise ValueError(
            f"{source}: the head reads {got} features but {args['img_size']}-px images give a "
            f"{grids[-1][0]}x{grids[-1][1]}x{width} last stage ({want}); set input_size in the config"
        )


def _check_buffers(buffers: Mapping[str, torch.Tensor], window: int, source: str) -> None:
    """Their per-block window buffers must be the values the window implies (else another network)."""
    coords = continuous_coords((window, window)).view(1, 2 * window - 1, 2 * window - 1, 2)
    index = bucket_map(window, window, "exact")[0].flatten()
    for key, value in buffers.items():
        want = coords if key.endswith("relative_coords_table") else index
        if value.shape != want.shape or not torch.allclose(value.to(want.dtype), want, atol=1e-6):
            raise ValueError(f"{source}: {key} is not the {window}x{window} window's (shape {tuple(value.shape)})")


def _check_keypoint_linears(
    state_dict: Mapping[str, torch.Tensor], depths: list[int], heads: list[int], ratio: float,
    rpe_cfg: Mapping[str, Any], source: str,
) -> int:  # fmt: skip
    """The keypoint count; each stage's ``W_L`` must give ``blocks * heads`` tables (the only layout their Swin has)."""
    ctx_type = rpe_cfg.get("ctx_type", "rel_keypoint_splithead_unshared")
    if ctx_type != "rel_keypoint_splithead_unshared":
        raise ValueError(f"{source}: ctx_type {ctx_type!r}: their Swin supports only 'rel_keypoint_splithead_unshared'")
    k = num_buckets("product", ratio)
    inputs = set()
    for stage, (depth, h) in enumerate(zip(depths, heads)):
        out_features, in_features = _shape(state_dict, f"stages.{stage}.rpe.proj.weight", source)
        if out_features != depth * h * k:
            raise ValueError(
                f"{source}: keypoint_linear.{stage} gives {out_features} columns, not {depth} blocks x {h} heads x {k}"
            )
        inputs.add(in_features)
    if len(inputs) != 1 or min(inputs) % 2:
        raise ValueError(f"{source}: the stages' keypoint_linear inputs differ or are odd: {sorted(inputs)}")
    points = inputs.pop()
    keypoints = rpe_cfg.get("num_keypoints", points // 2)
    if keypoints != points // 2:
        raise ValueError(f"{source}: rpe_config num_keypoints {keypoints} but keypoint_linear reads {points} values")
    return points // 2
