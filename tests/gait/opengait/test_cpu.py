"""--cpu patches: each replaced entry point behaves as documented, and everything is restored."""

from __future__ import annotations

import inspect
import warnings
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kprpe_gait.opengait import cpu


@pytest.fixture
def cpu_mode():
    originals = [(owner, name, inspect.getattr_static(owner, name)) for owner, name in cpu.PATCHED]
    undo = cpu.enable_cpu_mode()
    try:
        yield
    finally:
        undo()
        for owner, name, original in originals:
            assert inspect.getattr_static(owner, name) is original, f"{name} not restored"


@pytest.mark.parametrize(
    "device, expected",
    [(torch.device("cuda", 1), True), ("cuda", True), ("cuda:0", True), (0, True), ("cpu", False),
     (torch.device("cpu"), False), (None, False), (True, False)],
)  # fmt: skip
def test_is_cuda_device(device, expected):
    assert cpu.is_cuda_device(device) is expected


def test_enable_is_idempotent_and_restores(cpu_mode):
    assert cpu.cpu_mode_enabled()
    undo = cpu.enable_cpu_mode()  # second call: no double wrapping
    assert undo is cpu.disable_cpu_mode
    assert torch.cuda.is_available() is False


def test_cuda_calls_stay_on_cpu(cpu_mode):
    x = torch.arange(3.0)
    assert x.cuda() is x
    module = nn.Linear(2, 2)
    assert module.cuda() is module
    moved = module.to(device=torch.device("cuda", 0))
    assert moved.weight.device.type == "cpu"
    assert module.to(torch.device("cuda", 0), dtype=torch.float64).weight.dtype == torch.float64
    torch.cuda.set_device(0)  # no error
    assert torch.cuda.current_device() == 0
    assert torch.cuda.device_count() == 0  # no process group yet


def test_sync_batchnorm_conversion_is_skipped(cpu_mode):
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert nn.SyncBatchNorm.convert_sync_batchnorm(net) is net
    assert isinstance(net[1], nn.BatchNorm2d)


def test_load_maps_cuda_locations_to_cpu(cpu_mode, tmp_path):
    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(2)}, path)
    for kwargs in ({"map_location": torch.device("cuda", 0)}, {}, {"map_location": "cuda:0"}):
        assert torch.load(path, **kwargs)["w"].device.type == "cpu"
    assert torch.load(path, torch.device("cuda", 0))["w"].device.type == "cpu"  # positional map_location


def test_autocast_and_gradscaler_switch_off(cpu_mode):
    with warnings.catch_warnings(record=True) as caught:
        scaler = torch.amp.GradScaler("cuda")
        with torch.autocast("cuda", enabled=True):
            y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert not scaler.is_enabled()
    assert y.dtype == torch.float32
    assert not [w for w in caught if "CUDA is not available" in str(w.message)]


def test_nccl_becomes_gloo_and_ddp_accepts_device_ids(cpu_mode):
    # an in-process store: a TCP rendezvous on a "free" port stalled 5 s every ~37 inits here and once hung
    # a whole run; the backend swap and DDP's device_ids are what is tested, not the rendezvous
    dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1, timeout=timedelta(seconds=60))
    try:
        assert dist.get_backend() == "gloo"
        assert torch.cuda.device_count() == dist.get_world_size() == 1
        module = nn.Linear(3, 2)
        ddp = DistributedDataParallel(module, device_ids=[0], output_device=0)  # what OpenGait passes
        out = ddp(torch.randn(4, 3))
        out.sum().backward()
        assert module.weight.grad is not None
    finally:
        dist.destroy_process_group()
