"""What every env of generated instances shares (Frozen Lake maps, cliff maps, MDPs): ``n`` distinct instances drawn
by seed, and the arguments its constructor checks."""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Mapping, Sequence
from typing import Any, TypeVar

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


def env_family_and_seed(desc: Any, family: Any, families: Mapping[str, Any], map_seed: int | None, seed: int | None,
                        max_episode_steps: int, kind: str = "map", render_mode: str | None = None,
                        render_modes: Sequence[str] = ()) -> tuple[Any, int | None]:
    """Checks a generated-instance env's constructor arguments and returns its family (looked up by name) and the
    instance seed (``seed`` is an alias of ``map_seed``; ``desc`` excludes both)."""
    if seed is not None:
        if map_seed is not None and map_seed != seed:
            raise ValueError(f"seed is an alias of map_seed, got both: seed={seed}, map_seed={map_seed}")
        map_seed = seed
    if desc is not None and map_seed is not None:
        raise ValueError("give either desc or a map seed, not both")
    if isinstance(family, str) and family not in families:
        raise ValueError(f"unknown {kind} family {family!r}, expected one of {sorted(families)}")
    if max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be at least 1, got {max_episode_steps}")
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be one of {list(render_modes)}, got {render_mode!r}")
    return (families[family] if isinstance(family, str) else family), map_seed
