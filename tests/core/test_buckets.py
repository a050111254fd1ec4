import math

import pytest
import torch

from kprpe.core import bucket_map, cross_buckets, num_buckets, piecewise_index, product_buckets
from kprpe.core.buckets import check_bucket_range, check_buckets


def g_scalar(x: float, ratio: float = 1.9) -> int:
    """iRPE's quantiser written out with the math module, one value at a time (independent of torch)."""
    alpha, beta, gamma = ratio, 2 * ratio, 8 * ratio
    if abs(x) <= alpha:
        return int(round(x))
    mag = min(beta, round(alpha + math.log(abs(x) / alpha) / math.log(gamma / alpha) * (beta - alpha)))
    return int(math.copysign(1, x) * int(mag))


def test_per_axis_offsets_follow_the_documented_table():
    # offsets 0, 1, 2, 3, >=4 fall into 0, 1, 2, 2, 3 (and mirror for negative offsets)
    offsets = torch.tensor([0, 1, 2, 3, 4, 5, 8, 30, 1000])
    assert piecewise_index(offsets).tolist() == [0, 1, 2, 2, 3, 3, 3, 3, 3]
    assert piecewise_index(-offsets).tolist() == [0, -1, -2, -2, -3, -3, -3, -3, -3]


@pytest.mark.parametrize("ratio", [0.5, 1.0, 1.9, 2.5, 4.0])
def test_piecewise_matches_scalar_rederivation(ratio):
    xs = torch.arange(-60, 61)
    got = piecewise_index(xs, ratio).tolist()
    assert got == [g_scalar(float(x), ratio) for x in xs.tolist()]


def test_product_buckets_14x14_has_49_buckets_and_known_values():
    buckets, k = product_buckets(14, 14, ratio=1.9)
    assert k == 49 and buckets.shape == (196, 196) and buckets.dtype == torch.int64
    assert set(buckets.unique().tolist()) == set(range(49))
    # same token: offsets (0, 0) -> (0+3)*7 + (0+3) = 24
    assert torch.all(buckets.diagonal() == 24)
    # query (7, 7), key (7, 8): dr = 0, dc = -1 -> 3*7 + 2 = 23
    assert buckets[7 * 14 + 7, 7 * 14 + 8] == 23
    # query (0, 0), key (13, 2): dr = -13 -> -3, dc = -2 -> -2 -> 0*7 + 1 = 1
    assert buckets[0, 13 * 14 + 2] == 1
    # query (10, 1), key (7, 1): dr = 3 -> 2, dc = 0 -> (2+3)*7 + 3 = 38
    assert buckets[10 * 14 + 1, 7 * 14 + 1] == 38


@pytest.mark.parametrize("h,w", [(3, 5), (5, 5), (7, 7), (14, 14), (15, 10), (1, 4)])
def test_product_buckets_match_independent_loops(h, w):
    buckets, k = product_buckets(h, w)
    b = 3
    for i in range(h * w):
        ri, ci = divmod(i, w)
        for j in range(h * w):
            rj, cj = divmod(j, w)
            expected = (g_scalar(ri - rj) + b) * (2 * b + 1) + (g_scalar(ci - cj) + b)
            assert buckets[i, j] == expected


def test_product_buckets_are_antisymmetric_and_separable():
    buckets, k = product_buckets(6, 9)
    # swapping query and key negates both offsets: bucket -> K - 1 - bucket
    assert torch.equal(buckets.T, k - 1 - buckets)
    rows, cols, s = cross_buckets(6, 9)
    assert torch.equal(buckets, rows * s + cols)


def test_other_methods_match_their_definitions():
    h, w = 6, 7
    rows = torch.arange(h).repeat_interleave(w)
    cols = torch.arange(w).repeat(h)
    dr = rows[:, None] - rows[None, :]
    dc = cols[:, None] - cols[None, :]
    euc, k_euc = bucket_map(h, w, "euclidean")
    quant, k_quant = bucket_map(h, w, "quant")
    exact, k_exact = bucket_map(h, w, "exact")
    assert k_euc == k_quant == 7
    for i in range(h * w):
        for j in range(h * w):
            d2 = int(dr[i, j] ** 2 + dc[i, j] ** 2)
            assert euc[i, j] == g_scalar(float(round(math.sqrt(d2)))) + 3
            assert quant[i, j] == g_scalar(float(d2)) + 3
    assert k_exact == (2 * h - 1) * (2 * w - 1)
    assert exact.unique().numel() == k_exact


