"""Smooth weighted round-robin (nginx's algorithm), per worker.

    sw = SmoothWeighted([2, 1])
    [sw.pick() for _ in range(6)]   # -> [0, 1, 0, 0, 1, 0]
    sw.pick(excluded=1 << 0)        # -> 1  (target 0's circuit is open)
    sw.pick(excluded=0b11)          # -> -1 (nothing left)
"""

from collections.abc import Sequence

from typing_extensions import disjoint_base

@disjoint_base
class SmoothWeighted:
    """Picks among 1 to 64 targets with positive int weights (each < 2**32).

    Over any ``sum(weights)`` consecutive picks from a cycle boundary (the
    start, then every ``sum(weights)`` picks) target ``i`` is picked exactly
    ``weights[i]`` times, interleaved. Not thread-safe; one per worker.
    """

    def __init__(self, weights: Sequence[int]) -> None:
        """Raise ValueError unless ``weights`` holds 1 to 64 ints, each >= 1."""
    @property
    def size(self) -> int:
        """Number of targets."""
    @property
    def weights(self) -> tuple[int, ...]: ...
    def pick(self, excluded: int = 0) -> int:
        """Index of the next target, skipping those whose bit is set in ``excluded``.

        Excluded targets keep their state; -1 when every target is excluded.
        """
