import math

import pytest
import torch

from kprpe.core import KeypointRPE, RelPosBias, compact_window_buckets
from kprpe_gait.models import SwinGait2D, SwinStage2D

SMALL = {"channels": (8, 16), "layers": (1, 1, 2, 2), "embed_dim": 16, "num_heads": (2, 4), "out_channels": 16}


def small_net(rel_pos: str = "swin", num_classes: int = 5, **kw) -> SwinGait2D:
    return SwinGait2D(num_classes, rel_pos=rel_pos, **{**SMALL, **kw})


def random_joints(n: int, s: int, h: int = 64, w: int = 44, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, s, 17, 2, generator=g)
    conf = torch.rand(n, s, 17, 1, generator=g) * 0.9 + 0.1
    return torch.cat([xy, conf], dim=-1)


def randomize_kprpe(net: SwinGait2D, std: float = 0.5) -> None:
    g = torch.Generator().manual_seed(123)
    for m in net.modules():
        if isinstance(m, KeypointRPE):
            with torch.no_grad():
                m.proj.weight.copy_(torch.randn(m.proj.weight.shape, generator=g) * std)
                m.proj.bias.copy_(torch.randn(m.proj.bias.shape, generator=g) * std)


@pytest.mark.parametrize("rel_pos", ["swin", "kprpe", "none"])
@pytest.mark.parametrize("hw", [(64, 44), (64, 64), (32, 22)])
def test_output_shapes(rel_pos, hw):
    torch.manual_seed(0)
    net = small_net(rel_pos, num_classes=7)
    out = net(torch.rand(2, 3, *hw), random_joints(2, 3))
    assert set(out) == {"embeddings", "bnneck", "logits"}
    assert out["embeddings"].shape == (2, 16, 15)
    assert out["bnneck"].shape == (2, 16, 15)
    assert out["logits"].shape == (2, 7, 15)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_full_size_defaults_follow_opengait_swingait():
    net = SwinGait2D(num_classes=3000)
    t = net.transformer
    assert [len(s.blocks) for s in t.stages] == [4, 2]
    assert [s.blocks[0].attn.num_heads for s in t.stages] == [16, 32]
    assert t.patch_embed.proj.out_channels == 256 and t.num_features == 512
    assert [b.shift_size for b in t.stages[0].blocks] == [(0, 0), (1, 2), (0, 0), (1, 2)]
    assert all(b.window_size == (3, 5) and b.grid_size == (15, 10) for s in t.stages for b in s.blocks)
    down = t.stages[0].downsample
    assert isinstance(down[0], torch.nn.LayerNorm) and down[1].in_features == 256 and down[1].out_features == 512
    assert down[1].bias is None and isinstance(t.stages[1].downsample, torch.nn.Identity)
    assert net.fcs.fc_bin.shape == (16, 512, 256) and net.bnnecks.fc_bin.shape == (16, 256, 3000)
    rates = [b.drop_path.p for s in t.stages for b in s.blocks]
    assert rates == pytest.approx([0.1 * i / 5 for i in range(6)])
    assert len(net.layer1) == 1 and len(net.layer2) == 4 and net.layer2[0].conv1.stride == (2, 2)


@pytest.mark.parametrize("rel_pos", ["swin", "kprpe", "none"])
def test_gradient_reaches_every_parameter(rel_pos):
    torch.manual_seed(0)
    net = small_net(rel_pos, drop_path_rate=0.0).train()
    out = net(torch.rand(3, 2, 32, 22), random_joints(3, 2))
    loss = out["embeddings"].pow(2).mean() + out["logits"].logsumexp(1).mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"
    if rel_pos == "kprpe":  # W_L is zero-initialised but still learns
        for stage in net.transformer.stages:
            assert torch.count_nonzero(stage.rpe.proj.weight) == 0
            assert stage.rpe.proj.weight.grad.abs().max() > 0


def test_kprpe_at_init_equals_the_same_weights_without_bias():
    torch.manual_seed(0)
    plain = small_net("none").eval()
    kprpe = small_net("kprpe").eval()
    missing, unexpected = kprpe.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".rpe.proj." in k for k in missing)
    sils, joints = torch.rand(2, 3, 64, 44), random_joints(2, 3)
    with torch.no_grad():
        a, b = plain(sils), kprpe(sils, joints)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    randomize_kprpe(kprpe)  # and the comparison can fail once W_L is not zero
    with torch.no_grad():
        assert not torch.allclose(kprpe(sils, joints)["embeddings"], a["embeddings"], atol=1e-3)