@pytest.mark.parametrize("h, w", [(6, 7), (3, 5), (1, 4), (4, 1)])
def test_exact_buckets_enumerate_offsets_in_swin_order(h, w):
    """``exact`` is Swin's relative-position index: every (row, column) offset of query minus key gets its
    own slot, slots numbered by enumerating row offsets (outer) and column offsets (inner) from the most
    negative up. Derived here by listing the offsets, not by the implementation's closed form."""
    slots = {}
    for dr in range(-(h - 1), h):
        for dc in range(-(w - 1), w):
            slots[(dr, dc)] = len(slots)
    exact, k = bucket_map(h, w, "exact")
    assert k == len(slots)
    tokens = [(r, c) for r in range(h) for c in range(w)]  # row-major
    expected = [[slots[(ri - rj, ci - cj)] for rj, cj in tokens] for ri, ci in tokens]
    assert exact.tolist() == expected


def test_prefix_tokens_get_their_own_bucket():
    buckets, k = product_buckets(3, 4, num_prefix_tokens=2)
    base, k0 = product_buckets(3, 4)
    assert k == k0 + 1 and buckets.shape == (14, 14)
    assert torch.all(buckets[:2, :] == k0) and torch.all(buckets[:, :2] == k0)
    assert torch.equal(buckets[2:, 2:], base)
    assert num_buckets("product", 1.9, 2) == 50
    rows, cols, s = cross_buckets(3, 4, num_prefix_tokens=1)
    assert s == 8 and torch.all(rows[0] == 7) and torch.all(cols[:, 0] == 7)


def test_maps_are_cached_per_grid_and_device():
    a, _ = product_buckets(5, 5)
    b, _ = product_buckets(5, 5, device="cpu")
    c, _ = product_buckets(5, 6)
    assert a is b and a is not c


def test_ratio_changes_bucket_count():
    _, k = product_buckets(8, 8, ratio=1.0)
    assert k == (2 * 2 + 1) ** 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(h=0, w=3), "positive ints"),
        (dict(h=3, w=3, method="cross"), "cross_buckets"),
        (dict(h=3, w=3, method="hamming"), "unknown bucket method"),
        (dict(h=3, w=3, ratio=-1.0), "ratio"),
        (dict(h=3, w=3, num_prefix_tokens=-1), "num_prefix_tokens"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bucket_map(**kwargs)


def test_check_buckets_names_the_mismatch():
    buckets, k = product_buckets(4, 4)
    check_buckets(buckets, 16, 16, k)
    with pytest.raises(ValueError, match="another grid"):
        check_buckets(buckets, 25, 25, k)
    with pytest.raises(ValueError, match="only 10 buckets"):
        check_buckets(buckets, 16, 16, 10)
    with pytest.raises(TypeError, match="int64"):
        check_buckets(buckets.float(), 16, 16, k)


def test_bucket_range_is_checked_once_per_map_and_again_after_an_edit(monkeypatch):
    """The min/max of a map (a device sync on CUDA) is computed once per map; an in-place edit or another
    map is checked again, and negative or too-large buckets are errors on every device."""
    buckets = product_buckets(4, 4)[0].clone()
    reductions = []
    real_stack = torch.stack
    monkeypatch.setattr(torch, "stack", lambda *a, **kw: reductions.append(1) or real_stack(*a, **kw))
    for _ in range(3):
        check_buckets(buckets, 16, 16, 49)
    assert len(reductions) == 1
    check_buckets(buckets, 16, 16, 50)  # another table width: checked again
    assert len(reductions) == 2
    buckets[3, 5] = 49
    with pytest.raises(ValueError, match="bucket 49 but the table has only 49"):
        check_buckets(buckets, 16, 16, 49)
    buckets[3, 5] = -1
    with pytest.raises(ValueError, match="negative bucket"):
        check_bucket_range(buckets, 49)
