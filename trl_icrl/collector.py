"""Collects training trials: draws fresh maps (never a held-out one), plays them, returns replay rows."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from .envs import ENV_ID, FAMILIES, MapFamily
from .exploration import ExplorationSchedule
from .rollout import RolloutEngine, RolloutResult

TRAIN_SEED_LIMIT = 2**31
"""Training map seeds lie in [0, 2^31); held-out (evaluation) map seeds in [2^31, 2^32)."""


def heldout_map_seeds(n: int, seed: int = 0) -> list[int]:
    """Seeds of ``n`` held-out maps: in [2^31, 2^32), so they never overlap a training seed."""
    return [int(s) for s in np.random.default_rng([seed, 1]).integers(TRAIN_SEED_LIMIT, 2 * TRAIN_SEED_LIMIT, n)]


def heldout_maps(family: MapFamily | str, n: int, seed: int = 0) -> list[tuple[str, ...]]:
    """``n`` distinct held-out maps of a family, from ``heldout_map_seeds``."""
    family = FAMILIES[family] if isinstance(family, str) else family
    maps: list[tuple[str, ...]] = []
    for map_seed in heldout_map_seeds(n, seed):
        maps.append(family.generate(map_seed, exclude=frozenset(maps)))
    return maps


def make_env(env_id: str, is_slippery: bool = False, **kwargs) -> gym.Env:
    """One env of the family; Frozen Lake settings apply to the parametric Frozen Lake only."""
    if env_id == ENV_ID:
        return gym.make(env_id, is_slippery=is_slippery, **kwargs)
    return gym.make(env_id, **kwargs)


class TrialCollector:
    """Plays ``n_parallel`` trials per ``collect()`` on fresh training maps.

    Args:
        engine: the rollout engine (acts with the network's online adapter).
        env_id: gymnasium id; for the parametric Frozen Lake a new map is drawn per trial.
        family: map family of training maps.
        schedules: exploration schedules that successive collections take in turn.
        exclude_maps: maps never used for training (the held-out evaluation maps).
        seed, rank: the seed stream is ``SeedSequence([seed, rank])``, distinct per process.
    """

    def __init__(self, engine: RolloutEngine, env_id: str, family: str, n_parallel: int, episodes_per_trial: int,
                 schedules: Sequence[ExplorationSchedule], exclude_maps: Sequence[tuple[str, ...]] = (), seed: int = 0,
                 rank: int = 0, is_slippery: bool = False):
        self.engine, self.env_id, self.family = engine, env_id, FAMILIES.get(family)
        self.episodes_per_trial, self.schedules = episodes_per_trial, list(schedules)
        self.schedule = self.schedules[0]
        self.exclude = frozenset(exclude_maps)
        self.rng = np.random.default_rng([seed, rank])
        self.envs = [make_env(env_id, is_slippery=is_slippery) for _ in range(n_parallel)]
        self.trials_collected = 0

    @property
    def frozen_lake(self) -> bool:
        return self.env_id == ENV_ID

    def collect(self) -> tuple[list[dict], RolloutResult]:
        """Play one batch of trials; returns replay rows and the rollout result."""
        seeds = [int(s) for s in self.rng.integers(TRAIN_SEED_LIMIT, size=len(self.envs))]
        maps = [self.family.generate(s, exclude=self.exclude) for s in seeds] if self.frozen_lake else None

        def reset_options(i: int, episode: int) -> dict | None:
            return {"desc": maps[i]} if maps is not None and episode == 0 else None

        self.schedule = self.schedules[self.trials_collected // len(self.envs) % len(self.schedules)]
        result = self.engine.play(self.envs, self.episodes_per_trial, self.schedule, self.rng, reset_seeds=seeds,
                                  reset_options=reset_options)
        rows = []
        for i, trial in enumerate(result.trials):
            row = trial.to_row()
            row.update(env_id=self.env_id, env_map="/".join(maps[i]) if maps else "", seed=seeds[i],
                       policy="online")
            rows.append(row)
        self.trials_collected += len(rows)
        return rows, result

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "trials_collected": self.trials_collected}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.trials_collected = state["trials_collected"]
