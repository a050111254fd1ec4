"""How much a trained model's attention depends on its keypoints: the bias-side half of the reliance probe.

A KP-RPE model can learn to ignore its keypoints (``W_L`` stays near its zero initialisation, or learns a
term every query shares). Whether it did is read off the attention itself:

* :class:`AttentionRecorder` hooks every :class:`~kprpe.core.Attention` of a model (ViT blocks and Swin
  window blocks alike) and keeps, per call, the dense bias ``B = gather(table, buckets)`` ``(B, H, N, N)``
  and the logits' spread within a row (``std_j`` of ``(q k^T) * d^-0.5 + B``, or Swin V2's scaled cosine
  logits plus ``B``; masked pairs left out);
* :func:`bias_reliance` runs the model twice, once with the true keypoints and once with others (a
  constant pose, shuffled keypoints), and reports per layer the mean ``|B|``, the mean ``|B_true - B_other|``
  (the **keypoint part** of the bias) and the row spread of the logits it competes with.

A keypoint part of ~0.03 logit against a row spread of 1-2 means attention is routed the same whatever the
keypoints; re-routing attention takes a change of the order of the spread. The task packages add the
output-side half (accuracy and embedding cosine with true / constant / shuffled keypoints):
:func:`face.eval.keypoint_reliance`, :func:`kprpe_gait.eval.joint_reliance`.

Example::

    with AttentionRecorder(model) as rec:
        model(x, keypoints)
    rec.records[0].bias.shape      # (B, H, N, N) of the first attention call
    rows = bias_reliance(model, lambda: model(x, keypoints), lambda: model(x, template))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .attention import additive_mask, gather_bias
from .baselines import ContextualRPE
from .layers import Attention

__all__ = ["AttentionRecord", "AttentionRecorder", "bias_reliance", "format_bias_reliance"]


@dataclass
class AttentionRecord:
    """One attention call seen by :class:`AttentionRecorder`.

    Attributes:
        layer: the module's name in the model (``blocks.3.attn``, ``...stages.0.blocks.1.attn``).
        bias: ``(B, H, N, N)`` float32 dense bias added to the logits, or ``None`` without one.
        logit_spread: mean over ``(b, h, i)`` of the standard deviation over keys ``j`` of the biased logits
            (pairs masked out by the attention mask left out).
    """

    layer: str
    bias: torch.Tensor | None
    logit_spread: float


class AttentionRecorder:
    """Context manager that records the bias and the logit spread of every :class:`Attention` call.

    Args:
        model: any module containing :class:`~kprpe.core.Attention` layers.
        keep_bias: keep each call's dense bias (needed by :func:`bias_reliance`; ``(B, H, N, N)`` per call,
            so probe a few hundred samples at a time).

    Attributes:
        records: one :class:`AttentionRecord` per call, in call order.
    """

    def __init__(self, model: nn.Module, keep_bias: bool = True) -> None:
        self.model = model
        self.keep_bias = keep_bias
        self.records: list[AttentionRecord] = []
        self._handles: list = []
        self._names = {m: name for name, m in model.named_modules() if isinstance(m, Attention)}
        if not self._names:
            raise ValueError(f"{type(model).__name__} has no kprpe.core Attention layer to record")

    def __enter__(self) -> AttentionRecorder:
        self.records = []
        for module in self._names:
            self._handles.append(module.register_forward_pre_hook(self._hook, with_kwargs=True))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @torch.no_grad()
    def _hook(self, module: Attention, args: tuple, kwargs: dict) -> None:
        names = ("x", "table", "buckets", "attn_mask")
        given = dict(zip(names, args))
        given.update({k: v for k, v in kwargs.items() if k in names})
        x, table, buckets, mask = (given.get(n) for n in names)
        q, k, _, scale = module.heads(x)
        q, k = q.float(), k.float()
        if module.rpe is not None:
            table = module.rpe(q, scale) if isinstance(module.rpe, ContextualRPE) else module.rpe()
            buckets = module.rpe.buckets
        logits = (q @ k.transpose(-2, -1)) * scale  # (B, H, N, N), as the forward computes them
        bias = None
        if table is not None:
            bias = gather_bias(table.float(), buckets).expand_as(logits)
            logits = logits + bias
        self.records.append(
            AttentionRecord(
                self._names[module],
                bias.clone() if bias is not None and self.keep_bias else None,
                _row_spread(logits, mask),
            )  # fmt: skip
        )


def _row_spread(logits: torch.Tensor, attn_mask: torch.Tensor | None) -> float:
    """Mean over rows of the standard deviation over the attended keys of ``logits (B, H, N, N)``."""
    mask = additive_mask(attn_mask, torch.float32)
    if mask is None:
        return float(logits.std(-1, unbiased=False).mean())
    keep = (mask.expand_as(logits) > -1.0).float()  # Swin's shift mask uses -100 / -inf for cut pairs
    count = keep.sum(-1).clamp_min(1.0)
    mean = (logits * keep).sum(-1) / count
    var = (((logits - mean[..., None]) ** 2) * keep).sum(-1) / count
    return float(var.sqrt().mean())


def bias_reliance(
    model: nn.Module, run_true: Callable[[], object], run_other: Callable[[], object]
) -> list[dict[str, float | str]]:
    """Per attention layer: how much of its bias the keypoints decide.

    Args:
        model: the model the two calls run (its :class:`Attention` layers are recorded).
        run_true: runs the model on a batch with its true keypoints.
        run_other: runs it on the same batch with other keypoints (a constant pose, shuffled ones).

    Returns:
        one row per layer (calls of a layer pooled): ``layer``, ``bias`` (mean ``|B|`` with the true
        keypoints), ``keypoint_bias`` (mean ``|B_true - B_other|``), ``logit_spread`` (the rows' spread,
        true keypoints) and ``keypoint_bias_over_spread``. Layers without a bias report 0 for both.

    Raises:
        ValueError: the two runs did not make the same attention calls (not the same batch).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            with AttentionRecorder(model) as true_rec:
                run_true()
            with AttentionRecorder(model) as other_rec:
                run_other()
    finally:
        model.train(was_training)
    if [r.layer for r in true_rec.records] != [r.layer for r in other_rec.records]:
        raise ValueError("the two runs made different attention calls: run the same inputs with other keypoints")
    sums: dict[str, list[float]] = {}
    for a, b in zip(true_rec.records, other_rec.records):
        if a.bias is not None and b.bias is not None and a.bias.shape != b.bias.shape:
            raise ValueError(f"{a.layer}: bias shapes differ between the runs ({a.bias.shape} vs {b.bias.shape})")
        row = sums.setdefault(a.layer, [0.0, 0.0, 0.0, 0.0])  # |B|, |dB|, spread, calls
        if a.bias is not None:
            row[0] += float(a.bias.abs().mean())
            row[1] += float((a.bias - b.bias).abs().mean()) if b.bias is not None else float(a.bias.abs().mean())
        row[2] += a.logit_spread
        row[3] += 1
    out = []
    for layer, (bias, delta, spread, calls) in sums.items():
        bias, delta, spread = bias / calls, delta / calls, spread / calls
        out.append({"layer": layer, "bias": bias, "keypoint_bias": delta, "logit_spread": spread,
                    "keypoint_bias_over_spread": delta / spread if spread > 0 else math.nan})  # fmt: skip
    return out


def format_bias_reliance(rows: list[dict[str, float | str]]) -> str:
    """A markdown table of :func:`bias_reliance` rows."""
    lines = [
        "| layer | mean abs bias | keypoint part | logit spread | keypoint part / spread |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['bias']:.4f} | {r['keypoint_bias']:.4f} | {r['logit_spread']:.3f} | "
                     f"{r['keypoint_bias_over_spread']:.4f} |")  # fmt: skip
    return "\n".join(lines)
