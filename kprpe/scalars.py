"""TensorBoard scalars of a training run that can be resumed: one helper for every trainer.

:class:`ScalarLog` opens its ``SummaryWriter`` lazily (a run that logs nothing leaves no folder), purges the
steps logged after the checkpoint a resumed run starts from (``purge_step``), keeps the logged rows in
``history`` (saved in checkpoints, so a resumed run's history is the uninterrupted one's), and prefixes keys
without a ``/`` by ``train/``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["ScalarLog"]


class ScalarLog:
    """Scalars to TensorBoard under ``log_dir`` and to :attr:`history`.

    Args:
        log_dir: the TensorBoard folder.
        start_step: the step the run (re)starts from; events after it in ``log_dir`` are purged.
        history: rows restored from a checkpoint.
    """

    def __init__(self, log_dir: str | os.PathLike[str], start_step: int = 0,
                 history: list[dict[str, float]] | None = None) -> None:  # fmt: skip
        self.log_dir = str(log_dir)
        self.start_step = start_step
        self.history: list[dict[str, float]] = list(history or [])
        self._writer: Any = None

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self.log_dir, purge_step=self.start_step + 1 if self.start_step else None)
        return self._writer

    def log(self, scalars: dict[str, float], step: int, keep: bool = True) -> None:
        """Write ``scalars`` at ``step`` (keys without ``/`` go under ``train/``); ``keep``: add to history."""
        for key, value in scalars.items():
            self.writer.add_scalar(key if "/" in key else f"train/{key}", float(value), step)
        if keep:
            self.history.append({"step": step, **{k: float(v) for k, v in scalars.items()}})

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
