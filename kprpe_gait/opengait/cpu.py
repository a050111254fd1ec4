"""``--cpu``: run OpenGait's unmodified ``main.py`` without a GPU, by patching ``torch`` in-process.

OpenGait hard-codes ``init_process_group('nccl')``, one GPU per process, ``.cuda()`` calls in its
model base, samplers and metrics, ``torch.cuda.set_device`` and a CUDA ``map_location``. Nothing
in OpenGait's files is edited; instead :func:`enable_cpu_mode` replaces these ``torch`` entry
points, all of them listed here and nothing else:

===============================================  ==================================================
patched                                          behaviour in CPU mode
===============================================  ==================================================
``torch.distributed.init_process_group``         backend forced to ``"gloo"`` (nccl needs GPUs)
``torch.cuda.is_available``                      ``False``: autocast and ``GradScaler`` switch
                                                 themselves off (float16 paths need CUDA), the
                                                 samplers keep their indices on the CPU
``torch.cuda.device_count``                      the world size once the process group exists
                                                 (``main.py`` insists on one GPU per process), else 0
``torch.cuda.set_device``                        does nothing
``torch.cuda.current_device``                    ``0``
``torch.Tensor.cuda`` / ``torch.nn.Module.cuda`` return the tensor / module unchanged (on the CPU)
``torch.nn.Module.to``                           a CUDA device argument means the CPU
``torch.load``                                   a CUDA (or absent) ``map_location`` means the CPU,
                                                 so GPU-trained checkpoints load too
``DistributedDataParallel.__init__``             ``device_ids`` / ``output_device`` dropped for
                                                 CPU modules (DDP rejects them there)
``SyncBatchNorm.convert_sync_batchnorm``         returns the module unchanged (SyncBatchNorm
                                                 needs CUDA; BN statistics stay per process)
===============================================  ==================================================

Two warnings that the patches make expected (autocast / GradScaler "CUDA is not available,
disabling") are silenced. Without ``--cpu`` nothing here runs. The patches are process-wide: the
launcher applies them once, before OpenGait is imported, in every process ``torchrun`` starts.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["PATCHED", "cpu_mode_enabled", "disable_cpu_mode", "enable_cpu_mode", "is_cuda_device"]

#: ``(owner, attribute)`` of every patched entry point, in the order they are applied
PATCHED: tuple[tuple[Any, str], ...] = (
    (dist, "init_process_group"),
    (torch.cuda, "is_available"),
    (torch.cuda, "device_count"),
    (torch.cuda, "set_device"),
    (torch.cuda, "current_device"),
    (torch.Tensor, "cuda"),
    (nn.Module, "cuda"),
    (nn.Module, "to"),
    (torch, "load"),
    (DistributedDataParallel, "__init__"),
    (nn.SyncBatchNorm, "convert_sync_batchnorm"),
)

_SILENCED_WARNINGS = (
    r".*CUDA is not available.*[Dd]isabling.*",  # torch.autocast(device_type="cuda") and GradScaler
)

_originals: list[tuple[Any, str, Any]] = []  # (owner, attribute, original) of applied patches
_filters: list[tuple] = []  # the warning filters enable_cpu_mode added


def is_cuda_device(device: Any) -> bool:
    """Whether a ``device`` argument (``torch.device``, ``"cuda:1"``, or a bare index) names a GPU."""
    if isinstance(device, torch.device):
        return device.type == "cuda"
    if isinstance(device, str):
        return device.split(":")[0] == "cuda"
    return isinstance(device, int) and not isinstance(device, bool)


def cpu_mode_enabled() -> bool:
    """Whether :func:`enable_cpu_mode` is active in this process."""
    return bool(_originals)


def _cpu_if_cuda(device: Any) -> Any:
    return "cpu" if is_cuda_device(device) else device


def _replacements() -> dict[tuple[Any, str], Any]:
    init_process_group = dist.init_process_group
    module_to = nn.Module.to
    load = torch.load
    ddp_init = DistributedDataParallel.__init__
    ddp_signature = inspect.signature(ddp_init)

    @functools.wraps(init_process_group)
    def gloo_init_process_group(*args: Any, **kwargs: Any) -> Any:
        if args:  # the backend is the first positional argument
            args = ("gloo", *args[1:])
        else:
            kwargs["backend"] = "gloo"
        return init_process_group(*args, **kwargs)

    def world_size_device_count() -> int:
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 0

    @functools.wraps(module_to)
    def cpu_module_to(self: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
        args = tuple(_cpu_if_cuda(a) for a in args)
        if "device" in kwargs:
            kwargs["device"] = _cpu_if_cuda(kwargs["device"])
        return module_to(self, *args, **kwargs)

    @functools.wraps(load)
    def cpu_load(*args: Any, **kwargs: Any) -> Any:
        if len(args) >= 2:  # load(f, map_location, ...)
            args = (args[0], _cpu_if_cuda(args[1]) if args[1] is not None else "cpu", *args[2:])
        else:
            location = kwargs.get("map_location")
            kwargs["map_location"] = "cpu" if location is None else _cpu_if_cuda(location)
        return load(*args, **kwargs)

    @functools.wraps(ddp_init)
    def cpu_ddp_init(self: DistributedDataParallel, *args: Any, **kwargs: Any) -> None:
        bound = ddp_signature.bind(self, *args, **kwargs)
        module = bound.arguments["module"]
        if all(p.device.type == "cpu" for p in module.parameters()):
            bound.arguments.pop("device_ids", None)
            bound.arguments.pop("output_device", None)
        ddp_init(*bound.args, **bound.kwargs)

    def keep_batchnorm(module: nn.Module, process_group: Any = None) -> nn.Module:
        return module

    return {
        (dist, "init_process_group"): gloo_init_process_group,
        (torch.cuda, "is_available"): lambda: False,
        (torch.cuda, "device_count"): world_size_device_count,
        (torch.cuda, "set_device"): lambda device: None,
        (torch.cuda, "current_device"): lambda: 0,
        (torch.Tensor, "cuda"): lambda self, *args, **kwargs: self,
        (nn.Module, "cuda"): lambda self, *args, **kwargs: self,
        (nn.Module, "to"): cpu_module_to,
        (torch, "load"): cpu_load,
        (DistributedDataParallel, "__init__"): cpu_ddp_init,
        (nn.SyncBatchNorm, "convert_sync_batchnorm"): staticmethod(keep_batchnorm),
    }


def enable_cpu_mode() -> Callable[[], None]:
    """Apply every patch in :data:`PATCHED` (idempotent) and return a function that undoes them.

    The patches replace attributes of ``torch`` modules and classes, so code that looks them up
    when it runs (``torch.cuda.set_device(...)``, ``x.cuda()``, OpenGait everywhere) sees them,
    whereas a name bound before (``from torch import load``) would not: apply them first.
    """
    if not _originals:
        replacements = _replacements()
        for owner, name in PATCHED:
            # staticmethods must be read from __dict__ to be restored as staticmethods
            _originals.append((owner, name, inspect.getattr_static(owner, name)))
            setattr(owner, name, replacements[(owner, name)])
        for pattern in _SILENCED_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern, category=UserWarning)
            _filters.append(warnings.filters[0])
    return disable_cpu_mode


def disable_cpu_mode() -> None:
    """Restore every entry point :func:`enable_cpu_mode` replaced (a no-op when none is patched)."""
    for owner, name, original in reversed(_originals):
        setattr(owner, name, original)
    _originals.clear()
    for entry in _filters:
        if entry in warnings.filters:
            warnings.filters.remove(entry)
    _filters.clear()
