"""Training and held-out maps of a family: disjoint ranges of map seeds, and every map an evaluation may play
excluded from training by value (two seeds can draw the same small map)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from trl_icrl.envs.frozen_lake_maps import FAMILIES, Map, MapFamily

TRAIN_SEED_LIMIT = 2**31
"""Training map seeds lie in [0, 2^31); held-out (evaluation) map seeds in [2^31, 2^32)."""
RESERVED_HELDOUT_MAPS = 400
"""Evaluations play only the first 400 held-out maps of a family and seed (the non-stationary condition plays
2 x n_maps, the stitching family draws from them); training, offline data and pretraining exclude all of them."""


def heldout_map_seeds(n: int, seed: int = 0) -> list[int]:
    """Seeds of ``n`` held-out maps: in [2^31, 2^32), so they never overlap a training seed."""
    return [int(s) for s in np.random.default_rng([seed, 1]).integers(TRAIN_SEED_LIMIT, 2 * TRAIN_SEED_LIMIT, n)]


def heldout_maps(family: MapFamily | str, n: int, seed: int = 0) -> list[Map]:
    """``n`` distinct held-out maps of a family, from ``heldout_map_seeds``."""
    family = FAMILIES[family] if isinstance(family, str) else family
    maps: list[Map] = []
    for map_seed in heldout_map_seeds(n, seed):
        maps.append(family.generate(map_seed, exclude=frozenset(maps)))
    return maps


def reserved_maps(families: Iterable[MapFamily | str], seed: int = 0) -> frozenset[Map]:
    """Every map an evaluation with ``seed`` may play in ``families``: the first ``RESERVED_HELDOUT_MAPS``
    held-out maps of each. Training maps are drawn with ``exclude=reserved_maps(...)``."""
    return frozenset(m for family in families for m in heldout_maps(family, RESERVED_HELDOUT_MAPS, seed))
