import pytest


@pytest.fixture(scope="module")
def bench(load_tool):
    return load_tool("bench_attention")


def test_worker_measures_forward_and_backward(bench):
    result = bench.worker(2, "sdpa", "cpu", "float32", batch=8, repeats=1)
    assert result["fwd_ms"] > 0 and result["fwdbwd_ms"] > 0 and result["peak_mib"] >= 0
    flex = bench.worker(2, "flex", "cpu", "float32", batch=2, repeats=1)
    assert flex["fwdbwd_ms"] is None  # no CPU backward in PyTorch: reported, not faked
