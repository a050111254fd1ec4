import math

import pytest
import torch
import torch.nn.functional as F

from kprpe.core import VARIANTS, KeypointRPE, compact_window_buckets, patch_centers, product_buckets


def naive_tables(rpe: KeypointRPE, keypoints: torch.Tensor) -> list[torch.Tensor]:
    """Per-element re-derivation of f(P) from the paper (eq. 8-11) and the (depth, head, bucket) layout."""
    batch = keypoints.shape[0]
    h, w = rpe.grid_size
    grid = patch_centers(h, w, dtype=torch.float64)
    weight = rpe.proj.weight.detach().double()
    bias = rpe.proj.bias.detach().double()
    k = rpe.num_buckets
    heads_out = rpe.num_heads if rpe.per_head else 1
    out = []
    for layer in range(rpe.depth):
        table = torch.zeros(batch, rpe.num_heads, h * w, k, dtype=torch.float64)
        for b in range(batch):
            valid = [bool(torch.isfinite(keypoints[b, l, :2]).all()) for l in range(rpe.num_keypoints)]
            if rpe.relative:
                feats = []
                for n in range(h * w):
                    row = []
                    for l in range(rpe.num_keypoints):
                        if valid[l]:
                            row += [grid[n, 0] - keypoints[b, l, 0].double(), grid[n, 1] - keypoints[b, l, 1].double()]
                        else:
                            row += [0.0, 0.0]
                    feats.append(torch.tensor(row, dtype=torch.float64))
            else:
                row = []
                for l in range(rpe.num_keypoints):
                    row += [keypoints[b, l, 0].item(), keypoints[b, l, 1].item()] if valid[l] else [0.0, 0.0]
                feats = [torch.tensor(row, dtype=torch.float64)] * (h * w)
            for head in range(rpe.num_heads):
                col0 = ((layer if rpe.per_layer else 0) * heads_out + (head if rpe.per_head else 0)) * k
                for n in range(h * w):
                    table[b, head, n] = weight[col0 : col0 + k] @ feats[n] + bias[col0 : col0 + k]
        out.append(table)
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tables_match_naive_rederivation_for_every_variant(variant):
    torch.manual_seed(0)
    rpe = KeypointRPE(num_keypoints=3, grid_size=(2, 3), num_heads=2, depth=3, variant=variant)
    torch.nn.init.normal_(rpe.proj.weight)
    torch.nn.init.normal_(rpe.proj.bias)
    kp = torch.rand(2, 3, 2)
    tables = rpe(kp)
    expected = naive_tables(rpe, kp)
    assert len(tables) == 3
    for got, exp in zip(tables, expected):
        assert got.shape == (2, 2, 6, 49)
        torch.testing.assert_close(got.double(), exp, rtol=1e-5, atol=1e-5)


def test_output_columns_and_parameter_count_per_variant():
    L, H, D, K = 5, 4, 6, 49
    expected = {"absolute": K, "relative": K, "per_head": H * K, "per_layer": D * K, "multihead": D * H * K}
    for variant, cols in expected.items():
        rpe = KeypointRPE(L, (7, 7), H, D, variant)
        assert rpe.proj.out_features == cols and rpe.proj.in_features == 2 * L


def test_zero_initialised_and_reset_is_idempotent():
    rpe = KeypointRPE(5, (4, 4), 2, 2, hidden_dim=8)
    assert torch.count_nonzero(rpe.proj.weight) == 0 and torch.count_nonzero(rpe.proj.bias) == 0
    tables = rpe(torch.rand(3, 5, 2))
    assert all(torch.count_nonzero(t) == 0 for t in tables)
    torch.nn.init.normal_(rpe.proj.weight)
    rpe.reset_parameters()
    rpe.reset_parameters()
    assert torch.count_nonzero(rpe.proj.weight) == 0
    assert torch.count_nonzero(rpe.hidden[0].weight) > 0  # the MLP's first layer keeps a normal init