def test_kprpe_depends_on_each_frames_own_joints_only():
    torch.manual_seed(0)
    net = small_net("kprpe").eval()
    randomize_kprpe(net)
    sils, joints = torch.rand(1, 3, 32, 22), random_joints(1, 3)
    moved = joints.clone()
    moved[0, 1, :, :2] = torch.rand(17, 2)
    with torch.no_grad():
        a, b = net.forward_frames(sils, joints), net.forward_frames(sils, moved)
    torch.testing.assert_close(a[:, [0, 2]], b[:, [0, 2]])
    assert (a[:, 1] - b[:, 1]).abs().max() > 1e-3


def test_stage_feeds_block_i_the_table_of_layer_i():
    torch.manual_seed(0)
    stage = SwinStage2D(16, 3, 2, (6, 10), (3, 5), [0.0] * 3, rel_pos="kprpe", backend="reference").eval()
    with torch.no_grad():
        stage.rpe.proj.weight.normal_()
    x, joints = torch.randn(2, 6, 10, 16), torch.rand(2, 17, 3)
    tables = stage.rpe(joints)
    expected = x
    with torch.no_grad():
        for block, table in zip(stage.blocks, tables):
            expected = block(expected, table)
        torch.testing.assert_close(stage(x, joints), expected)


@pytest.mark.parametrize("rel_pos", ["swin", "kprpe"])
def test_seql_packing_equals_separate_runs(rel_pos):
    torch.manual_seed(0)
    net = small_net(rel_pos).eval()
    randomize_kprpe(net)
    lengths = [3, 1, 5]
    seqs = [torch.rand(1, n, 32, 22) for n in lengths]
    joints = [random_joints(1, n, seed=i) for i, n in enumerate(lengths)]
    with torch.no_grad():
        packed = net(torch.cat(seqs, 1), torch.cat(joints, 1), seqL=torch.tensor([lengths]))  # OpenGait's (1, k)
        alone = [net(s, j) for s, j in zip(seqs, joints)]
    for key in packed:
        assert packed[key].shape[0] == 3
        torch.testing.assert_close(packed[key], torch.cat([a[key] for a in alone]), rtol=1e-5, atol=1e-5)


def test_missing_joints_give_finite_outputs_and_are_ignored():
    torch.manual_seed(0)
    net = small_net("kprpe").eval()
    randomize_kprpe(net)
    sils, joints = torch.rand(1, 2, 32, 22), random_joints(1, 2)
    joints[0, :, 3:6, 2] = 0.0  # not detected
    garbage = joints.clone()
    garbage[0, :, 3:6, :2] = float("nan")
    garbage[0, :, 4, :2] = 1e6
    with torch.no_grad():
        a, b = net(sils, joints), net(sils, garbage)
    assert torch.isfinite(b["embeddings"]).all()
    torch.testing.assert_close(a["embeddings"], b["embeddings"])


def test_min_confidence_threshold():
    net = small_net("kprpe", min_confidence=0.5).eval()
    randomize_kprpe(net)
    sils, joints = torch.rand(1, 2, 32, 22), random_joints(1, 2)
    joints[..., 2] = 0.4
    moved = joints.clone()
    moved[..., :2] = torch.rand_like(moved[..., :2])
    with torch.no_grad():
        torch.testing.assert_close(net(sils, joints)["embeddings"], net(sils, moved)["embeddings"])


