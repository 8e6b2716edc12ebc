"""Any Discrete env, not only Frozen Lake's conditions: the agent and the tabular baselines, each playing the same
envs for the same episodes (one context per env), on gymnasium's canonical instances or a family's held-out maps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

from ..agent.exploration import ExplorationSchedule
from ..agent.icrl_agent import ICRLAgent
from ..agent.play import RolloutResult, play_seeds
from ..baselines import BASELINES, play_agents
from ..envs import heldout_maps, make_env
from ..envs.families import map_family
from .metrics import summarize

CANONICAL_ENVS: dict[str, Callable[[], gym.Env]] = {
    "FrozenLake-v1 4x4": lambda: gym.make("FrozenLake-v1", map_name="4x4", is_slippery=False),
    "FrozenLake-v1 8x8": lambda: gym.make("FrozenLake-v1", map_name="8x8", is_slippery=False),
    "CliffWalking-v1": lambda: gym.make("CliffWalking-v1", max_episode_steps=100),
}
"""gymnasium's own instances, made through ``gym.make`` (not slippery; CliffWalking-v1 cut at 100 steps)."""
ENV_BASELINES = ("random", "q_learning_zero_init", "q_learning_optimistic")


def _summary(result: RolloutResult) -> dict:
    summary = summarize(result)
    summary["mean_return"] = float(np.nanmean(result.returns))
    summary["final10_return"] = float(np.nanmean(result.returns[:, -10:]))
    return summary


def in_context_cell(summary: dict) -> str:
    """A player's ``summary`` as one table cell: success in the first 10 episodes / in the last 10 / mean episodes
    to the first success (a context that never succeeds counts all its episodes)."""
    return (f"{np.mean(summary['success_per_episode'][:10]):.3f} / {summary['final10_success']:.3f} / "
            f"{summary['episodes_to_first_success']:.1f}")


def evaluate_envs(agent: ICRLAgent | None, make_envs: Callable[[], list[gym.Env]], n_episodes: int = 30,
                  schedule: ExplorationSchedule | str = "paper_ramp", seed: int = 0,
                  baselines: Sequence[str] = ENV_BASELINES) -> dict:
    """``agent`` (already ``for_env`` the envs' id) and each baseline play fresh ``make_envs()``, one context of
    ``n_episodes`` per env, under ``schedule`` (baselines explore by the same schedule). Returns
    ``{name: summarize(...) + mean_return, final10_return}``; JSON-able."""
    schedule = ExplorationSchedule.parse(schedule) if isinstance(schedule, str) else schedule
    out = {}
    if agent is not None:
        envs = make_envs()
        rng, seeds = play_seeds(seed, len(envs))
        out["icrl"] = _summary(agent.engine().play(envs, n_episodes, schedule, rng, reset_seeds=seeds))
    for name in baselines:
        envs = make_envs()
        agent_rng = np.random.default_rng([seed, 1])
        rng, seeds = play_seeds(seed, len(envs))
        tabular = [BASELINES[name](env, agent_rng) for env in envs]
        out[name] = _summary(play_agents(tabular, envs, n_episodes, schedule, rng, reset_seeds=seeds))
    return out


def heldout_envs(env_id: str, family: str, n_maps: int, seed: int = 0) -> Callable[[], list[gym.Env]]:
    """A maker of one env per held-out map of ``env_id``'s ``family`` (the maps training never sees)."""
    maps = heldout_maps(map_family(env_id, family), n_maps, seed)
    return lambda: [make_env(env_id, desc=m) for m in maps]


def canonical_envs(name: str, n_contexts: int) -> Callable[[], list[gym.Env]]:
    """A maker of ``n_contexts`` copies of one of ``CANONICAL_ENVS`` (each context its own reset seed)."""
    return lambda: [CANONICAL_ENVS[name]() for _ in range(n_contexts)]
