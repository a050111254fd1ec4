import pytest
import torch

from kprpe.core import ContextualRPE, RelPosBias, bucket_map, cross_buckets, gather_bias


@pytest.mark.parametrize("method", ["product", "euclidean", "quant", "exact"])
def test_rel_pos_bias_is_a_per_head_lookup(method):
    rpe = RelPosBias(num_heads=3, grid_size=(4, 5), method=method, init_std=0.5)
    bias = gather_bias(rpe(), rpe.buckets)
    buckets, k = bucket_map(4, 5, method)
    assert rpe.weight.shape == (3, k)
    expected = rpe.weight[:, buckets]  # (H, N, N)
    torch.testing.assert_close(bias[0], expected)


def test_cross_method_sums_a_row_and_a_column_lookup():
    rpe = RelPosBias(num_heads=2, grid_size=(3, 4), method="cross", num_prefix_tokens=1, init_std=1.0)
    rows, cols, s = cross_buckets(3, 4, num_prefix_tokens=1)
    expected = rpe.weight[:, 0, rows] + rpe.weight[:, 1, cols]  # (H, N, N)
    torch.testing.assert_close(gather_bias(rpe(), rpe.buckets)[0], expected)


def test_shared_head_broadcasts_and_zero_init_by_default():
    rpe = RelPosBias(num_heads=4, grid_size=(3, 3), shared_head=True)
    assert rpe.weight.shape == (1, 49) and torch.count_nonzero(rpe.weight) == 0
    assert rpe().shape == (1, 4, 9, 49)


@pytest.mark.parametrize(
    "method, shared", [("product", True), ("product", False), ("cross", True), ("euclidean", False)]
)
def test_contextual_rpe_matches_its_definition(method, shared):
    torch.manual_seed(0)
    heads, d, grid = 2, 4, (3, 3)
    rpe = ContextualRPE(d, heads, grid, method=method, shared_head=shared, num_prefix_tokens=1)
    torch.nn.init.normal_(rpe.weight)
    q = torch.randn(2, heads, 10, d)
    bias = gather_bias(rpe(q), rpe.buckets)  # (B, H, N, N)
    scale = d**-0.5
    weight = rpe.weight.expand(heads, -1, -1)
    if method == "cross":
        rows, cols, s = cross_buckets(*grid, num_prefix_tokens=1)
        w_rows, w_cols = weight[..., :s], weight[..., s:]
        expected = torch.einsum("bhnd,hdnm->bhnm", q * scale, w_rows[:, :, rows]) + torch.einsum(
            "bhnd,hdnm->bhnm", q * scale, w_cols[:, :, cols]
        )
    else:
        buckets, _ = bucket_map(*grid, method, num_prefix_tokens=1)
        expected = torch.einsum("bhnd,hdnm->bhnm", q * scale, weight[:, :, buckets])
    torch.testing.assert_close(bias, expected, rtol=1e-5, atol=1e-5)


def test_contextual_rpe_checks_its_input():
    rpe = ContextualRPE(8, 2, (3, 3))
    with pytest.raises(ValueError, match=r"\(B, H, 9, 8\)"):
        rpe(torch.randn(1, 2, 10, 8))
