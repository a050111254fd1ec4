"""tools/bench_pretreat.py: the table's ratios, the parity count, and a whole run against OpenGait (with
``OPENGAIT_ROOT``)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from kprpe_gait.data.crop import crop_silhouette
from kprpe_gait.data.io import list_sequence_folders, read_silhouette_png
from kprpe_gait.data.pretreat import pretreat_gait3d
from kprpe_gait.data.synth import SynthConfig, generate


@pytest.fixture(scope="module")
def bench(load_tool):
    return load_tool("bench_pretreat")


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench_pretreat") / "synth"
    generate(out, SynthConfig.preset("tiny", num_ids=2, num_train_ids=1, seqs_per_id=2, seed=3), progress=False)
    return out / "raw"


def test_speed_table_ratios(bench) -> None:
    timings = {
        1: {"opengait": [bench.Timing(4.0, 2.0), bench.Timing(5.0, 3.0), bench.Timing(9.0, 2.5)],
            "ours": [bench.Timing(2.0, 1.0), bench.Timing(2.5, 2.0), bench.Timing(3.0, 1.25)]},
    }  # fmt: skip
    table = bench.speed_table(timings, frames=1000, sequences=10, repeats=3, command="python x")
    # medians: OpenGait 5.0 s wall / 2.5 s CPU, ours 2.5 s / 1.25 s -> 2.00x on both; 1000 / 2.5 = 400 frames/s
    assert "| 1 | `kprpe-gait pretreat-gait3d` (silhouettes + joints) | 2.50 | 1.25 | 400 | 2.00x | 2.00x |" in table
    assert "| 1 | OpenGait `datasets/pretreatment.py` (silhouettes) | 5.00 | 2.50 | 200 | 1.00x | 1.00x |" in table


def opengait_like(raw: Path, out: Path) -> None:
    """OpenGait's layout (``<id>/<type>/<view>/<view>.pkl``, kept frames in string order of the names),
    made with the crop this project tests bit-exact against OpenGait's."""
    for key in list_sequence_folders(raw / "2D_Silhouettes"):
        pngs = sorted(raw.joinpath("2D_Silhouettes", *key).glob("*.png"))
        frames = [crop_silhouette(read_silhouette_png(p)) for p in pngs]
        folder = out.joinpath(*key)
        folder.mkdir(parents=True)
        with open(folder / f"{key[2]}.pkl", "wb") as handle:
            pickle.dump(np.stack([f.image for f in frames if f.dropped is None]), handle)


def test_parity_counts(bench, raw: Path, tmp_path: Path) -> None:
    opengait_like(raw, tmp_path / "og")
    pretreat_gait3d(raw / "2D_Silhouettes", raw / "2D_Poses", tmp_path / "ours", progress=False)
    stats = bench.parity(raw, tmp_path / "og", tmp_path / "ours")
    assert stats["sequences"] == 4 and stats["drop_mismatch"] == 0
    assert stats["compared"] == stats["kept_ours"] > 50 and stats["identical"] == stats["compared"]

    # one pixel changed in one of OpenGait's frames: one frame less is identical
    path = next((tmp_path / "og").glob("*/*/*/*.pkl"))
    with open(path, "rb") as handle:
        frames = pickle.load(handle)
    frames[3, 30, 30] ^= 1
    with open(path, "wb") as handle:
        pickle.dump(frames, handle)
    changed = bench.parity(raw, tmp_path / "og", tmp_path / "ours")
    assert changed["identical"] == stats["identical"] - 1
    assert changed["pixels_identical"] == stats["pixels_identical"] - 1


@pytest.mark.opengait
def test_whole_run_against_opengait(bench, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = os.environ.get("OPENGAIT_ROOT")
    if not root:
        pytest.skip("set OPENGAIT_ROOT to an OpenGait clone to run OpenGait's datasets/pretreatment.py")
    argv = ["--opengait-root", root, "--ids", "2", "--repeats", "1", "--workers", "1", "--data", str(tmp_path / "d")]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "| 1 | OpenGait `datasets/pretreatment.py` (silhouettes) |" in out
    assert "| sequences where the drop decisions differ | 0 |" in out
    compared = int(out.split("| kept by both, compared | ")[1].split(" |")[0])
    identical = int(out.split("| byte-identical | ")[1].split(" (")[0])
    assert identical == compared > 100
    mispaired = int(out.split("`--from-pickles` on OpenGait's output")[1].split("\n| ")[2].split(" | ")[3])
    assert mispaired == 0
