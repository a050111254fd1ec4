"""kprpe: KeyPoint Relative Position Encoding for gait and face recognition.

The shared attention library lives in :mod:`kprpe.core`; gait is the sibling package ``kprpe_gait``.
"""

__version__ = "0.1.0"
