"""The paper's evaluation conditions: the maps, episodes and schedule every agent plays in each.

Conditions (``CONDITIONS``):

- ``in_distribution`` / ``out_of_distribution``: ``heldout_maps("id" | "ood", n_maps, seed)`` (or, to choose a
  recipe or checkpoint on, the validation maps), ``n_episodes`` per map in one growing context, under ``schedule``.
- ``non_stationary``: map A (the first ``n_maps`` held-out ID maps, i.e. the ID condition's maps) for
  ``n_episodes``, then map B (the next ``n_maps``) for ``n_episodes`` in the same context, switched by the
  reset options of a :class:`~trl_icrl.envs.NonStationarySchedule` per map; the schedule restarts on map B.
- ``stitching``: the paper's map ``STITCHING_MAP`` with its two hand-written demonstrations in context, then
  ``STITCHING_EPISODES`` fully greedy episodes (the schedule argument does not apply), plus a generated family
  of such tasks (:func:`~trl_icrl.envs.stitching_family`). The start is forced by the map itself: tile 8 is
  the paper map's only ``S``, and a family map keeps only one ``S``. Success means reaching the goal.

The model runs as trained (``TRAINED``), with its adapter off (``UNTRAINED``) and, for ID/OOD, with its context
wiped before every episode (``WIPED``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..agent.exploration import ExplorationSchedule
from ..envs import (
    PAPER_STITCHING_DEMOS,
    RESERVED_HELDOUT_MAPS,
    STITCHING_MAP,
    Demonstration,
    Map,
    NonStationarySchedule,
    ParametricFrozenLake,
    split_maps,
    stitching_family,
)
from ..envs.codec import EnvCodec
from ..protocol import Episode

CONDITIONS = ("in_distribution", "out_of_distribution", "non_stationary", "stitching")
STITCHING_EPISODES = 5
"""Fully greedy episodes after the demonstrations, as in the paper."""
TRAINED, UNTRAINED, WIPED = "icrl", "untrained", "icrl_wiped"
GREEDY = ExplorationSchedule.parse("greedy")


def demonstration_episode(demo: Demonstration, desc: Map, codec: EnvCodec) -> Episode:
    """A demonstration as a protocol ``Episode``, observations written by ``codec``."""
    env = ParametricFrozenLake(desc=desc)
    steps = demo.transitions(desc)
    return Episode(observations=[codec.observation_text(env, s[0]) for s in steps],
                   actions=[s[1] for s in steps], rewards=[s[2] for s in steps], terminated=True,
                   final_observation=codec.observation_text(env, steps[-1][3]))


@dataclass
class Condition:
    """One condition as every agent plays it: maps, episodes, schedule, and what the report needs; arrays are
    (n_maps, n_episodes)."""

    condition: str
    maps: list[Map]
    n_episodes: int
    schedule: ExplorationSchedule
    optimal_returns: np.ndarray
    info: dict
    trajectory: tuple[Map, int, int]
    """Map 0's map and the [first, last) played episodes whose early and late paths are drawn."""
    reset_options: Callable[[int, int], dict | None] | None = None
    demonstrations: list[tuple[Demonstration, ...]] | None = None


def _optimal_returns(maps: Sequence[Map], n_episodes: int) -> np.ndarray:
    """(n_maps, n_episodes) optimal return of each map, repeated per episode."""
    returns = [ParametricFrozenLake(desc=m).optimal_return(gamma=1.0) for m in maps]
    return np.repeat(np.asarray(returns)[:, None], n_episodes, axis=1)


def make_condition(condition: str, n_maps: int, n_episodes: int, schedule: ExplorationSchedule,
                   seed: int, split: str = "heldout") -> Condition:
    """The maps, schedule, switches and demonstrations of ``condition`` (see the module docstring), on the maps of
    ``split`` (``"heldout"``, to report; ``"validation"``, to choose on: not for stitching, whose family is drawn
    from held-out maps); its maps must lie among the reserved ones that training never draws."""
    if split == "validation" and condition == "stitching":
        raise ValueError("the stitching condition draws its family from held-out maps: evaluate it with "
                         "split='heldout'")
    if split == "heldout" and n_maps * (2 if condition == "non_stationary" else 1) > RESERVED_HELDOUT_MAPS:
        raise ValueError(f"{condition} with n_maps={n_maps} would play held-out maps beyond the first "
                         f"{RESERVED_HELDOUT_MAPS} of a family, which training does not exclude: use fewer maps")
    if condition in ("in_distribution", "out_of_distribution"):
        maps = split_maps(split, "id" if condition == "in_distribution" else "ood", n_maps, seed)
        return Condition(condition, maps, n_episodes, schedule, _optimal_returns(maps, n_episodes),
                         {"maps": ["/".join(m) for m in maps]}, (maps[0], 0, n_episodes))
    if condition == "non_stationary":
        maps = split_maps(split, "id", 2 * n_maps, seed)
        first, second = maps[:n_maps], maps[n_maps:]
        twice = ExplorationSchedule([schedule.greedy_probability(e) for e in range(n_episodes)] * 2)
        optimal = np.concatenate([_optimal_returns(first, n_episodes), _optimal_returns(second, n_episodes)],
                                 axis=1)
        switches = [NonStationarySchedule(a, b, switch_after=n_episodes) for a, b in zip(first, second)]
        return Condition(condition, first, 2 * n_episodes, twice, optimal,
                         {"maps_a": ["/".join(m) for m in first], "maps_b": ["/".join(m) for m in second],
                          "switch_after": n_episodes}, (second[0], n_episodes, 2 * n_episodes),
                         reset_options=lambda i, e: switches[i].reset_options(e))
    if condition == "stitching":
        family = stitching_family(n_maps, seed)
        maps = [STITCHING_MAP] + [m for m, _ in family]
        demos = [PAPER_STITCHING_DEMOS] + [d for _, d in family]
        info = {"maps": ["/".join(m) for m in maps[1:]], "paper_map": "/".join(STITCHING_MAP),
                "demonstrations": [[{"start": d.start, "actions": list(d.actions)} for d in pair]
                                   for pair in demos]}
        return Condition(condition, maps, STITCHING_EPISODES, GREEDY, _optimal_returns(maps, STITCHING_EPISODES),
                         info, (STITCHING_MAP, 0, STITCHING_EPISODES), demonstrations=demos)
    raise ValueError(f"unknown condition {condition!r}: expected one of {CONDITIONS}")
