"""A plain ViT whose position encoding is a constructor argument, so every encoding runs on one model.

``pos_embed`` (added to the tokens) and ``rpe`` (a bias inside every attention layer) are orthogonal:

* ``pos_embed="learned"`` (Abs-PE) or ``"none"``;
* ``rpe="none"``, ``"bias"`` (learned RPE tables on the bucket map, one per layer), ``"contextual"``
  (iRPE, key side, one per layer) or ``"kprpe"`` (one shared :class:`KeypointRPE` with a table per
  layer, variant ``kprpe_variant``).

The head follows the face models: ``global_pool="flatten"`` (all tokens, no CLS, as KP-RPE's face ViT),
``"avg"`` or ``"token"`` (needs ``class_token=True``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .baselines import ContextualRPE, RelPosBias
from .decay import position_parameter_names, position_rng, shared_modules
from .keypoint_rpe import KeypointRPE
from .layers import Block, init_linear_and_norm

__all__ = ["MLP_ACTS", "POS_EMBEDS", "RPE_MODES", "VisionTransformer"]

POS_EMBEDS = ("learned", "none")
RPE_MODES = ("none", "bias", "contextual", "kprpe")
POOLS = ("avg", "token", "flatten")
#: ``mlp_act`` name -> activation class of the blocks' MLPs
MLP_ACTS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu6": nn.ReLU6, "relu": nn.ReLU}


class VisionTransformer(nn.Module):
    """ViT with a choice of absolute and relative position encodings.

    Args:
        img_size: ``(H, W)`` of the input image (or one int).
        patch_size: square patch side in pixels.
        in_chans: input channels.
        num_classes: classifier outputs; 0 gives the pooled features.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: transformer size.
        mlp_act: the MLPs' activation, a :data:`MLP_ACTS` key (``"gelu"``; the face ViT uses ``"relu6"``).
        pos_embed: ``"learned"`` or ``"none"``.
        rpe: ``"none"``, ``"bias"``, ``"contextual"`` or ``"kprpe"``.
        rpe_method: bucket method for ``bias``/``contextual`` (KP-RPE always uses ``product``).
        rpe_ratio: bucket ratio.
        kprpe_variant: :data:`kprpe.core.keypoint_rpe.VARIANTS` key.
        num_keypoints: keypoints per image for ``kprpe``.
        kprpe_hidden_dim: MLP ``f(P)`` instead of the linear map when set.
        min_confidence: keypoint validity threshold (see :mod:`kprpe.core.geometry`).
        class_token: prepend a CLS token (it gets its own bucket).
        global_pool: ``"avg"``, ``"token"`` or ``"flatten"``.
        drop_rate, attn_drop_rate, drop_path_rate: regularisation.
        backend: attention backend (see :func:`kprpe.core.kprpe_attention`).

    Shape:
        - x: ``(B, in_chans, H, W)``
        - keypoints (``rpe="kprpe"``): ``(B, L, 2|3)`` in ``[0, 1]`` of this image
        - output: ``(B, num_classes)``, or ``(B, num_features)`` when ``num_classes == 0``
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 112,
        patch_size: int = 8,
        in_chans: int = 3,
        num_classes: int = 0,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        mlp_act: str = "gelu",
        pos_embed: str = "learned",
        rpe: str = "none",
        rpe_method: str = "product",
        rpe_ratio: float = 1.9,
        kprpe_variant: str = "multihead",
        num_keypoints: int = 5,
        kprpe_hidden_dim: int | None = None,
        min_confidence: float = 0.0,
        class_token: bool = False,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if pos_embed not in POS_EMBEDS:
            raise ValueError(f"unknown pos_embed {pos_embed!r}; choose one of {POS_EMBEDS}")
        if rpe not in RPE_MODES:
            raise ValueError(f"unknown rpe {rpe!r}; choose one of {RPE_MODES}")
        if mlp_act not in MLP_ACTS:
            raise ValueError(f"unknown mlp_act {mlp_act!r}; choose one of {sorted(MLP_ACTS)}")
        if global_pool not in POOLS:
            raise ValueError(f"unknown global_pool {global_pool!r}; choose one of {POOLS}")
        if global_pool == "token" and not class_token:
            raise ValueError("global_pool='token' needs class_token=True")
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if img_size[0] % patch_size or img_size[1] % patch_size:
            raise ValueError(f"image size {img_size} is not a multiple of patch size {patch_size}")
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid_size = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.num_prefix_tokens = 1 if class_token else 0
        num_tokens = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        self.num_keypoints = num_keypoints
        self.rpe_mode = rpe
        self.global_pool = global_pool
        self.num_features = embed_dim * num_tokens if global_pool == "flatten" else embed_dim

        self.patch_embed = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, embed_dim)) if pos_embed == "learned" else None
        self.pos_drop = nn.Dropout(drop_rate)

        self.kprpe = None
        if rpe == "kprpe":
            with position_rng():  # paired with the same model without it (kprpe.core.decay.position_rng)
                self.kprpe = KeypointRPE(
                    num_keypoints,
                    self.grid_size,
                    num_heads,
                    depth,
                    kprpe_variant,
                    rpe_ratio,
                    self.num_prefix_tokens,
                    kprpe_hidden_dim,
                    min_confidence,
                )
        drop_path = torch.linspace(0, drop_path_rate, depth).tolist()
        head_dim = embed_dim // num_heads

        def layer_rpe() -> nn.Module | None:
            with position_rng():
                if rpe == "bias":
                    return RelPosBias(num_heads, self.grid_size, rpe_method, rpe_ratio, self.num_prefix_tokens)
                if rpe == "contextual":
                    return ContextualRPE(head_dim, num_heads, self.grid_size, rpe_method, rpe_ratio,
                                         self.num_prefix_tokens)  # fmt: skip
            return None

        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio,
                qkv_bias,
                drop_rate,
                attn_drop_rate,
                drop_path[i],
                backend,
                layer_rpe(),
                MLP_ACTS[mlp_act],
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm's ViT init (trunc-normal 0.02 linears and embeddings); bias tables and W_L stay zero."""
        for m in shared_modules(self):  # paired: the same draws whatever the position encoding
            init_linear_and_norm(m)
        for p in (self.pos_embed, self.cls_token):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        with position_rng():
            for m in self.modules():
                if isinstance(m, (KeypointRPE, RelPosBias, ContextualRPE)):
                    m.reset_parameters()

    def no_weight_decay(self) -> set[str]:
        """Parameter names that should not be weight-decayed: embeddings, norms, biases and every position
        encoding (bias tables and KP-RPE's ``W_L``, :func:`kprpe.core.decay.position_parameter_names`)."""
        names = position_parameter_names(self)
        for name, p in self.named_parameters():
            if p.dim() <= 1 or name in ("pos_embed", "cls_token"):
                names.add(name)
        return names

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with the prefix tokens and the absolute position embedding: ``(B, N', C)``."""
        if x.dim() != 4 or tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"expected images (B, C, {self.img_size[0]}, {self.img_size[1]}), got {tuple(x.shape)}")
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, C)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        return self.pos_drop(x)

    def encode(self, x: torch.Tensor, keypoints: torch.Tensor | None = None) -> torch.Tensor:
        """The blocks and the final norm on tokens from :meth:`embed`: ``(B, N', C) -> (B, N', C)``.

        Subclasses may change the tokens in between (e.g. drop some in training) as long as the
        relative encodings still fit the token count.
        """
        if self.kprpe is not None and keypoints is None:
            raise ValueError("rpe='kprpe' needs keypoints: call model(x, keypoints)")
        if keypoints is not None and keypoints.shape[0] != x.shape[0]:
            raise ValueError(f"{keypoints.shape[0]} keypoint sets for a batch of {x.shape[0]} images")
        feats = self.kprpe.features(keypoints) if self.kprpe is not None else None
        for i, block in enumerate(self.blocks):
            if feats is not None:
                x = block(x, self.kprpe.layer_table(feats, i), self.kprpe.buckets)
            else:
                x = block(x)
        return self.norm(x)

    def forward_features(self, x: torch.Tensor, keypoints: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens after the last block and norm: ``(B, N', C)``."""
        return self.encode(self.embed(x), keypoints)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_pool == "token":
            x = x[:, 0]
        elif self.global_pool == "avg":
            x = x[:, self.num_prefix_tokens :].mean(dim=1)
        else:
            x = x.flatten(1)
        return self.head(x)

    def forward(self, x: torch.Tensor, keypoints: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, keypoints))
