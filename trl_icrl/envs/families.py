"""Families of generated maps, keyed by env id: what generic code (trainer, offline data, model card) asks of an
env beyond gymnasium.

An env whose tasks are generated maps registers its families here when its package is imported (``trl_icrl.envs``
does for the parametric Frozen Lake). Such an env takes ``family=<name>`` (and ``desc=<map>``) in ``gym.make`` and
``reset(options={"desc": <map>})``; held-out evaluation maps and offline data are drawn from its families. Any
other gymnasium env has none and is played as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .frozen_lake_maps import MapFamily

_MAP_FAMILIES: dict[str, Mapping[str, MapFamily]] = {}


def register_map_families(env_id: str, families: Mapping[str, MapFamily]) -> None:
    """Declare that ``env_id`` plays generated maps drawn from ``families`` (family name -> family)."""
    _MAP_FAMILIES[env_id] = families


def map_family(env_id: str, name: str) -> MapFamily | None:
    """The family ``name`` of generated maps of ``env_id``; ``None`` when the env has no generated maps."""
    families = _MAP_FAMILIES.get(env_id)
    if families is None:
        return None
    if name not in families:
        raise ValueError(f"map_family must be one of {sorted(families)} for {env_id}, got {name!r}")
    return families[name]


def map_families(env_id: str) -> Mapping[str, MapFamily]:
    """Every family of generated maps of ``env_id`` (empty when it has none)."""
    return _MAP_FAMILIES.get(env_id, {})


def first_family(env_id: str) -> str:
    """The name of ``env_id``'s first family of generated maps, its default; ``"id"`` (naming none) when it has none."""
    return next(iter(map_families(env_id)), "id")


def trained_map_families(env_ids: Sequence[str], map_family: str) -> dict[str, str]:
    """The family of training maps of each env of a run on ``env_ids``: ``map_family`` for the first (the run's
    ``env_id``), each other env's first family."""
    return {env_id: map_family if i == 0 else first_family(env_id) for i, env_id in enumerate(env_ids)}
