"""face.detect.nms against a brute-force NMS written from the definition, and against torchvision when it loads."""

import importlib

import pytest
import torch

from face.detect.nms import batched_nms, nms


def _iou(a: list[float], b: list[float]) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _brute_force(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, threshold: float) -> list[int]:
    """Keep a box iff its IoU with every kept box of its category with a higher score is <= threshold."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i].item())
    kept: list[int] = []
    for i in order:
        if all(idxs[k] != idxs[i] or _iou(boxes[k].tolist(), boxes[i].tolist()) <= threshold for k in kept):
            kept.append(i)
    return kept


def _random_boxes(count: int, seed: int, categories: int = 3, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 100
    size = 5 + torch.rand(count, 2, generator=generator, dtype=torch.float64) * 40
    boxes = torch.cat([corner, corner + size], 1).to(dtype)
    scores = torch.randperm(count, generator=generator).to(dtype) / count  # distinct: no tie-order question
    idxs = torch.randint(0, categories, (count,), generator=generator)
    return boxes, scores, idxs


def _no_pair_near(boxes: torch.Tensor, threshold: float, margin: float = 1e-5) -> bool:
    """True when no pair has an IoU within ``margin`` of the threshold (float32 vs float64 cannot differ)."""
    rows = boxes.tolist()
    return all(abs(_iou(a, b) - threshold) > margin for i, a in enumerate(rows) for b in rows[i + 1 :])


@pytest.mark.parametrize("count", [1, 7, 60, 200])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_batched_nms_matches_the_definition(count, threshold):
    boxes, scores, idxs = _random_boxes(count, seed=count)
    assert _no_pair_near(boxes, threshold)
    assert batched_nms(boxes, scores, idxs, threshold).tolist() == _brute_force(boxes, scores, idxs, threshold)
    single = torch.zeros_like(idxs)
    assert nms(boxes, scores, threshold).tolist() == _brute_force(boxes, scores, single, threshold)


def test_large_input_takes_the_per_category_route_with_the_same_result():
    boxes, scores, idxs = _random_boxes(1200, seed=5, categories=4)  # 4800 coordinates > 4000
    kept = batched_nms(boxes, scores, idxs, 0.5)
    per_category = [
        set(torch.where(idxs == c)[0][nms(boxes[idxs == c], scores[idxs == c], 0.5)].tolist()) for c in range(4)
    ]
    assert set(kept.tolist()) == set().union(*per_category)
    assert torch.all(scores[kept][:-1] >= scores[kept][1:])  # by decreasing score


def test_hand_computed_case():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]]).float()
    scores = torch.tensor([0.9, 0.8, 0.95, 0.1, 0.7])
    # IoU(0, 1) = 90 / 110 = 0.818; IoU(0, 4) = 50 / 150 = 0.333; box 2 == box 0 but another image.
    idxs = torch.tensor([0, 0, 1, 0, 0])
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == [2, 0, 4, 3]
    assert batched_nms(boxes, scores, idxs, 0.9).tolist() == [2, 0, 1, 4, 3]
    assert batched_nms(boxes, scores, idxs, 0.3).tolist() == [2, 0, 3]
    assert nms(boxes, scores, 0.5).tolist() == [2, 4, 3]  # one category: box 2 now suppresses box 0 and 1


def test_iou_exactly_at_the_threshold_is_kept():
    boxes = torch.tensor([[0.0, 0.0, 4.0, 1.0], [2.0, 0.0, 6.0, 1.0]])  # inter 2, union 6: IoU 1/3
    scores = torch.tensor([1.0, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    boxes = torch.tensor([[0.0, 0.0, 3.0, 1.0], [1.0, 0.0, 4.0, 1.0]])  # inter 2, union 4: IoU 0.5 exactly
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]


def test_empty_and_degenerate_inputs():
    empty = torch.zeros(0, 4)
    assert batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).dtype == torch.int64
    assert nms(empty, torch.zeros(0), 0.5).numel() == 0
    points = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])  # zero-area boxes: 0/0, never suppress
    assert nms(points, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]
    with pytest.raises(ValueError, match="boxes must be"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="same floating dtype|share one floating dtype"):
        nms(torch.zeros(3, 4), torch.zeros(3, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="idxs must be"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, dtype=torch.long), 0.5)


def _torchvision_ops():
    try:
        return importlib.import_module("torchvision.ops")
    except Exception as e:  # noqa: BLE001 -- the PyPI wheel raises RuntimeError beside a CPU build of torch
        pytest.skip(f"torchvision does not import here ({type(e).__name__}: {e})")


@pytest.mark.parametrize("count", [50, 1500])  # both of torchvision's routes
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_as_torchvision_including_ties(count, dtype):
    ops = _torchvision_ops()
    boxes, _, idxs = _random_boxes(count, seed=count + 1, dtype=dtype)
    boxes = boxes.round()  # integer corners: many exactly equal IoUs
    scores = (torch.arange(count) % 7).to(dtype)  # heavy ties
    for threshold in (0.2, 0.5, 0.7):
        assert torch.equal(batched_nms(boxes, scores, idxs, threshold), ops.batched_nms(boxes, scores, idxs, threshold))
        assert torch.equal(nms(boxes, scores, threshold), ops.nms(boxes, scores, threshold))