def test_invalid_keypoints_contribute_nothing_and_never_nan():
    torch.manual_seed(1)
    rpe = KeypointRPE(3, (3, 3), 2, 1, min_confidence=0.5)
    torch.nn.init.normal_(rpe.proj.weight)
    kp = torch.tensor([[[0.2, 0.3, 0.9], [math.nan, math.nan, 0.9], [0.7, 0.1, 0.2]]])
    (table,) = rpe(kp)
    assert torch.isfinite(table).all()
    # the same table comes out when the invalid keypoints' weight columns are removed entirely
    ref = KeypointRPE(1, (3, 3), 2, 1)
    with torch.no_grad():
        ref.proj.weight.copy_(rpe.proj.weight[:, :2])
        ref.proj.bias.copy_(rpe.proj.bias)
    (expected,) = ref(kp[:, :1, :2])
    torch.testing.assert_close(table, expected)
    # moving an invalid keypoint changes nothing
    kp2 = kp.clone()
    kp2[0, 2, :2] = torch.tensor([0.0, 0.9])
    torch.testing.assert_close(rpe(kp2)[0], table)


def test_keypoint_gradient_is_off_by_default_and_on_by_option():
    kp = torch.rand(2, 5, 2, requires_grad=True)
    rpe = KeypointRPE(5, (4, 4), 2, 1)
    torch.nn.init.normal_(rpe.proj.weight)
    rpe(kp)[0].sum().backward()
    assert kp.grad is None and rpe.proj.weight.grad is not None
    rpe = KeypointRPE(5, (4, 4), 2, 1, keypoint_grad=True)
    torch.nn.init.normal_(rpe.proj.weight)
    rpe(kp)[0].square().sum().backward()
    assert kp.grad is not None and torch.count_nonzero(kp.grad) > 0


def test_prefix_tokens_extend_rows_and_buckets():
    rpe = KeypointRPE(5, (3, 4), 2, 2, num_prefix_tokens=1)
    torch.nn.init.normal_(rpe.proj.weight)
    torch.nn.init.normal_(rpe.proj.bias)
    tables = rpe(torch.rand(2, 5, 2))
    assert tables[0].shape == (2, 2, 13, 50) and rpe.buckets.shape == (13, 13)
    # the prefix query sees zero offsets: its row is W_L's bias
    cols = rpe.proj.bias.view(2, 2, 50)
    torch.testing.assert_close(tables[1][:, :, 0], cols[1].expand(2, 2, 50))
    assert torch.equal(rpe.buckets, product_buckets(3, 4, num_prefix_tokens=1)[0])


@pytest.mark.parametrize("hidden_dim", [None, 6])
def test_prefix_rows_are_f_of_zero_offsets_whatever_the_keypoints(hidden_dim):
    """A prefix (CLS) query's rows: ``W_L``'s bias for the linear map, ``W_L GELU(b_1) + b_L`` with the
    hidden layer (written out here), and the same for any keypoints."""
    torch.manual_seed(4)
    rpe = KeypointRPE(5, (3, 4), 2, 2, num_prefix_tokens=2, hidden_dim=hidden_dim)
    torch.nn.init.normal_(rpe.proj.weight)
    torch.nn.init.normal_(rpe.proj.bias)
    if hidden_dim is None:
        expected = rpe.proj.bias
    else:
        torch.nn.init.normal_(rpe.hidden[0].bias)
        b1 = rpe.hidden[0].bias
        expected = rpe.proj.weight @ (0.5 * b1 * (1 + torch.erf(b1 / math.sqrt(2)))) + rpe.proj.bias
    expected = expected.detach().view(2, 2, 50)  # (layer, head, bucket)
    tables_a, tables_b = rpe(torch.rand(2, 5, 2)), rpe(torch.rand(2, 5, 2))
    for layer in range(2):
        for prefix in range(2):
            torch.testing.assert_close(tables_a[layer][:, :, prefix], expected[layer].expand(2, 2, 50))
            torch.testing.assert_close(tables_b[layer][:, :, prefix], expected[layer].expand(2, 2, 50))
    assert not torch.allclose(tables_a[0][:, :, 2:], tables_b[0][:, :, 2:])  # grid rows do follow the keypoints


