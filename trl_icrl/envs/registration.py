"""The envs of generated maps registered, in one place (with gymnasium and with their map families), and how the
library makes envs by id."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym

from trl_icrl.envs.coordinate_frame import RandomCoordinateOffset
from trl_icrl.envs.families import register_map_families
from trl_icrl.envs.generated_map_env import GeneratedMapEnv
from trl_icrl.envs.parametric_cliff_walking import ParametricCliffWalking
from trl_icrl.envs.parametric_frozen_lake import ENV_ID, ParametricFrozenLake
from trl_icrl.envs.random_mdp import RandomMDP

GENERATED_MAP_ENVS: tuple[type[GeneratedMapEnv], ...] = (ParametricFrozenLake, ParametricCliffWalking, RandomMDP)
"""Every env of generated maps: registered with gymnasium under its ``env_id`` (no ``max_episode_steps``: the envs
truncate episodes themselves) and its families with ``register_map_families``."""

for env_class in GENERATED_MAP_ENVS:
    if env_class.env_id not in gym.registry:
        gym.register(id=env_class.env_id, entry_point=f"{env_class.__module__}:{env_class.__name__}")
    register_map_families(env_class.env_id, env_class.families)


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
