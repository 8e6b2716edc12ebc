"""Training, validation and held-out maps of a family: disjoint ranges or streams of map seeds, and every map an
evaluation may play excluded from training by value (two seeds can draw the same small map).

Choices (a learning rate, a recipe, a checkpoint) are made on validation maps; results are reported on held-out
maps; neither is ever trained on."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from trl_icrl.envs.frozen_lake_maps import FAMILIES, Map, MapFamily

TRAIN_SEED_LIMIT = 2**31
"""Training map seeds lie in [0, 2^31); held-out and validation map seeds in [2^31, 2^32)."""
RESERVED_HELDOUT_MAPS = 400
"""Evaluations play only the first 400 held-out maps of a family and seed (the non-stationary condition plays
2 x n_maps, the stitching family draws from them); training, offline data and pretraining exclude all of them."""
RESERVED_VALIDATION_MAPS = 200
"""Selection plays only the first 200 validation maps of a family and seed; training excludes all of them."""
SPLITS = ("validation", "heldout")
"""The evaluation splits: ``"validation"`` to choose on, ``"heldout"`` to report."""


def _family(family: MapFamily | str) -> MapFamily:
    return FAMILIES[family] if isinstance(family, str) else family


def heldout_map_seeds(n: int, seed: int = 0) -> list[int]:
    """Seeds of ``n`` held-out maps: in [2^31, 2^32), so they never overlap a training seed."""
    return [int(s) for s in np.random.default_rng([seed, 1]).integers(TRAIN_SEED_LIMIT, 2 * TRAIN_SEED_LIMIT, n)]


def heldout_maps(family: MapFamily | str, n: int, seed: int = 0) -> list[Map]:
    """``n`` distinct held-out maps of a family, from ``heldout_map_seeds``."""
    family, maps = _family(family), []
    for map_seed in heldout_map_seeds(n, seed):
        maps.append(family.generate(map_seed, exclude=frozenset(maps)))
    return maps


def validation_maps(family: MapFamily | str, n: int, seed: int = 0) -> list[Map]:
    """``n`` distinct validation maps of a family: seeds in [2^31, 2^32) from a stream of their own, each map
    drawn unlike every reserved held-out map of ``seed`` (so the splits are disjoint by value); at most
    ``RESERVED_VALIDATION_MAPS``."""
    family = _family(family)
    return _validation_maps(family, n, seed, frozenset(heldout_maps(family, RESERVED_HELDOUT_MAPS, seed)))


def _validation_maps(family: MapFamily, n: int, seed: int, held_out: frozenset[Map]) -> list[Map]:
    """``validation_maps`` given the family's reserved held-out maps of ``seed``."""
    if n > RESERVED_VALIDATION_MAPS:
        raise ValueError(f"the validation split holds {RESERVED_VALIDATION_MAPS} maps of a family, got n={n}: "
                         "use fewer maps")
    maps: list[Map] = []
    for map_seed in np.random.default_rng([seed, 2]).integers(TRAIN_SEED_LIMIT, 2 * TRAIN_SEED_LIMIT, n):
        maps.append(family.generate(int(map_seed), exclude=held_out | frozenset(maps)))
    return maps


def split_maps(split: str, family: MapFamily | str, n: int, seed: int = 0) -> list[Map]:
    """``n`` maps of ``split`` (``"validation"`` or ``"heldout"``) of a family."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return (validation_maps if split == "validation" else heldout_maps)(family, n, seed)


def reserved_maps(families: Iterable[MapFamily | str], seed: int = 0) -> frozenset[Map]:
    """Every map an evaluation with ``seed`` may play in ``families``: the first ``RESERVED_HELDOUT_MAPS``
    held-out and ``RESERVED_VALIDATION_MAPS`` validation maps of each. Training maps are drawn with
    ``exclude=reserved_maps(...)``."""
    reserved: set[Map] = set()
    for family in map(_family, families):
        held_out = frozenset(heldout_maps(family, RESERVED_HELDOUT_MAPS, seed))
        reserved |= held_out | set(_validation_maps(family, RESERVED_VALIDATION_MAPS, seed, held_out))
    return frozenset(reserved)
