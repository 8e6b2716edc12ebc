"""Cliff walking on a parametric family of random cliff maps, as used for in-context RL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from trl_icrl.envs.cliff_walking_maps import (
    CLIFF_FAMILIES,
    MAX_CLIFF_COLS,
    MAX_CLIFF_ROWS,
    CliffFamily,
    Map,
    cliff_goal_distances,
    cliff_moves,
    cliff_optimal_actions,
    validate_cliff_map,
)
from trl_icrl.envs.generated_map_env import GeneratedMapEnv

CLIFF_ENV_ID = "trl_icrl/ParametricCliffWalking-v0"

Transitions = dict[int, dict[int, list[tuple[float, int, float, bool]]]]
"""``P[tile][action] == [(probability, next_tile, reward, terminated)]``, as gymnasium's toy-text envs hold it."""


class ParametricCliffWalking(GeneratedMapEnv):
    """Gymnasium's cliff walking on a given or randomly generated cliff map, with its own step limit.

    On :data:`~trl_icrl.envs.cliff_walking_maps.CANONICAL_CLIFF_MAP` the transitions ``P`` are those of
    ``gym.make("CliffWalking-v1")`` (not slippery).

    ## Action Space
    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left. A move into a wall stays in place.

    ## Observation Space
    ``Discrete(nrow * ncol)``: the agent's tile ``row * ncol + col``. Its size depends on the map, so it
    changes when ``reset`` switches to a map of another size.

    ## Starting State
    The map's start tile ``S``.

    ## Rewards
    -1 per step, except a step into a cliff: -100, and the agent is back on the start tile.

    ## Episode End
    - Termination: the agent reaches the goal (a cliff does not end the episode).
    - Truncation: ``max_episode_steps`` steps since ``reset`` (also on a step that terminates).

    ## Information
    ``{"prob": 1}`` on reset, as in ``CliffWalkingEnv``; ``{"prob": 1.0, "is_success": terminated}`` on a step
    (the episode ends only at the goal).

    ## Arguments
    - ``desc``: the map (row strings or one ``/``-joined string, see
      :func:`~trl_icrl.envs.cliff_walking_maps.validate_cliff_map`); if ``None`` it is generated from ``family``
      with ``map_seed``.
    - ``family``: a :class:`~trl_icrl.envs.cliff_walking_maps.CliffFamily` or its name, "cliff".
    - ``map_seed``: the seed of the generated map; if it and ``desc`` are ``None``, a fresh random seed (kept in
      ``map_seed``).
    - ``seed``: an alias of ``map_seed``, so that ``gym.make(id, seed=0)`` fixes the map.
    - ``max_episode_steps``: the step limit.

    ``reset(options={"desc": map})`` or ``reset(options={"map_seed": seed})`` switches the map.

    ## Attributes
    ``map`` (tuple of row strings), ``nrow``, ``ncol``, ``map_seed`` (``None`` for a given map), ``family``,
    ``start_tile`` (fixed by the map), ``tile`` (the agent's) and ``P`` (:data:`Transitions` of every tile,
    cliffs and goal included).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    env_id = CLIFF_ENV_ID
    families = CLIFF_FAMILIES
    action_words = ("up", "right", "down", "left")
    reward_values = (-1.0, -100.0)
    max_observations = MAX_CLIFF_ROWS * MAX_CLIFF_COLS

    def __init__(
        self,
        desc: str | Sequence[str] | None = None,
        family: str | CliffFamily = "cliff",
        map_seed: int | None = None,
        max_episode_steps: int = 100,
        render_mode: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.action_space = spaces.Discrete(4)
        super().__init__(desc, family, map_seed, max_episode_steps, seed, render_mode)

    def _load_map(self, desc: str | Sequence[str]) -> None:
        """Loads a map and its transitions; a bad map changes nothing."""
        rows = validate_cliff_map(desc)
        tiles = "".join(rows)
        self.map: Map = rows
        self.nrow, self.ncol = len(rows), len(rows[0])
        self.start_tile = self.tile = tiles.index("S")
        self.observation_space = spaces.Discrete(len(tiles))
        self.P: Transitions = {
            tile: {
                action: [(1.0, self.start_tile, -100.0, False) if tiles[target] == "C"
                         else (1.0, target, -1.0, tiles[target] == "G")]
                for action, target in enumerate(targets)
            }
            for tile, targets in enumerate(cliff_moves(self.nrow, self.ncol))
        }
        self._goal_distances = cliff_goal_distances(rows)
        self._optimal_actions = cliff_optimal_actions(rows)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Starts an episode on the start tile; ``options`` may hold ``"desc"`` or ``"map_seed"`` to switch the
        map first."""
        super().reset(seed=seed, options=options)
        self.tile = self.start_tile
        return self.tile, {"prob": 1}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Moves the agent; see the class docstring for rewards and episode end."""
        prob, self.tile, reward, terminated = self.P[self.tile][int(action)][0]
        self._elapsed_steps += 1
        truncated = self._elapsed_steps >= self.max_episode_steps
        return self.tile, reward, terminated, truncated, {"prob": prob, "is_success": terminated}

    def render(self) -> str | None:
        """The map as text, one row a line, with the agent's tile shown as ``x`` (``render_mode="ansi"``)."""
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; pass one to the constructor")
            return None
        tiles = list("".join(self.map))
        tiles[self.tile] = "x"
        return "\n".join("".join(tiles[r * self.ncol : (r + 1) * self.ncol]) for r in range(self.nrow)) + "\n"

    def shortest_path_length(self, start_tile: int | None = None) -> int:
        """Fewest safe moves from ``start_tile`` (default: the start) to the goal; -1 for cliffs and tiles that
        cannot reach the goal safely."""
        return int(self._goal_distances[self.start_tile if start_tile is None else self._check_tile(start_tile)])

    def optimal_return(self, gamma: float = 1.0) -> float:
        """Return of the shortest safe path from the start: -1 per move discounted by ``gamma``, over at most
        ``max_episode_steps`` moves (-13 on the canonical map with ``gamma=1``)."""
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        moves = min(self.shortest_path_length(), self.max_episode_steps)
        return -float(sum(gamma**k for k in range(moves)))

    def optimal_action(self, tile: int) -> int:
        """The lowest-numbered action that brings ``tile`` one safe move closer to the goal."""
        actions = self._optimal_actions[self._check_tile(tile)]
        if not actions:
            raise ValueError(f"tile {tile} is the goal, a cliff or cannot reach the goal: it has no optimal action")
        return actions[0]

    def _check_tile(self, tile: int) -> int:
        """Returns ``tile`` if it is on the map, else raises ``ValueError``."""
        if not 0 <= tile < self.nrow * self.ncol:
            raise ValueError(f"tile must be in 0..{self.nrow * self.ncol - 1}, got {tile}")
        return tile
