"""Session-wide test setup.

Without CUDA, Triton kernels (``kprpe.core.triton_attention``) can only run in Triton's CPU interpreter,
which must be chosen before ``triton`` is first imported; PyTorch itself never uses Triton on CPU.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
