"""Collects training trials: draws fresh maps (never a held-out one), plays them, returns replay rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..agent.exploration import ExplorationSchedule
from ..agent.play import RolloutResult
from ..agent.rollout_engine import RolloutEngine
from ..envs import TRAIN_SEED_LIMIT, make_env
from ..envs.codec import EnvCodec
from ..envs.families import map_family
from ..envs.spec import EnvSpec

__all__ = ["EnvMixtureCollector", "TrialCollector", "check_mixture"]


class TrialCollector:
    """Plays ``n_parallel`` trials per ``collect()`` on fresh training maps.

    Args:
        engine: the rollout engine (acts with the network's online adapter).
        env_id: gymnasium id; for an env with generated maps (``map_family``) a new map is drawn per trial.
        family: the family of training maps (ignored for an env without generated maps).
        schedules: exploration schedules that successive collections take in turn.
        exclude_maps: maps never used for training (the held-out evaluation maps).
        seed, rank: the seed stream is ``SeedSequence([seed, rank])``, distinct per process.
        coordinate_frame, coordinate_frame_share: random offsets of the maps in a larger frame (``make_env``).
    """

    def __init__(self, engine: RolloutEngine, env_id: str, family: str, n_parallel: int, episodes_per_trial: int,
                 schedules: Sequence[ExplorationSchedule], exclude_maps: Sequence[tuple[str, ...]] = (), seed: int = 0,
                 rank: int = 0, is_slippery: bool = False, coordinate_frame: int = 0,
                 coordinate_frame_share: float = 1.0):
        self.engine, self.env_id, self.family = engine, env_id, map_family(env_id, family)
        self.episodes_per_trial, self.schedules = episodes_per_trial, list(schedules)
        self.schedule = self.schedules[0]
        self.exclude = frozenset(exclude_maps)
        self.rng = np.random.default_rng([seed, rank])
        self.envs = [make_env(env_id, is_slippery=is_slippery, coordinate_frame=coordinate_frame,
                              coordinate_frame_share=coordinate_frame_share) for _ in range(n_parallel)]
        self.trials_collected = 0

    @classmethod
    def of_spec(cls, engine: RolloutEngine, spec: EnvSpec, n_parallel: int, episodes_per_trial: int,
                schedules: Sequence[ExplorationSchedule], seed: int = 0, rank: int = 0,
                is_slippery: bool = False) -> TrialCollector:
        """The collector of a run's env: its family of training maps, exclusions and coordinate frame from its
        ``EnvSpec``."""
        return cls(engine, spec.env_id, spec.family_name, n_parallel, episodes_per_trial, schedules,
                   exclude_maps=spec.training_exclusions, seed=seed, rank=rank, is_slippery=is_slippery, **spec.frame)

    def collect(self) -> tuple[list[dict], RolloutResult]:
        """Play one batch of trials; returns replay rows and the rollout result."""
        seeds = [int(s) for s in self.rng.integers(TRAIN_SEED_LIMIT, size=len(self.envs))]
        maps = [self.family.generate(s, exclude=self.exclude) for s in seeds] if self.family else None

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


class EnvMixtureCollector:
    """Collectors of several envs taking turns: each ``collect()`` plays the next env's batch of trials."""

    def __init__(self, collectors: Sequence[TrialCollector]):
        self.collectors, self.turn = list(collectors), 0

    @property
    def schedule(self) -> ExplorationSchedule:
        """The schedule of the batch collected last."""
        return self.collectors[(self.turn - 1) % len(self.collectors)].schedule

    def collect(self) -> tuple[list[dict], RolloutResult]:
        collector = self.collectors[self.turn % len(self.collectors)]
        self.turn += 1
        return collector.collect()

    def state_dict(self) -> dict:
        return {"turn": self.turn, "collectors": [c.state_dict() for c in self.collectors]}

    def load_state_dict(self, state: dict) -> None:
        self.turn = state["turn"]
        for collector, collector_state in zip(self.collectors, state["collectors"]):
            collector.load_state_dict(collector_state)


def check_mixture(codecs: Mapping[str, EnvCodec], q_parameterisation: str) -> None:
    """Raise one sentence unless the envs trained on together share one Q head: as many actions each, and, for
    action-word logits, the same action words."""
    if len({c.n_actions for c in codecs.values()}) > 1:
        raise ValueError("the envs trained on together must have as many actions each (one Q head), got "
                         + ", ".join(f"{e}: {c.n_actions}" for e, c in codecs.items()))
    if q_parameterisation == "action_logits" and len({c.action_words for c in codecs.values()}) > 1:
        raise ValueError("q_parameterisation='action_logits' reads each action word's logit: envs trained on "
                         "together must share their action words, or use 'value_head'")
