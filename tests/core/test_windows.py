import pytest
import torch

from kprpe.core import (
    from_windows,
    partition_tables,
    shifted_window_mask,
    to_windows,
    window_buckets,
    window_partition,
    window_reverse,
)


def token_ids(batch, h, w):
    """(B, h, w, 1) map whose value is the token's global index b*h*w + r*w + c."""
    return torch.arange(batch * h * w, dtype=torch.float32).view(batch, h, w, 1)


def test_partition_is_row_major_within_and_across_windows():
    x = token_ids(1, 4, 6)
    windows = window_partition(x, (2, 3))  # 2x2 windows of 2x3
    assert windows.shape == (4, 6, 1)
    assert windows[0, :, 0].tolist() == [0, 1, 2, 6, 7, 8]
    assert windows[1, :, 0].tolist() == [3, 4, 5, 9, 10, 11]
    assert windows[2, :, 0].tolist() == [12, 13, 14, 18, 19, 20]
    torch.testing.assert_close(window_reverse(windows, (2, 3), 4, 6), x)


@pytest.mark.parametrize(
    "grid, window, shift",
    [((15, 10), (3, 5), (1, 2)), ((7, 9), (3, 5), (1, 2)), ((6, 6), (3, 3), (0, 0)), ((5, 4), (3, 3), (1, 1))],
)
def test_to_windows_round_trip_with_padding_and_shift(grid, window, shift):
    x = torch.randn(2, *grid, 3)
    windows = to_windows(x, window, shift)
    hp = grid[0] + (-grid[0]) % window[0]
    wp = grid[1] + (-grid[1]) % window[1]
    assert windows.shape == (2 * (hp // window[0]) * (wp // window[1]), window[0] * window[1], 3)
    torch.testing.assert_close(from_windows(windows, window, shift, grid), x)


def test_shift_moves_content_up_left_like_swin():
    x = token_ids(1, 6, 6)
    windows = to_windows(x, (3, 3), (1, 1))
    # first window of the rolled map starts at original token (1, 1)
    assert windows[0, :, 0].tolist() == [7, 8, 9, 13, 14, 15, 19, 20, 21]
    # the last window wraps around to row/col 0
    assert windows[-1, -1, 0].item() == 0


def test_tables_are_partitioned_exactly_like_the_tokens():
    batch, heads, grid, window, shift, k = 2, 3, (7, 9), (3, 5), (1, 2), 4
    n = grid[0] * grid[1]
    # token ids start at 1 so that 0 marks padding; the table row of token t encodes (t, head, bucket)
    ids = token_ids(batch, *grid) + 1  # (B, h, w, 1)
    code = torch.arange(heads).view(1, heads, 1, 1) * 10 + torch.arange(k).view(1, 1, 1, k)
    table = ids.view(batch, 1, n, 1) * 1000 + code  # (B, H, N, K)
    windows_table = partition_tables(table, grid, window, shift)  # (B*nW, H, Nw, K)
    window_ids = to_windows(ids, window, shift)[..., 0]  # (B*nW, Nw), 0 where padded
    expected = torch.where(window_ids[:, None, :, None] > 0, window_ids[:, None, :, None] * 1000 + code, 0.0)
    assert windows_table.shape == expected.shape
    torch.testing.assert_close(windows_table, expected)


def test_partition_tables_rejects_wrong_grid():
    with pytest.raises(ValueError, match="stage grid"):
        partition_tables(torch.zeros(1, 2, 150, 49), (14, 10), (3, 5))


def test_mask_separates_regions_of_the_cyclic_shift():
    mask = shifted_window_mask((6, 6), (3, 3), (1, 1))
    assert mask.shape == (4, 9, 9)
    assert torch.count_nonzero(mask[0]) == 0  # the top-left window holds one contiguous region
    # bottom-right window: 4 regions (2x2 rows/cols split at the seam)
    region = torch.tensor([0, 0, 1, 0, 0, 1, 2, 2, 3])
    expected = torch.where(region[:, None] == region[None, :], 0.0, -100.0)
    torch.testing.assert_close(mask[3], expected)
    assert shifted_window_mask((6, 6), (3, 3), (0, 0)) is None
    with pytest.raises(ValueError, match="smaller than the window"):
        shifted_window_mask((6, 6), (3, 3), (3, 1))


def test_window_buckets_are_the_window_sized_product_map():
    buckets, k = window_buckets((3, 5))
    assert buckets.shape == (15, 15) and k == 49
