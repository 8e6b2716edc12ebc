"""Collects training trials: draws fresh maps (never a held-out one), plays them, returns replay rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .envs import ENV_ID, FAMILIES, TRAIN_SEED_LIMIT, make_env
from .exploration import ExplorationSchedule
from .play import RolloutResult
from .rollout import RolloutEngine


class TrialCollector:
    """Plays ``n_parallel`` trials per ``collect()`` on fresh training maps.

    Args:
        engine: the rollout engine (acts with the network's online adapter).
        env_id: gymnasium id; for the parametric Frozen Lake a new map is drawn per trial.
        family: map family of training maps.
        schedules: exploration schedules that successive collections take in turn.
        exclude_maps: maps never used for training (the held-out evaluation maps).
        seed, rank: the seed stream is ``SeedSequence([seed, rank])``, distinct per process.
        coordinate_frame, coordinate_frame_share: random offsets of the maps in a larger frame (``make_env``).
    """

    def __init__(self, engine: RolloutEngine, env_id: str, family: str, n_parallel: int, episodes_per_trial: int,
                 schedules: Sequence[ExplorationSchedule], exclude_maps: Sequence[tuple[str, ...]] = (), seed: int = 0,
                 rank: int = 0, is_slippery: bool = False, coordinate_frame: int = 0,
                 coordinate_frame_share: float = 1.0):
        self.engine, self.env_id, self.family = engine, env_id, FAMILIES.get(family)
        self.episodes_per_trial, self.schedules = episodes_per_trial, list(schedules)
        self.schedule = self.schedules[0]
        self.exclude = frozenset(exclude_maps)
        self.rng = np.random.default_rng([seed, rank])
        self.envs = [make_env(env_id, is_slippery=is_slippery, coordinate_frame=coordinate_frame,
                              coordinate_frame_share=coordinate_frame_share) for _ in range(n_parallel)]
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
