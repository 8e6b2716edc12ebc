"""Frozen Lake on a parametric family of random maps, as used for in-context RL."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv

from trl_icrl.envs.frozen_lake_maps import (
    FAMILIES,
    Map,
    MapFamily,
    goal_distances,
    optimal_actions,
    validate_map,
)
from trl_icrl.envs.generated_map_env import GeneratedMapEnv

ENV_ID = "trl_icrl/ParametricFrozenLake-v0"

# The image render modes of FrozenLakeEnv need pygame (gymnasium[toy-text]), which is optional here.
_RENDER_MODES = ["ansi", "rgb_array", "human"] if importlib.util.find_spec("pygame") else ["ansi"]


class ParametricFrozenLake(GeneratedMapEnv):
    """Gymnasium's Frozen Lake on a given or randomly generated map, with its own step limit.

    The dynamics, the start-tile draw and the rendering are those of
    ``gymnasium.envs.toy_text.frozen_lake.FrozenLakeEnv``, rebuilt whenever the map changes.

    ## Action Space
    ``Discrete(4)``: 0 left, 1 down, 2 right, 3 up. A move into a wall stays in place.

    ## Observation Space
    ``Discrete(nrow * ncol)``: the agent's tile ``row * ncol + col``. Its size depends on the map, so
    it changes when ``reset`` switches to a map of another size.

    ## Starting State
    A start tile ``S`` drawn uniformly from the map's start tiles.

    ## Rewards
    1.0 for reaching a goal, else 0.0.

    ## Episode End
    - Termination: the agent reaches a goal or falls into a hole.
    - Truncation: ``max_episode_steps`` steps since ``reset`` (as gymnasium's ``TimeLimit``, also on a
      step that terminates). ``gym.make`` adds no ``TimeLimit`` of its own; note that
      ``gym.make(id, max_episode_steps=n)`` is taken by ``gym.make`` (a ``TimeLimit`` wrapper on top).

    ## Information
    ``{"prob": p}``: the probability of the transition taken, as in ``FrozenLakeEnv``.

    ## Arguments
    - ``desc``: the map (see :func:`~trl_icrl.envs.frozen_lake_maps.validate_map`: row strings, one
      ``/``-joined string, or a bytes array such as another Frozen Lake's ``desc``); if ``None`` it is
      generated from ``family`` with ``map_seed``.
    - ``family``: a :class:`~trl_icrl.envs.frozen_lake_maps.MapFamily` or its name, "id" or "ood".
    - ``map_seed``: the seed of the generated map; if it and ``desc`` are ``None``, a fresh random seed
      (kept in ``map_seed``).
    - ``seed``: an alias of ``map_seed``, so that ``gym.make(id, seed=0)`` fixes the map. The start tiles
      (and slippery moves) are seeded by ``reset(seed=...)`` as usual.
    - ``is_slippery``, ``success_rate``: as in ``FrozenLakeEnv`` (the move succeeds with probability
      ``success_rate``, else goes to either side).
    - ``max_episode_steps``: the step limit.

    ``reset(options={"desc": map})`` or ``reset(options={"map_seed": seed})`` switches the map.

    ## Attributes
    ``desc`` (the map as ``FrozenLakeEnv`` holds it: a bytes array ``(nrow, ncol)`` of dtype ``"c"``, so
    ``desc[r, c] == b"H"``), ``map`` (the same map as a tuple of row strings), ``nrow``, ``ncol``,
    ``map_seed`` (``None`` for a given map), ``family`` and ``start_tile`` (this episode's start, ``None``
    before the first reset).
    """

    metadata = {"render_modes": _RENDER_MODES, "render_fps": 4}
    env_id = ENV_ID
    families = FAMILIES

    def __init__(
        self,
        desc: str | Sequence[str] | np.ndarray | None = None,
        family: str | MapFamily = "id",
        map_seed: int | None = None,
        is_slippery: bool = False,
        success_rate: float = 1.0 / 3.0,
        max_episode_steps: int = 100,
        render_mode: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.is_slippery = is_slippery
        self.success_rate = success_rate
        self.action_space = spaces.Discrete(4)
        self.start_tile: int | None = None
        super().__init__(desc, family, map_seed, max_episode_steps, seed, render_mode)

    def _load_map(self, desc: str | Sequence[str] | np.ndarray) -> None:
        """Loads a map and a FrozenLakeEnv that runs it (closing the one of the map before)."""
        rows = validate_map(desc)
        old_lake = getattr(self, "_lake", None)
        self.map: Map = rows
        self.desc: np.ndarray = np.asarray(self.map, dtype="c")
        self.nrow, self.ncol = self.desc.shape
        self._lake = FrozenLakeEnv(
            render_mode=self.render_mode,
            desc=list(self.map),
            is_slippery=self.is_slippery,
            success_rate=self.success_rate,
        )
        self.observation_space = self._lake.observation_space
        self._goal_distances = goal_distances(self.map)
        self._optimal_actions = optimal_actions(self.map)
        if old_lake is not None:
            old_lake.close()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Starts an episode; ``options`` may hold ``"desc"`` or ``"map_seed"`` to switch the map first."""
        super().reset(seed=seed, options=options)
        self._lake.np_random = self.np_random
        self.start_tile, info = self._lake.reset()
        return self.start_tile, info

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Moves the agent; see the class docstring for rewards and episode end."""
        tile, reward, terminated, _, info = self._lake.step(action)
        self._elapsed_steps += 1
        return tile, float(reward), terminated, self._elapsed_steps >= self.max_episode_steps, info

    def render(self) -> str | np.ndarray | None:
        """Renders as ``FrozenLakeEnv`` does in ``render_mode``."""
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; pass one to the constructor")
            return None
        return self._lake.render()

    def close(self) -> None:
        """Closes the render window, if any."""
        self._lake.close()

    def shortest_path_length(self, start_tile: int | None = None) -> int:
        """Fewest moves from ``start_tile`` (default: this episode's start) to a goal, without slipping;
        -1 for holes and tiles that reach no goal."""
        if start_tile is None:
            if self.start_tile is None:
                raise RuntimeError("call reset() first or pass start_tile")
            start_tile = self.start_tile
        return int(self._goal_distances[self._check_tile(start_tile)])

    def optimal_return(self, gamma: float = 1.0) -> float:
        """Expected return of an optimal policy without slipping, over the uniform draw of the start:
        the mean over start tiles of ``gamma ** (moves - 1)``, or 0 where the goal is farther than
        ``max_episode_steps`` moves."""
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        hops = [self._goal_distances[i] for i, letter in enumerate("".join(self.map)) if letter == "S"]
        return float(np.mean([gamma ** (h - 1) if h <= self.max_episode_steps else 0.0 for h in hops]))

    def optimal_action(self, tile: int) -> int:
        """The lowest-numbered action that brings ``tile`` one move closer to a goal (without slipping)."""
        actions = self._optimal_actions[self._check_tile(tile)]
        if not actions:
            raise ValueError(
                f"tile {tile} is a goal, a hole or cannot reach a goal: it has no optimal action"
            )
        return actions[0]

    def _check_tile(self, tile: int) -> int:
        """Returns ``tile`` if it is on the map, else raises ``ValueError``."""
        if not 0 <= tile < self.nrow * self.ncol:
            raise ValueError(f"tile must be in 0..{self.nrow * self.ncol - 1}, got {tile}")
        return tile
