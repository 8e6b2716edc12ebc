"""The gymnasium ids of the parametric Frozen Lake and cliff walking, and how the library makes envs by id."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym

from trl_icrl.envs.coordinate_frame import RandomCoordinateOffset

ENV_ID = "trl_icrl/ParametricFrozenLake-v0"
CLIFF_ENV_ID = "trl_icrl/ParametricCliffWalking-v0"

# No max_episode_steps here: the environments truncate episodes themselves.
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="trl_icrl.envs.parametric_frozen_lake:ParametricFrozenLake")
if CLIFF_ENV_ID not in gym.registry:
    gym.register(id=CLIFF_ENV_ID, entry_point="trl_icrl.envs.parametric_cliff_walking:ParametricCliffWalking")


def make_env(env_id: str, is_slippery: bool = False, coordinate_frame: int = 0, coordinate_frame_share: float = 1.0,
             **kwargs) -> gym.Env:
    """One env of the family; Frozen Lake settings apply to the parametric Frozen Lake only. With
    ``coordinate_frame`` > 0 a share ``coordinate_frame_share`` of the trials place their map at a random offset
    in a frame of that side (``RandomCoordinateOffset``)."""
    env = gym.make(env_id, is_slippery=is_slippery, **kwargs) if env_id == ENV_ID else gym.make(env_id, **kwargs)
    return RandomCoordinateOffset(env, coordinate_frame, coordinate_frame_share) if coordinate_frame else env


def frozen_lake_envs(maps: Sequence[Sequence[str]], is_slippery: bool = False) -> list[gym.Env]:
    """One parametric Frozen Lake env per map."""
    return [make_env(ENV_ID, is_slippery=is_slippery, desc=m) for m in maps]
