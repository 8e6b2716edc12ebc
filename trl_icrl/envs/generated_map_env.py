"""``GeneratedMapEnv``: the base class of every gymnasium env whose task is a generated instance of a family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["GeneratedMapEnv"]


class GeneratedMapEnv(gym.Env):
    """A gymnasium env whose task is an instance (a "map") drawn by seed from a family, or given: the parametric Frozen
    Lake, cliff walking and random MDPs.

    A subclass names its gymnasium ``env_id``, its ``families`` (name -> family with ``generate(seed)``) and the
    ``kind`` of instance (for messages), and loads an instance in ``_load_map(desc)`` (checking it first: a bad one
    changes nothing). ``trl_icrl.envs.registration`` registers each with gymnasium and its families with
    ``register_map_families``.

    Arguments every one takes: ``desc`` (an instance; ``None``: generated from ``family`` with ``map_seed``),
    ``family`` (a family or its name), ``map_seed`` (``None`` with no ``desc``: a fresh random seed, kept in
    ``map_seed``), ``seed`` (an alias of ``map_seed``, so that ``gym.make(id, seed=0)`` fixes the instance),
    ``max_episode_steps`` (the step limit) and ``render_mode`` (one of ``metadata["render_modes"]``).
    ``reset(options={"desc": ...})`` or ``reset(options={"map_seed": ...})`` switches the instance.
    """

    env_id: str
    families: Mapping[str, Any]
    kind = "map"

    def __init__(self, desc: Any = None, family: Any = None, map_seed: int | None = None, max_episode_steps: int = 100,
                 seed: int | None = None, render_mode: str | None = None) -> None:
        if seed is not None:
            if map_seed is not None and map_seed != seed:
                raise ValueError(f"seed is an alias of map_seed, got both: seed={seed}, map_seed={map_seed}")
            map_seed = seed
        if desc is not None and map_seed is not None:
            raise ValueError("give either desc or a map seed, not both")
        if isinstance(family, str) and family not in self.families:
            raise ValueError(f"unknown {self.kind} family {family!r}, expected one of {sorted(self.families)}")
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be at least 1, got {max_episode_steps}")
        if render_mode is not None and render_mode not in self.metadata.get("render_modes", ()):
            raise ValueError(f"render_mode must be one of {list(self.metadata.get('render_modes', ()))}, "
                             f"got {render_mode!r}")
        self.family = self.families[family] if isinstance(family, str) else family
        self.max_episode_steps, self.render_mode = max_episode_steps, render_mode
        self._elapsed_steps = 0
        self._set_map(desc, map_seed)

    def _set_map(self, desc: Any, map_seed: int | None) -> None:
        """Loads an instance, generated from ``map_seed`` (a fresh one if ``None``) when ``desc`` is ``None``."""
        if desc is None:
            if map_seed is None:
                map_seed = int(np.random.default_rng().integers(2**32))
            desc = self.family.generate(map_seed)
        self._load_map(desc)
        self.map_seed = map_seed

    def _load_map(self, desc: Any) -> None:
        """Check ``desc`` and load it with its dynamics (a subclass's own)."""
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Seeds the env's RNG and, with ``options`` ``{"desc": ...}`` or ``{"map_seed": ...}``, switches the
        instance first; the subclass then places the agent and returns the observation."""
        super().reset(seed=seed)
        if options:
            if set(options) - {"desc", "map_seed"} or len(options) > 1:
                raise ValueError(f"options may hold one of 'desc' or 'map_seed', got {sorted(options)}")
            self._set_map(options.get("desc"), options.get("map_seed"))
        self._elapsed_steps = 0
