"""Load the authors' released face checkpoints (CVLface) and save/load our own format.

``load_pretrained(path)`` accepts

* a CVLface Hugging Face model folder, as downloaded by the user: ``model.safetensors`` (keys
  ``model.net.*``) and/or ``pretrained_model/model.pt`` (keys ``net.*``), with the model config in
  ``pretrained_model/model.yaml`` (or ``model.yaml``, ``config.yaml``, ``config.json``);
* a bare checkpoint file (``.pt``/``.pth``/``.ckpt``/``.safetensors``; keys with or without the
  ``net.`` / ``model.net.`` prefix; a sibling ``<stem>.yaml`` is read when present);
* a folder written by :func:`save_pretrained` (ours: ``model.safetensors`` + ``config.json`` whose
  ``format`` is ``"kprpe-face"``).

* a Hugging Face model id ``"owner/name"`` (when no such local path exists): resolved into the
  ``huggingface_hub`` cache by :func:`face.models.hub.resolve_hub_id` (the optional extra ``hub``;
  downloaded unless offline), then loaded as a folder.

Nothing else is downloaded. The architecture is inferred from the keys and shapes (width, patch, depth, MLP
ratio, output size, ``rpe`` kind and KP-RPE variant; the head count from the KP-RPE/iRPE table shapes,
the config's ``name`` or the paper's presets) and cross-checked against the config when there is one.
Loading is strict: keys that are not mapped, keys the model lacks and shape mismatches raise a
``ValueError`` listing them.

Key mapping (CVLface ``VisionTransformer*`` -> :class:`face.models.FaceViT`), after the prefix is removed:

=====================================================  ==========================================
CVLface key                                            FaceViT key
=====================================================  ==========================================
``patch_embed.proj.{weight,bias}``                     ``patch_embed.{weight,bias}`` (1)
``pos_embed``                                          ``pos_embed``
``mask_token`` (only when trained with ``mask_ratio``)  ``mask_token``
``blocks.{i}.norm1/norm2.{weight,bias}``               same
``blocks.{i}.attn.qkv.weight`` (``.bias`` if any)      same
``blocks.{i}.attn.proj.{weight,bias}``                 same
``blocks.{i}.attn.rpe_k.lookup_table_weight``          ``blocks.{i}.attn.rpe.weight`` (iRPE, key side)
``blocks.{i}.mlp.fc1/fc2.{weight,bias}``               same
``norm.{weight,bias}``                                 same
``feature.{0,2}.weight``                               ``head.{0,2}.weight``
``feature.{1,3}.{weight,bias,running_*,num_batches_*}`` ``head.{1,3}.*``
``keypoint_linear.{weight,bias}``                      ``kprpe.proj.{weight,bias}`` (2)
=====================================================  ==========================================

(1) When the config's ``color_space`` is ``BGR`` (their model then flips the channels of every input),
the flip is folded into the patch-embedding weights once, at load: the loaded model takes RGB.
(2) Output columns ordered ``(depth, head, bucket)`` in both. Their ``ctx_type`` names the variant:
``rel_keypoint`` -> ``relative``, ``rel_keypoint_splithead`` -> ``per_head``, ``rel_keypoint_unshared`` ->
``per_layer``, ``rel_keypoint_splithead_unshared`` -> ``multihead`` (released), ``keypoint`` -> ``absolute``
(a bare ``Linear(10, 49)`` is read as ``relative``: their absolute variant cannot run through their
attention code). Their ``*_v2`` MLP variants and iRPE on queries/values (``rpe_q``, ``rpe_v``) have no
counterpart here and are reported as unsupported keys.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from kprpe.core import num_buckets
from kprpe.io import atomic_path, atomic_write_text
from kprpe.skip_init import no_weight_init

from .build import ARCH_PRESETS, ARCHS, arch_of, build_model
from .hub import is_hub_id, resolve_hub_id
from .pretrained_swin import cvlface_swin_to_faceswin, infer_swin_config, is_swin_layout, swin_layout
from .swin import FaceSwin, head_inputs
from .vit import PRESETS, FaceViT

__all__ = [
    "FORMAT",
    "cvlface_to_facevit",
    "infer_config",
    "load_pretrained",
    "load_state_dict_file",
    "read_safetensors_header",
    "save_pretrained",
]

#: ``format`` field of our ``config.json``
FORMAT = "kprpe-face"
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

_PREFIXES = ("model.net.", "net.")
_BLOCK = r"blocks\.(\d+)\."
# (CVLface key pattern, FaceViT key template): the module docstring's table
_KEY_MAP: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"patch_embed\.proj\.(weight|bias)"), r"patch_embed.\1"),
    (re.compile(r"(pos_embed|mask_token)"), r"\1"),
    (re.compile(_BLOCK + r"(norm1|norm2)\.(weight|bias)"), r"blocks.\1.\2.\3"),
    (re.compile(_BLOCK + r"attn\.(qkv|proj)\.(weight|bias)"), r"blocks.\1.attn.\2.\3"),
    (re.compile(_BLOCK + r"attn\.rpe_k\.lookup_table_weight"), r"blocks.\1.attn.rpe.weight"),
    (re.compile(_BLOCK + r"mlp\.(fc1|fc2)\.(weight|bias)"), r"blocks.\1.mlp.\2.\3"),
    (re.compile(r"norm\.(weight|bias)"), r"norm.\1"),
    (re.compile(r"feature\.([02])\.weight"), r"head.\1.weight"),
    (
        re.compile(r"feature\.([13])\.(weight|bias|running_mean|running_var|num_batches_tracked)"),
        r"head.\1.\2",
    ),
    (re.compile(r"keypoint_linear\.(weight|bias)"), r"kprpe.proj.\1"),
]
# their ctx_type -> our KP-RPE variant
_CTX_TYPES = {
    "rel_keypoint": "relative",
    "rel_keypoint_splithead": "per_head",
    "rel_keypoint_unshared": "per_layer",
    "rel_keypoint_splithead_unshared": "multihead",
    "keypoint": "absolute",
}
# their config ``name`` -> our preset
_NAMES = {"small": "vit_small", "base": "vit_base"}
_HINTS = {
    "rpe_q": "iRPE on queries is not supported (only key-side iRPE, rpe_on: k)",
    "rpe_v": "iRPE on values is not supported (only key-side iRPE, rpe_on: k)",
    "keypoint_linear.": "an MLP keypoint map (ctx_type *_v2) is not supported",
}


# ----------------------------------------------------------------------------------------- reading files

#: bytes per element of each safetensors dtype
_SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
_MAX_HEADER_BYTES = 100 << 20  # the limit of the safetensors format itself


def read_safetensors_header(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a ``.safetensors`` file, checked against the file's size; no tensor is read.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: naming the file and what is wrong with its header (length, JSON, dtype, shape, offsets).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: corrupt safetensors header (file of {len(head)} bytes)")
        (length,) = struct.unpack("<Q", head)
        data_bytes = path.stat().st_size - 8 - length
        if length > _MAX_HEADER_BYTES or data_bytes < 0:
            raise ValueError(f"{path}: corrupt safetensors header (announces {length} header bytes)")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError
        raise ValueError(f"{path}: corrupt safetensors header (not UTF-8 JSON: {e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: corrupt safetensors header (a JSON {type(header).__name__}, not an object)")
    shapes = {}
    for name, entry in header.items():
        if name != "__metadata__":
            shapes[name] = _header_entry(entry, data_bytes, f"{path}: corrupt safetensors header, tensor {name!r}")
    return shapes


def _header_entry(entry: Any, data_bytes: int, where: str) -> tuple[int, ...]:
    """The shape of one header entry, checked: known dtype, integer shape, offsets inside the data that
    hold exactly the tensor's bytes."""
    if not isinstance(entry, dict) or entry.get("dtype") not in _SAFETENSORS_DTYPES:
        raise ValueError(f"{where}: no known dtype")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise ValueError(f"{where}: shape {shape!r} is not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise ValueError(f"{where}: data_offsets {offsets!r} is not [begin, end]")
    begin, end = offsets
    if not 0 <= begin <= end <= data_bytes or end - begin != math.prod(shape) * _SAFETENSORS_DTYPES[entry["dtype"]]:
        raise ValueError(
            f"{where}: data_offsets {offsets} do not hold a {entry['dtype']} {shape} in {data_bytes} bytes"
        )
    return tuple(shape)


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file whose header :func:`read_safetensors_header` accepts."""
    from safetensors.torch import load_file

    read_safetensors_header(path)
    try:
        return load_file(str(path))
    except Exception as e:  # the Rust reader's SafetensorError is no ValueError
        raise ValueError(f"{path}: unreadable safetensors file ({type(e).__name__}: {e})") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError, which do not name the file
        raise ValueError(f"{path}: not a UTF-8 JSON file ({type(e).__name__}: {e})") from None


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or torch checkpoint file (a nested ``state_dict`` is unwrapped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors come in many types
        raise ValueError(f"{path}: not a readable torch checkpoint ({e})") from e
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return dict(obj)


def _read_config_file(path: Path) -> Any:
    if path.suffix == ".json":
        return _read_json(path)
    import yaml

    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except (ValueError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: not a readable YAML config ({type(e).__name__}: {e})") from None


def _model_section(cfg: Any, depth: int = 0) -> dict[str, Any] | None:
    """The mapping that describes the model (``name`` / ``rpe_config`` / ``color_space``), searched two deep."""
    if not isinstance(cfg, Mapping):
        return None
    if "rpe_config" in cfg or "color_space" in cfg or cfg.get("name") in _NAMES:
        return dict(cfg)
    if depth < 2:
        for value in cfg.values():
            found = _model_section(value, depth + 1)
            if found is not None:
                return found
    return None


def _written_by_us(weights: Path) -> bool:
    """Whether ``weights`` is a safetensors file whose metadata says :func:`save_pretrained` wrote it."""
    if not weights.is_file():
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == FORMAT
    except Exception:  # a corrupt file is not ours to judge here; the load below names what is wrong
        return False


def _is_ours(config_path: Path) -> bool:
    if not config_path.is_file():
        return False
    try:
        return json.loads(config_path.read_text()).get("format") == FORMAT
    except (ValueError, AttributeError):
        return False


# ----------------------------------------------------------------------------------------- key mapping


def _strip_prefix(state_dict: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    prefixes = {next((p for p in _PREFIXES if k.startswith(p)), "") for k in state_dict}
    if len(prefixes) > 1:
        raise ValueError(
            f"{source}: keys mix prefixes {sorted(prefixes)}; expected all 'net.', all 'model.net.' or none"
        )
    prefix = prefixes.pop() if prefixes else ""
    return {k[len(prefix) :]: v for k, v in state_dict.items()}


def cvlface_to_facevit(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Rename a CVLface ViT state dict (prefix ``net.``/``model.net.`` or none) to :class:`FaceViT` keys.

    Raises:
        ValueError: listing every key the table in the module docstring does not map.
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in _strip_prefix(state_dict, source).items():
        for pattern, template in _KEY_MAP:
            if pattern.fullmatch(key):
                out[pattern.sub(template, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        hints = sorted({h for k in unknown for part, h in _HINTS.items() if part in k})
        raise ValueError(
            f"{source}: {len(unknown)} key(s) are not part of the authors' face ViT: {_listing(unknown)}"
            + (f" ({'; '.join(hints)})" if hints else "")
            + _architecture_hint(state_dict)
        )
    return out


def _listing(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _architecture_hint(state_dict: Mapping[str, torch.Tensor]) -> str:
    keys = " ".join(state_dict)
    if "patch_embed" in keys and "blocks." in keys:
        return ""
    if "layers." in keys and "attn_mask" in keys or "relative_position" in keys:
        return "; this looks like a Swin checkpoint, not a ViT"
    if "layer1." in keys or "input_layer" in keys:
        return "; this looks like an IResNet checkpoint, not a ViT"
    return "; this does not look like a ViT checkpoint"


# ----------------------------------------------------------------------------------------- inference


def _shape(sd: Mapping[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    if key not in sd:
        raise ValueError(
            f"{source}: no {key!r}: not a checkpoint of the authors' face ViT (first keys: {_listing(list(sd), 6)})"
        )
    return tuple(sd[key].shape)


def infer_config(
    state_dict: Mapping[str, torch.Tensor],
    their_config: Mapping[str, Any] | None = None,
    source: str = "checkpoint",
    num_heads: int | None = None,
) -> dict[str, Any]:
    """:class:`FaceViT` arguments from a state dict in FaceViT keys (:func:`cvlface_to_facevit`).

    ``their_config`` (the CVLface model config: ``name``, ``mask_ratio``, ``rpe_config``) settles what
    the shapes cannot (the head count of a plain ViT, ``relative`` vs ``absolute``) and is checked
    against the shapes: a mismatch is an error. ``num_heads`` is needed only for a model of no preset
    shape whose tables do not name the head count (a plain ViT, the ``relative``/``per_layer`` variants).
    """
    cfg = dict(their_config or {})
    rpe_cfg = dict(cfg.get("rpe_config") or {})
    embed_dim, in_chans, patch, patch_w = _shape(state_dict, "patch_embed.weight", source)
    if in_chans != 3 or patch != patch_w:
        raise ValueError(f"{source}: patch embedding {(embed_dim, in_chans, patch, patch_w)} is not 3-channel square")
    tokens = _shape(state_dict, "pos_embed", source)[1]
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"{source}: pos_embed has {tokens} tokens, not a square grid")
    depth = 1 + max(int(m.group(1)) for k in state_dict if (m := re.match(r"blocks\.(\d+)\.", k)))
    hidden = _shape(state_dict, "blocks.0.mlp.fc1.weight", source)[0]
    output_dim = _shape(state_dict, "head.2.weight", source)[0]
    ratio = float(rpe_cfg.get("ratio", 1.9))
    if rpe_cfg and rpe_cfg.get("method", "product") != "product":
        raise ValueError(f"{source}: rpe_config.method {rpe_cfg.get('method')!r} is not supported (only 'product')")
    args: dict[str, Any] = {
        "img_size": side * patch, "patch_size": patch, "embed_dim": embed_dim, "depth": depth,
        "mlp_ratio": hidden / embed_dim, "output_dim": output_dim, "qkv_bias": "blocks.0.attn.qkv.bias" in state_dict,
        "rpe_ratio": ratio,
    }  # fmt: skip
    if "mask_token" in state_dict:
        args["mask_ratio"] = float(cfg.get("mask_ratio") or 0.1)  # their default; only used in training

    heads = _preset_heads(args, cfg, source)
    if num_heads is not None:
        heads = _agree(heads, num_heads, "num_heads", source)
    if "kprpe.proj.weight" in state_dict:
        args["rpe"] = "kprpe"
        out_features, in_features = state_dict["kprpe.proj.weight"].shape
        args["num_keypoints"] = in_features // 2
        args["kprpe_variant"], heads = _kprpe_variant(
            out_features // num_buckets("product", ratio), heads, depth, embed_dim, rpe_cfg.get("ctx_type"), source
        )
    elif "blocks.0.attn.rpe.weight" in state_dict:
        args["rpe"] = "irpe"
        table_heads, head_dim, _ = state_dict["blocks.0.attn.rpe.weight"].shape
        if table_heads != 1:
            raise ValueError(f"{source}: per-head iRPE tables are not supported (shared_head: True only)")
        heads = _agree(heads, embed_dim // head_dim, "the iRPE table's head size", source)
    if heads is None:
        raise ValueError(
            f"{source}: cannot tell the head count of a width-{embed_dim}, depth-{depth} ViT from its weights; "
            "put the CVLface model.yaml (with 'name: small|base') beside it or pass num_heads="
        )
    args["num_heads"] = heads
    return args


def _preset_heads(args: Mapping[str, Any], cfg: Mapping[str, Any], source: str) -> int | None:
    """Head count from the config's ``name`` (checked against the shapes) or a paper preset of the same shape."""
    name = cfg.get("name")
    if name is not None:
        if name not in _NAMES:
            raise ValueError(f"{source}: config name {name!r} is not a ViT of this package (small, base)")
        preset = PRESETS[_NAMES[name]]
        got = {k: args[k] for k in ("embed_dim", "depth", "mlp_ratio")}
        want = {k: preset[k] for k in got}
        if got != want:
            raise ValueError(f"{source}: the config says ViT-{name} {want} but the weights are {got}")
        return preset["num_heads"]
    for preset in (PRESETS["vit_small"], PRESETS["vit_base"]):
        if all(args[k] == preset[k] for k in ("embed_dim", "depth", "mlp_ratio")):
            return preset["num_heads"]
    return None


def _agree(known: int | None, found: int, what: str, source: str) -> int:
    if known is not None and known != found:
        raise ValueError(f"{source}: {what} implies {found} heads but the architecture has {known}")
    return found


def _kprpe_variant(
    tables: int, heads: int | None, depth: int, embed_dim: int, ctx_type: str | None, source: str
) -> tuple[str, int | None]:
    """KP-RPE variant from the number of 49-bucket tables ``W_L`` produces (and the config's ``ctx_type``)."""
    per_variant = {"relative": 1, "absolute": 1, "per_layer": depth}
    if heads is not None:
        per_variant |= {"per_head": heads, "multihead": heads * depth}
    if ctx_type is not None:
        if ctx_type not in _CTX_TYPES:
            raise ValueError(f"{source}: KP-RPE ctx_type {ctx_type!r} is not supported; known: {sorted(_CTX_TYPES)}")
        variant = _CTX_TYPES[ctx_type]
        if heads is None and variant == "multihead" and tables % depth == 0:
            return variant, tables // depth
        if heads is None and variant == "per_head":
            return variant, tables
        if per_variant.get(variant) != tables:
            raise ValueError(f"{source}: ctx_type {ctx_type!r} does not fit a keypoint_linear with {tables} tables")
        return variant, heads
    if heads is None:  # the released layout is the only one that names the heads
        if tables % depth == 0 and tables > depth and embed_dim % (tables // depth) == 0:
            return "multihead", tables // depth
        raise ValueError(f"{source}: cannot infer the KP-RPE variant of {tables} tables; add the config")
    matches = [v for v, n in per_variant.items() if n == tables and v != "absolute"]
    if not matches:
        raise ValueError(
            f"{source}: keypoint_linear gives {tables} tables, which fits no KP-RPE variant of a "
            f"{heads}-head, depth-{depth} ViT (expected one of {sorted(set(per_variant.values()))})"
        )
    if len(matches) > 1:
        raise ValueError(f"{source}: {tables} tables fit {matches}; add the config with its ctx_type")
    return matches[0], heads


# ----------------------------------------------------------------------------------------- load / save


def _load_strict(model: FaceViT | FaceSwin, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state_dict))
        if state_dict[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {_listing(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch (checkpoint vs model) {len(mismatched)}: {_listing(mismatched)}")
    if problems:
        raise ValueError(f"{source} does not fit {model.config}: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)


def _cvlface_files(folder: Path) -> tuple[Path, dict[str, Any] | None, str]:
    """The weights of a CVLface folder, the model section of its first config that has one, and how
    errors name them (the weights, and the config read or the configs that held no model section)."""
    candidates = ["model.safetensors", "model.pt", "pretrained_model/model.pt", "pretrained_model/model.safetensors"]
    weights = next((folder / c for c in candidates if (folder / c).is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"{folder}: no checkpoint found (looked for {', '.join(candidates)})")
    configs = ["pretrained_model/model.yaml", "model.yaml", "pretrained_model/config.yaml", "config.yaml", CONFIG_NAME]
    return (weights, *_first_model_section(weights, [folder / c for c in configs]))


def _first_model_section(weights: Path, paths: list[Path]) -> tuple[dict[str, Any] | None, str]:
    present = [path for path in paths if path.is_file()]
    for path in present:
        section = _model_section(_read_config_file(path))
        if section is not None:
            return _checked_section(section, path), f"{weights} with {path}"
    if present:
        return None, f"{weights} (no model section in {', '.join(map(str, present))})"
    return None, str(weights)


#: types of the CVLface config entries that :func:`infer_config` reads (``None``: absent is fine)
_SECTION_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "color_space": (str,), "mask_ratio": (int, float), "rpe_config": (Mapping,),
}  # fmt: skip
_RPE_TYPES: dict[str, tuple[type, ...]] = {"ratio": (int, float), "ctx_type": (str,), "method": (str,)}


def _checked_section(section: dict[str, Any], path: Path) -> dict[str, Any]:
    """``section`` when the entries :func:`infer_config` reads have their types (a hand-edited YAML may not)."""
    for table, types in ((section, _SECTION_TYPES), (section.get("rpe_config") or {}, _RPE_TYPES)):
        for key, kinds in types.items():
            value = table.get(key) if isinstance(table, Mapping) else None
            if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
                raise ValueError(f"{path}: {key} {value!r} must be {' or '.join(k.__name__ for k in kinds)}")
    return section


def load_pretrained(
    path: str | os.PathLike[str], backend: str = "auto", num_heads: int | None = None
) -> FaceViT | FaceSwin:
    """A :class:`FaceViT` or :class:`FaceSwin` in eval mode from a CVLface folder or file (ViT or Swin, told
    apart by the keys: :mod:`face.models.pretrained_swin`), or a :func:`save_pretrained` folder.

    Args:
        path: folder or checkpoint file, or a Hugging Face ``owner/name`` id (see the module docstring).
        backend: attention backend of the returned model.
        num_heads: only for CVLface ViT checkpoints whose head count neither the shapes, the config nor a
            paper preset gives (checked against them otherwise; a Swin's heads are always in its weights).

    Returns:
        the model in eval mode; call it as ``model(images, landmarks)``.

    Raises:
        FileNotFoundError: nothing to load at ``path``.
        ValueError: unknown / missing keys, shape mismatches, or a checkpoint of another architecture
            (the message names the file and the keys).
    """
    path = Path(path)
    if not path.exists() and is_hub_id(path.as_posix()):
        path = resolve_hub_id(path.as_posix())
    if path.is_dir() and _is_ours(path / CONFIG_NAME):
        return _load_ours(path / WEIGHTS_NAME, path / CONFIG_NAME, backend)
    if path.is_file() and path.name == WEIGHTS_NAME and _is_ours(path.parent / CONFIG_NAME):
        return _load_ours(path, path.parent / CONFIG_NAME, backend)
    if path.is_dir() and _written_by_us(path / WEIGHTS_NAME):
        raise ValueError(
            f"{path / CONFIG_NAME}: missing or not a {FORMAT!r} config (its 'format' key), but "
            f"{path / WEIGHTS_NAME} was written by save_pretrained: restore the config saved with it"
        )
    if path.is_dir():
        weights, their_config, source = _cvlface_files(path)
    elif path.is_file():
        weights, (their_config, source) = path, _first_model_section(path, [path.with_suffix(".yaml")])
    else:
        raise FileNotFoundError(f"{path} does not exist")
    raw = load_state_dict_file(weights)
    cls: type[FaceViT] | type[FaceSwin]
    if is_swin_layout(raw):
        state_dict, buffers = cvlface_swin_to_faceswin(raw, str(weights))
        args, cls = infer_swin_config(state_dict, buffers, their_config, source), FaceSwin
        if num_heads is not None and num_heads != args["num_heads"][0]:
            raise ValueError(f"{source}: num_heads={num_heads} but the Swin's stages have {args['num_heads']} heads")
    else:
        state_dict = cvlface_to_facevit(raw, str(weights))
        args, cls = infer_config(state_dict, their_config, source, num_heads), FaceViT
    if (their_config or {}).get("color_space", "RGB").upper() == "BGR":
        state_dict["patch_embed.weight"] = state_dict["patch_embed.weight"].flip(1)  # the model now takes RGB
    with no_weight_init():  # every parameter is loaded strictly right below
        model = cls(**args, backend=backend)
    _load_strict(model, state_dict, str(weights))
    return model.eval()


def _load_ours(weights: Path, config_path: Path, backend: str) -> FaceViT | FaceSwin:
    meta = _read_json(config_path)
    version = meta.get("version", FORMAT_VERSION)
    if type(version) is not int:
        raise ValueError(f"{config_path}: format version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise ValueError(f"{config_path}: format version {meta['version']} is newer than this package reads")
    if not isinstance(meta.get("model"), Mapping):
        raise ValueError(f"{config_path}: no 'model' mapping")  # noqa: TRY004 - a bad file, not a bad argument
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing beside {config_path}")
    args = _resolved_model_config(meta["model"], config_path)
    shapes = read_safetensors_header(weights)
    if args["arch"] == "swin":
        disagreements = _swin_disagreements(args, shapes)
    else:
        disagreements = _architecture_disagreements(args, shapes)
    if disagreements:  # said before the model is allocated: a wrong config.json could ask for any size
        raise ValueError(f"{config_path} disagrees with {weights}: " + "; ".join(disagreements))
    try:
        with no_weight_init():
            model = build_model({**meta["model"], "backend": backend})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{config_path}: invalid model config ({e})") from None
    _load_strict(model, _load_safetensors(weights), str(weights))
    return model.eval()


#: arguments that set the shapes the disagreement checks compare, and their type, per architecture
_SHAPE_ARGS = {
    "vit": {"img_size": int, "patch_size": int, "embed_dim": int, "depth": int, "mlp_ratio": float,
            "output_dim": int, "rpe": str},
    "swin": {"img_size": int, "patch_size": int, "embed_dim": int, "window_size": int, "mlp_ratio": float,
             "output_dim": int, "rpe": str, "depths": list, "num_heads": list},
}  # fmt: skip


def _resolved_model_config(model_cfg: Mapping[str, Any], config_path: Path) -> dict[str, Any]:
    """The ``model`` section of our ``config.json`` with its ``arch``, preset and the class's defaults filled
    in, the shape-setting arguments type-checked."""
    arch = model_cfg.get("arch", "vit")
    if arch not in ARCHS:
        raise ValueError(f"{config_path}: unknown model arch {arch!r}; choose one of {sorted(ARCHS)}")
    cls, presets = ARCHS[arch], ARCH_PRESETS[arch]
    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}  # fmt: skip
    preset = model_cfg.get("preset")
    if preset is not None and (not isinstance(preset, str) or preset not in presets):
        raise ValueError(f"{config_path}: unknown face {arch} preset {preset!r}; choose one of {sorted(presets)}")
    args = {**defaults, **(presets[preset] if preset else {}), **model_cfg, "arch": arch}
    for name, kind in _SHAPE_ARGS[arch].items():
        value = args[name]
        if kind is list:
            value = list(value) if isinstance(value, (list, tuple)) else value
            if not (isinstance(value, list) and value and all(type(v) is int and v > 0 for v in value)):
                raise ValueError(f"{config_path}: model {name} must be a list of positive ints, got {value!r}")
            args[name] = value
            continue
        if type(value) is bool or not isinstance(value, int if kind is int else (kind, int)):
            raise ValueError(f"{config_path}: model {name} must be {kind.__name__}, got {value!r}")
        if kind is not str and value <= 0:
            raise ValueError(f"{config_path}: model {name} must be positive, got {value!r}")
    return args


def _swin_disagreements(args: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """What a Swin config's architecture says and the weights' shapes do not."""
    patch = shapes.get("patch_embed.weight", ())
    depths, rpe = swin_layout(shapes)
    heads = [shapes.get(f"stages.{s}.blocks.0.attn.logit_scale", (None,))[0] for s in range(len(depths))]
    fc1 = shapes.get("stages.0.blocks.0.mlp.fc1.weight", (None,))
    head = shapes.get("head.2.weight", (None,))
    found = {
        "embed_dim": (patch[0] if patch else None, int(args["embed_dim"])),
        "patch_size": (patch[2] if len(patch) > 2 else None, int(args["patch_size"])),
        "depths": (depths, list(args["depths"])),
        "num_heads": (heads, list(args["num_heads"])),
        "mlp hidden units": (fc1[0], int(args["embed_dim"] * args["mlp_ratio"])),
        "output_dim": (head[0], int(args["output_dim"])),
        "rpe": (rpe, args["rpe"]),
    }
    problems = [f"config {name} gives {want!r} but the weights have {got!r}" for name, (got, want) in found.items()
                if got != want]  # fmt: skip
    features = head_inputs(int(args["img_size"]), int(args["patch_size"]), int(args["embed_dim"]), len(args["depths"]))
    if shapes.get("head.0.weight", (None, None))[1:] != (features,):
        problems.append(f"config img_size {args['img_size']!r} gives a head of {features} inputs but the weights "
                        f"have {shapes.get('head.0.weight')} (head.0.weight)")  # fmt: skip
    if rpe == "kprpe" == args["rpe"] and not problems:
        tables = args["depths"][0] * args["num_heads"][0]
        columns = shapes.get("stages.0.rpe.proj.weight", (None,))[0]
        problems += _bucket_disagreement(args.get("rpe_ratio"), tables, columns, "stages.0.rpe.proj")
        inputs = shapes.get("stages.0.rpe.proj.weight", (None, None))[1]
        problems += _keypoint_disagreement(args.get("num_keypoints"), inputs, "stages.0.rpe.proj")
    return problems


def _architecture_disagreements(args: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """What the config's architecture says and the weights' shapes do not (``"embed_dim 96 vs 64 in ..."``)."""

    def dim(key: str, axis: int) -> int | None:
        shape = shapes.get(key)
        return shape[axis] if shape is not None and len(shape) > axis else None

    patch, tokens = dim("patch_embed.weight", 2), dim("pos_embed", 1)
    side = math.isqrt(tokens) if tokens else None
    depth = 1 + max((int(m.group(1)) for k in shapes if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    rpe = "kprpe" if "kprpe.proj.weight" in shapes else "irpe" if "blocks.0.attn.rpe.weight" in shapes else "none"
    found = {
        "embed_dim": (dim("patch_embed.weight", 0), "patch_embed.weight"),
        "patch_size": (patch, "patch_embed.weight"),
        "img_size": (side * patch if side and patch and side * side == tokens else None, "pos_embed"),
        "depth": (depth, "blocks.*"),
        "mlp_ratio": (dim("blocks.0.mlp.fc1.weight", 0), "blocks.0.mlp.fc1.weight"),
        "output_dim": (dim("head.2.weight", 0), "head.2.weight"),
        "rpe": (rpe, "kprpe.proj / attn.rpe tables"),
    }
    want = dict(args)
    want["mlp_ratio"] = int(args["embed_dim"] * args["mlp_ratio"])  # the MLP's hidden width
    problems = []
    for name, (value, key) in found.items():
        if value != want[name]:
            said = f"{want[name]} hidden units" if name == "mlp_ratio" else want[name]
            problems.append(f"config {name} gives {said!r} but the weights have {value!r} ({key})")
    if rpe == "kprpe" == args["rpe"]:
        heads, layers = args.get("num_heads", 8), args["depth"]
        tables = {"per_head": heads, "per_layer": layers, "multihead": heads * layers}.get(args["kprpe_variant"], 1)
        problems += _bucket_disagreement(args.get("rpe_ratio"), tables, dim("kprpe.proj.weight", 0), "kprpe.proj")
        problems += _keypoint_disagreement(args.get("num_keypoints"), dim("kprpe.proj.weight", 1), "kprpe.proj")
    elif rpe == "irpe" == args["rpe"]:
        problems += _bucket_disagreement(args.get("rpe_ratio"), 1, dim("blocks.0.attn.rpe.weight", 2), "attn.rpe")
    return problems


def _keypoint_disagreement(count: Any, inputs: int | None, key: str) -> list[str]:
    """``2 * num_keypoints`` must be ``W_L``'s input width (else the build sizes ``W_L`` by the config)."""
    if type(count) is not int or 2 * count != inputs:
        return [f"config num_keypoints {count!r} but {key} reads {inputs} values (2 per keypoint)"]
    return []


def _bucket_disagreement(ratio: Any, tables: int, columns: int | None, key: str) -> list[str]:
    """The buckets ``rpe_ratio`` gives, times ``tables``, must be the weights' ``columns`` (checked before the
    model is built: a hand-edited ratio would otherwise size its tables, 1e6 asks for terabytes)."""
    try:
        buckets = num_buckets("product", float(ratio))
    except (TypeError, ValueError, OverflowError):
        return [f"config rpe_ratio {ratio!r} is not a bucket ratio"]
    if columns != buckets * tables:
        return [f"config rpe_ratio {ratio!r} gives {buckets} buckets x {tables} tables but {key} has {columns} columns"]
    return []


def save_pretrained(model: FaceViT | FaceSwin, folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/config.json`` (atomically); returns the folder.

    :func:`load_pretrained` reads it back (the config is the model's ``.config`` plus its ``arch``, ``"vit"``
    or ``"swin"``; ``backend`` is not stored).
    """
    from safetensors.torch import save_file

    if not isinstance(model, (FaceViT, FaceSwin)):
        raise TypeError(f"save_pretrained expects a FaceViT or FaceSwin, got {type(model).__name__}")
    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {"arch": arch_of(model)} | {k: v for k, v in model.config.items() if k != "backend"}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "model": config}
    atomic_write_text(folder / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    return folder
