"""Window KP-RPE in its two frames (stage grid, window grid), shared tables, compact window buckets."""

import pytest
import torch

from kprpe.core import SwinBlock, partition_tables, product_buckets, to_windows
from kprpe.core.windows import as_pair, compact_window_buckets, window_keypoints

CASES = [((15, 10), (3, 5), (0, 0)), ((15, 10), (3, 5), (1, 2)), ((5, 7), (3, 5), (1, 2)), ((4, 4), (3, 3), (1, 1))]


def rolled_windows(grid, window, shift):
    """Loop-level list of windows, in to_windows order: per window its (row, col) origin in the padded,
    rolled map and, per window-local cell, the stage token it holds (None for padding) and whether the
    cyclic shift wrapped it in from the opposite edge."""
    (h, w), (wh, ww), (sh, sw) = grid, window, shift
    hp, wp = h + (-h) % wh, w + (-w) % ww
    out = []
    for r0 in range(0, hp, wh):
        for c0 in range(0, wp, ww):
            cells = []
            for a in range(wh):
                for e in range(ww):
                    r, c = r0 + a + sh, c0 + e + sw  # unrolled position of the rolled cell
                    wrapped = r >= hp or c >= wp
                    r, c = r % hp, c % wp
                    cells.append(((r, c) if r < h and c < w else None, wrapped))
            out.append(((r0, c0), cells))
    return out


@pytest.mark.parametrize("grid, window, shift", CASES)
def test_window_keypoints_put_the_windows_own_tokens_at_window_local_centres(grid, window, shift):
    (h, w), (wh, ww) = grid, window
    windows = rolled_windows(grid, window, shift)
    # one keypoint at the centre of every stage token, in [0, 1] of the stage grid, with a confidence
    centres = torch.tensor([[(c + 0.5) / w, (r + 0.5) / h] for r in range(h) for c in range(w)], dtype=torch.float64)
    keypoints = torch.cat([centres, torch.full((h * w, 1), 0.7, dtype=torch.float64)], dim=1)[None]
    local = window_keypoints(keypoints, grid, window, shift)
    assert local.shape == (len(windows), h * w, 3) and local.dtype == torch.float64
    torch.testing.assert_close(local[..., 2], torch.full_like(local[..., 2], 0.7))
    hp, wp = h + (-h) % wh, w + (-w) % ww
    for k, (_, cells) in enumerate(windows):
        for cell, (token, wrapped) in enumerate(cells):
            if token is None:
                continue
            i, j = divmod(cell, ww)
            expected = torch.tensor([(j + 0.5) / ww, (i + 0.5) / wh], dtype=torch.float64)
            if wrapped:  # the token's image position is one padded map away from its window-local one
                r, c = token
                expected -= torch.tensor([(wp if c < shift[1] else 0) / ww, (hp if r < shift[0] else 0) / wh])
            torch.testing.assert_close(local[k, token[0] * w + token[1], :2], expected)


def test_window_keypoints_keep_missing_keypoints_missing_and_batch_major_order():
    kp = torch.rand(2, 3, 3)
    kp[1, 2, 0] = float("nan")
    local = window_keypoints(kp, (6, 10), (3, 5))
    assert local.shape == (2 * 4, 3, 3)
    assert torch.isnan(local[4:, 2, 0]).all() and not torch.isnan(local[:4]).any()
    torch.testing.assert_close(local[0, :, :2], kp[0, :, :2] * torch.tensor([10 / 5, 6 / 3]))
    with pytest.raises(ValueError, match="keypoints must have shape"):
        window_keypoints(torch.rand(3, 2), (6, 10), (3, 5))


def test_block_with_window_table_equals_block_with_the_partitioned_stage_table():
    torch.manual_seed(0)
    grid, window, shift = (5, 7), (3, 5), (1, 2)
    stage = SwinBlock(8, 2, grid, window, shift, rel_pos="table", backend="reference").eval()
    per_window = SwinBlock(8, 2, grid, window, shift, rel_pos="table", backend="reference", table_grid="window")
    per_window.load_state_dict(stage.state_dict())
    per_window.eval()
    x, table = torch.randn(2, *grid, 8), torch.randn(2, 2, grid[0] * grid[1], 49)
    with torch.no_grad():
        torch.testing.assert_close(per_window(x, partition_tables(table, grid, window, shift)), stage(x, table))
    with pytest.raises(ValueError, match="per-window table"):
        per_window(x, table)
    with pytest.raises(ValueError, match="table_grid"):
        SwinBlock(8, 2, grid, window, rel_pos="table", table_grid="image")


def test_shared_tables_are_partitioned_before_they_are_expanded_over_heads():
    grid, window, shift, heads = (15, 10), (3, 5), (1, 2), 8
    one = torch.randn(2, 1, 150, 49)
    shared = one.expand(-1, heads, -1, -1)  # how the shared KeypointRPE variants return their tables
    parts = partition_tables(shared, grid, window, shift)
    torch.testing.assert_close(parts, partition_tables(shared.contiguous(), grid, window, shift))
    assert parts.shape == (2 * 10, heads, 15, 49) and parts.stride(1) == 0
    assert parts.untyped_storage().nbytes() == one.numel() * one.element_size()  # not heads times more


def test_compact_window_buckets_drop_exactly_the_buckets_a_3x5_window_never_reaches():
    full, k = product_buckets(3, 5)
    compact, k_used, used = compact_window_buckets((3, 5))
    # enumerate every (query, key) pair of the window: 35 of the 49 product buckets occur
    reached = {int(full[i, j]) for i in range(15) for j in range(15)}
    assert (k, k_used, len(reached)) == (49, 35, 35) and (k - k_used) / k == pytest.approx(0.286, abs=1e-3)
    assert used.tolist() == sorted(reached)
    for i in range(15):
        for j in range(15):
            assert used[compact[i, j]] == full[i, j]
    # the same bias from the full table through the full map and from its used columns through the compact map
    table = torch.randn(2, 3, 15, 49)
    bias_full = torch.gather(table, -1, full.expand(2, 3, 15, 15))
    torch.testing.assert_close(torch.gather(table[..., used], -1, compact.expand(2, 3, 15, 15)), bias_full)


def test_as_pair_names_the_bad_value():
    assert as_pair(3, "window_size") == (3, 3) and as_pair((1, 2), "shift_size") == (1, 2)
    for bad in ((0, 2), (1.5, 2), (1, 2, 3), "ab", (True, 2)):
        with pytest.raises(ValueError, match="window_size"):
            as_pair(bad, "window_size", minimum=1)
    with pytest.raises(ValueError, match="shift_size"):
        to_windows(torch.zeros(1, 3, 5, 1), (3, 5), (-1, 0))