def test_clear_errors():
    net = small_net("kprpe")
    sils = torch.rand(2, 3, 32, 22)
    with pytest.raises(ValueError, match="needs joints"):
        net(sils)
    with pytest.raises(ValueError, match="frame counts differ"):
        net(sils, random_joints(2, 4))
    with pytest.raises(ValueError, match="built for 17"):
        net(sils, torch.rand(2, 3, 5, 3))
    with pytest.raises(ValueError, match=r"\(n, s, J, 3\)"):
        net(sils, torch.rand(2, 3, 17))
    with pytest.raises(ValueError, match=r"\(n, s, h, w\)"):
        net(torch.rand(2, 32, 22))
    with pytest.raises(TypeError, match="floating-point"):
        net((sils * 255).to(torch.uint8), random_joints(2, 3))
    with pytest.raises(ValueError, match="sums to 4"):
        net(torch.rand(1, 5, 32, 22), random_joints(1, 5), seqL=[1, 3])
    with pytest.raises(ValueError, match="n == 1"):
        net(sils, random_joints(2, 3), seqL=[3])
    with pytest.raises(ValueError, match="unknown rel_pos"):
        small_net("irpe")
    with pytest.raises(ValueError, match="unknown kprpe_variant"):
        small_net("kprpe", kprpe_variant="nope")
    with pytest.raises(ValueError, match="parts_num"):
        small_net(parts_num=15)
    with pytest.raises(ValueError, match="not divisible"):
        small_net(bin_num=4, parts_num=5)


def test_swin_and_none_ignore_joints():
    net = small_net("swin").eval()
    sils = torch.rand(1, 2, 32, 22)
    with torch.no_grad():
        torch.testing.assert_close(net(sils)["embeddings"], net(sils, torch.rand(1, 2, 17, 3))["embeddings"])


def test_param_groups_cover_every_parameter_once_with_opengait_rules():
    net = small_net("kprpe")
    assert {g["name"]: g["lr"] for g in net.param_groups(lr=1e-3, weight_decay=0.02)}["stem_and_heads"] == 1e-3
    groups = net.param_groups(lr=1e-3, weight_decay=0.02, stem_lr_scale=0.1)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in net.parameters())
    by_name = {g["name"]: g for g in groups}
    no_decay = {id(p) for p in by_name["transformer_no_decay"]["params"]}
    assert by_name["transformer_no_decay"]["weight_decay"] == 0.0
    assert by_name["stem_and_heads"]["lr"] == pytest.approx(1e-4)
    for stage in net.transformer.stages:
        assert id(stage.rpe.proj.weight) in no_decay
        assert id(stage.blocks[0].norm1.weight) in no_decay and id(stage.blocks[0].attn.qkv.weight) not in no_decay
    assert id(net.transformer.patch_embed.proj.weight) in no_decay
    slow = {id(p) for p in by_name["stem_and_heads"]["params"]}
    assert {id(net.fcs.fc_bin), id(net.bnnecks.fc_bin), id(net.layer0[0].weight)} <= slow
    swin_net = small_net("swin")
    biases = [m.weight for m in swin_net.modules() if isinstance(m, RelPosBias)]
    assert len(biases) == 4
    no_decay = {id(p) for p in swin_net.param_groups(1e-3, 0.02)[0]["params"]}
    assert all(id(b) in no_decay for b in biases)


def test_reset_parameters_follows_opengait_init_and_rezeroes_kprpe():
    torch.manual_seed(0)
    net = small_net("kprpe")
    randomize_kprpe(net)
    net.reset_parameters()
    for stage in net.transformer.stages:
        assert torch.count_nonzero(stage.rpe.proj.weight) == 0 and torch.count_nonzero(stage.rpe.proj.bias) == 0
    bn = net.layer0[1]
    assert (bn.weight - 1).abs().max() < 0.2 and torch.count_nonzero(bn.bias) == 0
    qkv = net.transformer.stages[0].blocks[0].attn.qkv
    assert abs(qkv.weight.std().item() - 0.02) < 0.004  # trunc-normal at +-2 (absolute): a plain N(0, 0.02)
    assert torch.count_nonzero(qkv.bias) == 0
    swin = small_net("swin")
    table = swin.transformer.stages[0].blocks[0].attn.rpe.weight
    assert 0.01 < table.std().item() < 0.03
    conv = net.layer1[0].conv1.weight
    bound = math.sqrt(6.0 / (conv.shape[1] * 9 + conv.shape[0] * 9))
    assert conv.abs().max() <= bound


