"""Seeds that are a function of where a run is, not of how it got there: the basis of exact resume.

A trainer that draws step ``s``'s randomness (data order, augmentation, dropout) from generators seeded by
``step_seed(seed, rank, s, stream)`` needs no random state in its checkpoints: a resumed run replays the
uninterrupted one, and processes of a distributed run get independent streams.
"""

from __future__ import annotations

import numpy as np

__all__ = ["step_seed"]


def step_seed(seed: int, rank: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed for random ``stream`` of step ``step`` on process ``rank`` (``numpy.random.SeedSequence``
    mixing, so nearby arguments give unrelated seeds). All arguments must be non-negative integers."""
    state = np.random.SeedSequence([seed, stream, rank, step]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))