def authors_relative_keypoints(keypoints: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """The authors' keypoint offsets as their released face code describes them (CVLface, KP-RPE's
    ``relative_keypoints``), transcribed step by step for a square grid of ``num_tokens`` patches:

    1. ``side = sqrt(N)``; patch centres are the midpoints of ``side + 1`` evenly spaced points on [0, 1];
    2. a meshgrid of the centres with matrix ('ij') indexing: the first output varies along the first
       axis (grid rows), the second along the second axis (grid columns);
    3. each token's point stacks the column-varying output first, then the row-varying one, i.e. (x, y),
       flattened row-major to ``(N, 2)``;
    4. offsets are token point minus keypoint, ``(B, N, L, 2)``, flattened to ``(B, N, 2L)``.
    """
    side = math.isqrt(num_tokens)
    assert side * side == num_tokens, "the authors' grid is square"
    edges = torch.linspace(0, 1, side + 1, dtype=keypoints.dtype)
    centres = (edges[:-1] + edges[1:]) / 2
    along_rows, along_cols = torch.meshgrid(centres, centres, indexing="ij")
    points = torch.stack([along_cols, along_rows], dim=-1).reshape(num_tokens, 2)
    offsets = points[None, :, None, :] - keypoints[:, None, :, :]
    return offsets.flatten(2)


def authors_tables(rpe: KeypointRPE, keypoints: torch.Tensor) -> list[torch.Tensor]:
    """The authors' tables per layer from their ``make_kprpe_input`` description: one linear map of the
    offsets (of the flattened keypoints for ``keypoint``), its output viewed as (groups, buckets) per token
    and moved to (batch, group, token, bucket); ``unshared`` variants split the groups into ``depth``
    consecutive chunks, one per layer (so columns run layer-major, then head, then bucket)."""
    batch, num_tokens, k = keypoints.shape[0], rpe.num_tokens, rpe.num_buckets
    if rpe.relative:
        out = F.linear(authors_relative_keypoints(keypoints, num_tokens), rpe.proj.weight, rpe.proj.bias)
    else:
        out = F.linear(keypoints.flatten(1)[:, None, :], rpe.proj.weight, rpe.proj.bias)  # (B, 1, cols)
    groups = out.shape[-1] // k
    out = out.view(batch, out.shape[1], groups, k).transpose(1, 2)  # (B, groups, N or 1, K)
    per_layer = out.chunk(rpe.depth, dim=1) if rpe.per_layer else [out] * rpe.depth
    return [t.expand(batch, rpe.num_heads, num_tokens, k) for t in per_layer]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("side", [4, 7])
def test_tables_match_the_authors_keypoint_offsets(variant, side):
    torch.manual_seed(5)
    rpe = KeypointRPE(num_keypoints=5, grid_size=(side, side), num_heads=3, depth=2, variant=variant)
    torch.nn.init.normal_(rpe.proj.weight)
    torch.nn.init.normal_(rpe.proj.bias)
    keypoints = torch.rand(2, 5, 2)
    with torch.no_grad():
        for got, expected in zip(rpe(keypoints), authors_tables(rpe, keypoints), strict=True):
            torch.testing.assert_close(got, expected)


def test_absolute_variant_is_the_same_for_every_query():
    rpe = KeypointRPE(5, (4, 4), 3, 2, variant="absolute")
    torch.nn.init.normal_(rpe.proj.weight)
    (t0, t1) = rpe(torch.rand(2, 5, 2))
    assert torch.equal(t0, t1)
    assert torch.allclose(t0, t0[:, :1, :1].expand_as(t0))


def test_buffers_follow_dtype_and_stay_out_of_state_dict():
    rpe = KeypointRPE(5, (4, 4), 2, 1).double()
    assert rpe.grid.dtype == torch.float64 and rpe.buckets.dtype == torch.int64
    assert set(rpe.state_dict()) == {"proj.weight", "proj.bias"}
    clone = KeypointRPE(5, (4, 4), 2, 1).double()
    torch.nn.init.normal_(rpe.proj.weight)
    clone.load_state_dict(rpe.state_dict(), strict=True)
    kp = torch.rand(1, 5, 2, dtype=torch.float64)
    assert torch.equal(clone(kp)[0], rpe(kp)[0])


def test_wrong_keypoint_count_and_bad_arguments_raise():
    rpe = KeypointRPE(5, (4, 4), 2, 1)
    with pytest.raises(ValueError, match="built for 5"):
        rpe(torch.rand(2, 17, 2))
    with pytest.raises(ValueError, match="unknown KP-RPE variant"):
        KeypointRPE(5, (4, 4), 2, 1, variant="global")
    with pytest.raises(ValueError, match="num_heads"):
        KeypointRPE(5, (4, 4), 0, 1)
    with pytest.raises(IndexError):
        rpe.layer_table(rpe.features(torch.rand(1, 5, 2)), 1)


def test_repr_shows_hyperparameters():
    text = repr(KeypointRPE(17, (15, 10), 16, 4, variant="per_head", num_prefix_tokens=1))
    for piece in (
        "num_keypoints=17",
        "grid_size=(15, 10)",
        "num_heads=16",
        "depth=4",
        "'per_head'",
        "num_prefix_tokens=1",
    ):
        assert piece in text


def test_used_buckets_keep_only_those_columns_and_renumber_the_map():
    torch.manual_seed(0)
    full = KeypointRPE(5, (3, 5), num_heads=2, depth=2)
    compact_map, k_used, used = compact_window_buckets((3, 5))
    compact = KeypointRPE(5, (3, 5), num_heads=2, depth=2, used_buckets=used.tolist())
    assert (full.num_buckets, compact.num_buckets) == (49, k_used) == (49, 35)
    assert compact.proj.out_features == 2 * 2 * 35 and torch.equal(compact.used_buckets, used)
    assert torch.equal(compact.buckets, compact_map)  # the grid is the window: its own map, renumbered
    with torch.no_grad():
        full.proj.weight.normal_()
        full.proj.bias.normal_()
        rows = torch.arange(full.proj.out_features).view(-1, 49)[:, used].reshape(-1)
        compact.proj.weight.copy_(full.proj.weight[rows])
        compact.proj.bias.copy_(full.proj.bias[rows])
    kp = torch.rand(3, 5, 3)
    for t_full, t_compact in zip(full(kp), compact(kp)):
        torch.testing.assert_close(t_compact, t_full[..., used])
        # same bias for every (query, key) pair through either map
        n = full.num_tokens
        torch.testing.assert_close(
            torch.gather(t_compact, -1, compact.buckets.expand(3, 2, n, n)),
            torch.gather(t_full, -1, full.buckets.expand(3, 2, n, n)),
        )
    assert "used_buckets=35 of 49" in repr(compact) and "used_buckets" not in repr(full)


def test_used_buckets_that_the_grids_own_map_exceeds_leave_no_map_and_bad_values_are_refused():
    # a 15x10 stage grid reaches all 49 buckets; a table holding the window's 35 has no map of its own
    stage = KeypointRPE(17, (15, 10), num_heads=2, used_buckets=compact_window_buckets((3, 5))[2])
    assert stage.buckets is None and stage(torch.rand(1, 17, 3))[0].shape == (1, 2, 150, 35)
    with_cls = KeypointRPE(5, (2, 2), num_heads=1, num_prefix_tokens=1, used_buckets=list(range(50)))
    assert with_cls.num_buckets == 50 and torch.equal(with_cls.buckets, product_buckets(2, 2, 1.9, 1)[0])
    for bad, match in (([3, 2], "increasing"), ([0, 49], r"in \[0, 49\)"), ([-1, 2], "increasing"),
                       ([], "non-empty"), ([0.5, 1.0], "ints"), ([[0, 1]], "1-D")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            KeypointRPE(5, (3, 5), num_heads=1, used_buckets=bad)