def _loop_stage_tables(stage: SwinStage2D, joints: torch.Tensor) -> list[torch.Tensor]:
    """Each block's table re-derived token by token from W_L and the joints, in the block's frame.

    stage grid: one row per stage token, offsets (token centre - joint) in [0, 1] of the stage grid;
    window grid: one row per (window, window-local cell), offsets (local cell centre - joint in the
    window's frame), the window's frame being its top-left token in the unrolled map and its size.
    """
    rpe, (h, w), (wh, ww) = stage.rpe, stage.grid_size, stage.window_size
    heads, k = rpe.num_heads, rpe.num_buckets
    hp, wp = h + (-h) % wh, w + (-w) % ww
    tables = []
    for layer, block in enumerate(stage.blocks):
        cols = layer * heads * k if rpe.per_layer else 0
        weight, bias = rpe.proj.weight[cols : cols + heads * k], rpe.proj.bias[cols : cols + heads * k]
        rows = []
        for b in range(joints.shape[0]):
            if stage.kprpe_grid == "stage":
                points = [((c + 0.5) / w, (r + 0.5) / h, 0.0, 0.0) for r in range(h) for c in range(w)]
            else:
                sh, sw = block.shift_size
                points = [
                    ((e + 0.5) / ww, (a + 0.5) / wh, r0 + sh, c0 + sw)
                    for r0 in range(0, hp, wh) for c0 in range(0, wp, ww) for a in range(wh) for e in range(ww)
                ]  # fmt: skip
            for x, y, top, left in points:
                offsets = []
                for jx, jy, conf in joints[b].tolist():
                    if stage.kprpe_grid == "window":
                        jx, jy = (jx * w - left) / ww, (jy * h - top) / wh
                    offsets += [x - jx, y - jy] if conf > 0 else [0.0, 0.0]
                rows.append(weight @ torch.tensor(offsets) + bias)
        queries = h * w if stage.kprpe_grid == "stage" else wh * ww
        per_window = torch.stack(rows).view(-1, queries, heads, k).permute(0, 2, 1, 3)
        tables.append(per_window)
    return tables


