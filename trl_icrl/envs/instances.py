"""What every family of generated instances shares (Frozen Lake maps, cliff maps, MDPs): ``n`` distinct instances
drawn by seed. Light on purpose (no gymnasium): ``DQNConfig`` imports the families through it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Container
from typing import TypeVar

import numpy as np

Instance = TypeVar("Instance")


def generate_distinct(generate: Callable[[int, Container], Instance], n: int, seed: int,
                      exclude: Collection = frozenset()) -> list[Instance]:
    """``n`` distinct instances, none in ``exclude``: instance ``i`` is ``generate(seeds[i], <exclude and instances
    0..i-1>)`` with ``seeds = np.random.SeedSequence(seed).generate_state(n)``, so the first ``k`` do not depend
    on ``n``."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    instances: list[Instance] = []
    excluded = set(exclude)
    for instance_seed in np.random.SeedSequence(seed).generate_state(n).tolist():
        instances.append(generate(instance_seed, excluded))
        excluded.add(instances[-1])
    return instances
