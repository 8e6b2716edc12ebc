"""Exploration schedules across the episodes of one trial: P(take the model's greedy action)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAPER_RAMP = tuple(p / 10 for p in range(10) for _ in range(2)) + (1.0,) * 10
"""The paper's evaluation ramp: 0.0, 0.0, 0.1, 0.1, ..., 0.9, 0.9, then 1.0 for ten episodes (30 in all)."""


class ExplorationSchedule:
    """``greedy_probability(e)``: chance that episode ``e`` of a trial acts greedily on Q (else uniform).

    Episodes past the end of ``probabilities`` use its last value.
    """

    def __init__(self, probabilities: Sequence[float]):
        if not probabilities or any(not 0.0 <= p <= 1.0 for p in probabilities):
            raise ValueError(f"exploration probabilities must be a non-empty list in [0, 1], got {probabilities}")
        self.probabilities = tuple(float(p) for p in probabilities)

    def greedy_probability(self, episode: int) -> float:
        return self.probabilities[min(episode, len(self.probabilities) - 1)]

    @classmethod
    def parse(cls, spec: str | Sequence[float]) -> ExplorationSchedule:
        """``"paper_ramp"``, ``"greedy"``, ``"uniform"`` (always random) or a comma list ``"0.0,0.5,1.0"``."""
        if not isinstance(spec, str):
            return cls(spec)
        named = {"paper_ramp": PAPER_RAMP, "greedy": (1.0,), "uniform": (0.0,)}
        if spec in named:
            return cls(named[spec])
        try:
            return cls([float(p) for p in spec.split(",")])
        except ValueError:
            raise ValueError(f"unknown exploration schedule {spec!r}: use one of {sorted(named)} or a comma "
                             f"list of probabilities") from None


def exploration_streams(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """One random stream per env, seeded from ``rng``: an env's exploration draws then do not depend on when
    the other envs act (play loops that step envs at different times draw the same actions)."""
    return [np.random.default_rng(int(seed)) for seed in rng.integers(2**63, size=n)]


def parse_schedules(spec: str) -> list[ExplorationSchedule]:
    """Schedules joined by ``+`` (``"paper_ramp+greedy"``): successive collections take them in turn."""
    return [ExplorationSchedule.parse(part) for part in spec.split("+")]