@pytest.mark.parametrize("grid_name", ["stage", "window"])
@pytest.mark.parametrize("grid", [(15, 10), (5, 7)])
def test_stage_tables_match_a_token_level_rederivation(grid_name, grid):
    torch.manual_seed(0)
    stage = SwinStage2D(8, 2, 2, grid, (3, 5), [0.0] * 2, rel_pos="kprpe", kprpe_grid=grid_name, backend="reference")
    with torch.no_grad():
        stage.rpe.proj.weight.normal_()
        stage.rpe.proj.bias.normal_()
    joints = torch.rand(2, 17, 3)
    joints[1, 3, 2] = 0.0  # a missing joint contributes nothing
    seen = []
    for block in stage.blocks:
        block.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    with torch.no_grad():
        stage(torch.randn(2, *grid, 8), joints)
    expected = _loop_stage_tables(stage, joints)
    assert [t.shape for t in seen] == [t.shape for t in expected]
    for got, want in zip(seen, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    if grid_name == "window":
        assert stage.rpe.grid_size == (3, 5) and seen[0].shape[0] == 2 * (-(-grid[0] // 3)) * (-(-grid[1] // 5))


@pytest.mark.parametrize("grid_name", ["stage", "window"])
def test_both_grids_train_and_start_as_the_model_without_bias(grid_name):
    torch.manual_seed(0)
    plain = small_net("none").eval()
    net = small_net("kprpe", kprpe_grid=grid_name, drop_path_rate=0.0)
    net.load_state_dict(plain.state_dict(), strict=False)
    sils, joints = torch.rand(2, 3, 32, 22), random_joints(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(sils, joints)["embeddings"], plain(sils)["embeddings"], rtol=0, atol=1e-6)
    out = net.train()(sils, joints)
    (out["embeddings"].pow(2).mean() + out["logits"].logsumexp(1).mean()).backward()
    assert all(stage.rpe.proj.weight.grad.abs().max() > 0 for stage in net.transformer.stages)
    assert f"kprpe_grid={grid_name!r}" in repr(net)
    with pytest.raises(ValueError, match="kprpe_grid"):
        small_net("kprpe", kprpe_grid="image")


def test_stage_and_window_grids_differ_once_w_l_is_trained():
    torch.manual_seed(0)
    stage_net = small_net("kprpe").eval()
    window_net = small_net("kprpe", kprpe_grid="window").eval()
    window_net.load_state_dict(stage_net.state_dict())  # same parameters, W_L's shape does not depend on the grid
    randomize_kprpe(stage_net)
    randomize_kprpe(window_net)
    sils, joints = torch.rand(1, 2, 32, 22), random_joints(1, 2)
    with torch.no_grad():
        a, b = stage_net(sils, joints)["embeddings"], window_net(sils, joints)["embeddings"]
    assert (a - b).abs().max() > 1e-3


def test_joints_reach_keypoint_rpe_in_float32_under_bf16_autocast(monkeypatch):
    torch.manual_seed(0)
    net = small_net("kprpe").eval()
    seen = []
    rpe = net.transformer.stages[0].rpe
    original = rpe.features
    monkeypatch.setattr(rpe, "features", lambda joints: seen.append(joints) or original(joints))
    # positions that bf16 cannot hold exactly (8 significant bits): 0.3 + 1/1024
    joints = random_joints(1, 2)
    joints[..., :2] = 0.3 + 1 / 1024
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        net(torch.rand(1, 2, 32, 22), joints)
    assert seen and seen[0].dtype == torch.float32
    torch.testing.assert_close(seen[0], joints.reshape(2, 17, 3), rtol=0, atol=0)


@pytest.mark.parametrize("rel_pos", ["kprpe", "swin"])
def test_position_encodings_are_not_weight_decayed_by_the_cores_rule(rel_pos):
    from kprpe.core.decay import position_parameter_names

    net = small_net(rel_pos, kprpe_grid="window") if rel_pos == "kprpe" else small_net(rel_pos)
    names = position_parameter_names(net)
    position = {id(p) for n, p in net.named_parameters() if n in names}
    assert len(position) == (2 * 2 if rel_pos == "kprpe" else 4)  # W_L weight + bias per stage, or 4 bias tables
    for group in net.param_groups(1e-3, 0.05):
        if any(id(p) in position for p in group["params"]):
            assert group["weight_decay"] == 0.0


def test_param_group_order_is_parameter_order_so_saved_optimiser_states_still_load():
    net = small_net("kprpe")
    order = [n for n, _ in net.named_parameters()]
    names = {id(p): n for n, p in net.named_parameters()}
    for group in net.param_groups(1e-3, 0.02):
        in_group = [names[id(p)] for p in group["params"]]
        assert in_group == [n for n in order if n in set(in_group)], group["name"]


def compact_state(full: SwinGait2D) -> dict[str, torch.Tensor]:
    """``full``'s weights with each ``W_L`` cut to the columns of the buckets a window reaches."""
    state = dict(full.state_dict())
    for name, m in full.named_modules():
        if isinstance(m, KeypointRPE):
            used = compact_window_buckets(full.window_size)[2]
            rows = torch.arange(m.proj.out_features).view(-1, m.num_buckets)[:, used].reshape(-1)
            state[f"{name}.proj.weight"] = m.proj.weight[rows]
            state[f"{name}.proj.bias"] = m.proj.bias[rows]
    return state


@pytest.mark.parametrize("grid_name", ["stage", "window"])
def test_compact_buckets_compute_the_full_model_with_fewer_columns_all_trained(grid_name):
    """Same network with the 14 never-read columns of every W_L removed: same outputs, 35/49 of the
    columns, and every remaining column receives a gradient (the full model leaves 14 of 49 at zero)."""
    torch.manual_seed(0)
    full = small_net("kprpe", kprpe_grid=grid_name, drop_path_rate=0.0).eval()
    randomize_kprpe(full)
    compact = small_net("kprpe", kprpe_grid=grid_name, drop_path_rate=0.0, kprpe_compact_buckets=True).eval()
    compact.load_state_dict(compact_state(full))
    sils, joints = torch.rand(2, 3, 32, 22), random_joints(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(compact(sils, joints)["embeddings"], full(sils, joints)["embeddings"])
    for net, never_read in ((full, 14), (compact, 0)):
        net.zero_grad()
        out = net.train()(sils, joints)
        (out["embeddings"].pow(2).mean() + out["logits"].logsumexp(1).mean()).backward()
        for stage in net.transformer.stages:
            rpe = stage.rpe
            assert rpe.num_buckets == 49 - 14 * (net is compact)
            grad = rpe.proj.weight.grad.view(-1, rpe.num_buckets, rpe.proj.in_features).abs().sum((0, 2))
            assert int((grad == 0).sum()) == never_read
    assert "kprpe_compact_buckets=True" in repr(compact) and "compact_buckets=True" in repr(compact.transformer)
    with pytest.raises(ValueError, match="kprpe_compact_buckets must be true or false"):
        small_net("kprpe", kprpe_compact_buckets="false")
