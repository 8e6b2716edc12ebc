"""The env families for in-context RL: the parametric Frozen Lake (maps and their generator, the env, held-out maps,
stitching tasks and non-stationary switches), the parametric cliff walking and random tabular MDPs; importing this
module registers ``trl_icrl/ParametricFrozenLake-v0``, ``trl_icrl/ParametricCliffWalking-v0`` and
``trl_icrl/RandomMDP-v0`` with gymnasium."""

from trl_icrl.envs.cliff_walking_maps import (
    CANONICAL_CLIFF_MAP,
    CLIFF_FAMILIES,
    CLIFF_FAMILY,
    MAX_CLIFF_COLS,
    MAX_CLIFF_ROWS,
    CliffFamily,
    cliff_goal_distances,
    cliff_optimal_actions,
    validate_cliff_map,
)
from trl_icrl.envs.coordinate_frame import RandomCoordinateOffset
from trl_icrl.envs.families import map_families
from trl_icrl.envs.frozen_lake_maps import (
    CANONICAL_MAPS,
    FAMILIES,
    IN_DISTRIBUTION,
    MAX_MAP_SIZE,
    OUT_OF_DISTRIBUTION,
    UP_TO_8,
    Map,
    MapFamily,
    NonStationarySchedule,
    generate_map,
    goal_distances,
    optimal_actions,
    validate_map,
)
from trl_icrl.envs.parametric_cliff_walking import CLIFF_ENV_ID, ParametricCliffWalking
from trl_icrl.envs.parametric_frozen_lake import ENV_ID, ParametricFrozenLake
from trl_icrl.envs.random_mdp import (
    MDP,
    MDP_ENV_ID,
    MDP_FAMILIES,
    RANDOM_MDP,
    MDPFamily,
    RandomMDP,
    generate_mdp,
    mdp_dynamics,
    mdp_goal_distances,
    mdp_optimal_actions,
    validate_mdp,
)
from trl_icrl.envs.registration import GENERATED_MAP_ENVS, frozen_lake_envs, make_env
from trl_icrl.envs.splits import (
    RESERVED_HELDOUT_MAPS,
    RESERVED_VALIDATION_MAPS,
    SPLITS,
    TRAIN_SEED_LIMIT,
    heldout_map_seeds,
    heldout_maps,
    reserved_maps,
    split_maps,
    validation_maps,
)
from trl_icrl.envs.stitching import (
    PAPER_STITCHING_DEMOS,
    STITCHING_MAP,
    Demonstration,
    StitchingTask,
    stitching_family,
    stitching_maps,
    stitching_task,
)

EXTRA_HELDOUT_MAPS: dict[str, frozenset[Map]] = {CLIFF_ENV_ID: frozenset({CANONICAL_CLIFF_MAP}),
                                                  ENV_ID: CANONICAL_MAPS}
"""Fixed maps per env id that are held out besides its families' reserved maps (gymnasium's own maps)."""


def evaluation_maps(env_id: str, seed: int = 0) -> frozenset[Map]:
    """Every map an evaluation with ``seed`` may play on ``env_id``: the reserved held-out and validation maps of its
    families, its
    ``EXTRA_HELDOUT_MAPS`` and, for the parametric Frozen Lake, the stitching condition's maps. Training, offline
    data and pretraining exclude them."""
    maps = reserved_maps(map_families(env_id).values(), seed) | EXTRA_HELDOUT_MAPS.get(env_id, frozenset())
    return maps | stitching_maps(seed) if env_id == ENV_ID else maps

__all__ = [
    "GENERATED_MAP_ENVS",
    "CANONICAL_MAPS",
    "UP_TO_8",
    "CANONICAL_CLIFF_MAP",
    "CLIFF_ENV_ID",
    "CLIFF_FAMILIES",
    "CLIFF_FAMILY",
    "EXTRA_HELDOUT_MAPS",
    "MAX_CLIFF_COLS",
    "MAX_CLIFF_ROWS",
    "CliffFamily",
    "ParametricCliffWalking",
    "cliff_goal_distances",
    "cliff_optimal_actions",
    "validate_cliff_map",
    "MDP",
    "MDP_ENV_ID",
    "MDP_FAMILIES",
    "RANDOM_MDP",
    "MDPFamily",
    "RandomMDP",
    "generate_mdp",
    "mdp_dynamics",
    "mdp_goal_distances",
    "mdp_optimal_actions",
    "validate_mdp",
    "ENV_ID",
    "FAMILIES",
    "IN_DISTRIBUTION",
    "MAX_MAP_SIZE",
    "OUT_OF_DISTRIBUTION",
    "PAPER_STITCHING_DEMOS",
    "RESERVED_HELDOUT_MAPS",
    "RESERVED_VALIDATION_MAPS",
    "SPLITS",
    "STITCHING_MAP",
    "TRAIN_SEED_LIMIT",
    "Demonstration",
    "Map",
    "MapFamily",
    "NonStationarySchedule",
    "ParametricFrozenLake",
    "RandomCoordinateOffset",
    "StitchingTask",
    "frozen_lake_envs",
    "generate_map",
    "goal_distances",
    "heldout_map_seeds",
    "heldout_maps",
    "make_env",
    "optimal_actions",
    "reserved_maps",
    "split_maps",
    "validation_maps",
    "evaluation_maps",
    "stitching_family",
    "stitching_maps",
    "stitching_task",
    "validate_map",
]
