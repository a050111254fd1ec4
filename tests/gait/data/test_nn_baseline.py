"""tools/synthgait_nn_baseline.py: retrieval scores by hand, and a run on a SynthGait set."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

TOOL = Path(__file__).resolve().parents[3] / "tools" / "synthgait_nn_baseline.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("synthgait_nn_baseline", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_retrieval_scores_by_hand(tool) -> None:
    # probe a: its two true matches rank 1st and 3rd -> AP = (1/1 + 2/3) / 2; probe b: true match 2nd -> AP 1/2
    dist = np.array([[0.1, 0.3, 0.5, 0.9], [0.2, 0.4, 0.6, 0.8]])
    gallery = np.array(["a", "b", "a", "c"])
    scores = tool.retrieval_scores(dist, np.array(["a", "b"]), gallery)
    assert scores["Rank-1"] == 50.0 and scores["Rank-5"] == 100.0 and scores["probes"] == 2
    assert scores["mAP"] == pytest.approx(100 * ((1 + 2 / 3) / 2 + 1 / 2) / 2)
    # a probe whose identity is not in the gallery is left out
    assert tool.retrieval_scores(dist, np.array(["a", "z"]), gallery)["probes"] == 1


def test_runs_on_synthgait(tool, tiny_synth: Path, capsys: pytest.CaptureFixture) -> None:
    assert tool.main([str(tiny_synth)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "pkl-misaligned" in lines[1]
    partition = json.loads((tiny_synth / "partition.json").read_text())
    scores = tool.evaluate_split(tiny_synth / "pkl", partition)
    assert scores["probes"] == len(partition["PROBE_SET"])
    assert 0 <= scores["Rank-1"] <= 100 and scores["chance Rank-1"] == pytest.approx(100 / len(partition["TEST_SET"]))
    assert tool.main([str(tiny_synth / "pkl")]) == 1  # not a SynthGait folder
