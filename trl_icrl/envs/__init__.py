"""Frozen Lake environments for in-context RL; importing this module registers
``trl_icrl/ParametricFrozenLake-v0`` with gymnasium."""

import gymnasium

from trl_icrl.env_families import register_map_families
from trl_icrl.envs.frozen_lake_maps import (
    FAMILIES,
    IN_DISTRIBUTION,
    MAX_MAP_SIZE,
    OUT_OF_DISTRIBUTION,
    STITCHING_MAP,
    Map,
    MapFamily,
    NonStationarySchedule,
    generate_map,
    goal_distances,
    optimal_actions,
    validate_map,
)
from trl_icrl.envs.parametric_frozen_lake import ParametricFrozenLake

ENV_ID = "trl_icrl/ParametricFrozenLake-v0"

# No max_episode_steps here: the environment truncates episodes itself.
if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="trl_icrl.envs.parametric_frozen_lake:ParametricFrozenLake")
register_map_families(ENV_ID, FAMILIES)

__all__ = [
    "ENV_ID",
    "FAMILIES",
    "IN_DISTRIBUTION",
    "MAX_MAP_SIZE",
    "OUT_OF_DISTRIBUTION",
    "STITCHING_MAP",
    "Map",
    "MapFamily",
    "NonStationarySchedule",
    "ParametricFrozenLake",
    "generate_map",
    "goal_distances",
    "optimal_actions",
    "validate_map",
]
