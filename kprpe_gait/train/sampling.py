"""OpenGait's training sampling: P identities x K sequences per batch, a fixed number of ordered frames.

* :class:`TripletSampler` (OpenGait's ``TripletSampler``): each batch draws ``P`` distinct identities,
  then ``K`` sequences of each (without replacement when the identity has at least ``K``, with
  replacement otherwise; identities are drawn with replacement only when fewer than ``P`` exist).
* :func:`sample_ordered_frames` (OpenGait's ``fixed_ordered`` collate): a random window of
  ``frames + skip`` consecutive frames (the sequence repeated when it is shorter), and ``frames`` of
  them chosen without replacement, kept in order.

All randomness comes from a ``numpy.random.Generator`` the caller owns, so a run can be resumed with
identical draws (its ``bit_generator.state`` is a plain dict).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["TripletSampler", "sample_ordered_frames"]


def _choose(rng: np.random.Generator, population: Sequence, k: int) -> list:
    if len(population) >= k:
        picks = rng.permutation(len(population))[:k]
    else:
        picks = rng.integers(0, len(population), size=k)
    return [population[i] for i in picks]


class TripletSampler:
    """Infinite batches of sequence indices: ``P`` identities x ``K`` sequences.

    Args:
        indices_by_label: sequence indices of each identity (e.g. ``GaitDataset.indices_by_label``).
        batch_size: ``(P, K)``.
        rng: the generator every draw comes from.
        batch_shuffle: shuffle the ``P * K`` indices of a batch (identities otherwise come in blocks).
    """

    def __init__(
        self,
        indices_by_label: dict[str, list[int]],
        batch_size: tuple[int, int],
        rng: np.random.Generator,
        batch_shuffle: bool = False,
    ) -> None:
        if len(batch_size) != 2 or min(batch_size) < 1:
            raise ValueError(f"batch_size must be (P identities, K sequences), both >= 1, got {batch_size!r}")
        empty = [label for label, idx in indices_by_label.items() if not idx]
        if not indices_by_label or empty:
            raise ValueError(f"every identity needs at least one sequence; empty: {empty[:10]}")
        self.labels = sorted(indices_by_label)
        self.indices_by_label = {k: list(v) for k, v in indices_by_label.items()}
        self.p, self.k = int(batch_size[0]), int(batch_size[1])
        self.rng = rng
        self.batch_shuffle = batch_shuffle

    def next_batch(self) -> list[int]:
        """One batch: ``P * K`` sequence indices, identity by identity."""
        batch: list[int] = []
        for label in _choose(self.rng, self.labels, self.p):
            batch += _choose(self.rng, self.indices_by_label[label], self.k)
        if self.batch_shuffle:
            batch = [batch[i] for i in self.rng.permutation(len(batch))]
        return batch

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            yield self.next_batch()


def sample_ordered_frames(length: int, frames: int, skip: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``frames`` ordered frames from a sequence of ``length`` (OpenGait's ``fixed_ordered``).

    Returns:
        ``(frames,)`` int64 indices into the sequence, non-decreasing (repeats only when the sequence
        is shorter than ``frames + skip`` and had to be tiled).
    """
    if length < 1:
        raise ValueError("cannot sample frames from an empty sequence")
    if frames < 1 or skip < 0:
        raise ValueError(f"need frames >= 1 and skip >= 0, got frames={frames}, skip={skip}")
    window = frames + skip
    indices = np.arange(length)
    if length < window:
        indices = np.tile(indices, math.ceil(window / length))
    start = int(rng.integers(0, len(indices) - window + 1))
    chosen = np.sort(rng.choice(window, size=frames, replace=False))
    return indices[start + chosen]
