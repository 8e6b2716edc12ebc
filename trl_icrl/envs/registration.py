"""The gymnasium id of the parametric Frozen Lake and how the library makes envs by id."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym

ENV_ID = "trl_icrl/ParametricFrozenLake-v0"

# No max_episode_steps here: the environment truncates episodes itself.
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="trl_icrl.envs.parametric_frozen_lake:ParametricFrozenLake")


def make_env(env_id: str, is_slippery: bool = False, **kwargs) -> gym.Env:
    """One env of the family; Frozen Lake settings apply to the parametric Frozen Lake only."""
    if env_id == ENV_ID:
        return gym.make(env_id, is_slippery=is_slippery, **kwargs)
    return gym.make(env_id, **kwargs)


def frozen_lake_envs(maps: Sequence[Sequence[str]], is_slippery: bool = False) -> list[gym.Env]:
    """One parametric Frozen Lake env per map."""
    return [make_env(ENV_ID, is_slippery=is_slippery, desc=m) for m in maps]
