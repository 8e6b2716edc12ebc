"""Frozen Lake maps: validation, oracle distances and the paper's random map generator.

A map is a tuple of equally long row strings over the tiles ``S`` (start), ``F`` (frozen), ``H`` (hole)
and ``G`` (goal), as in gymnasium's ``FrozenLake-v1``. Tile ``i`` is at row ``i // ncol``, column
``i % ncol``. Actions are gymnasium's: 0 left, 1 down, 2 right, 3 up; a move into a wall stays in place,
and holes and goals end the episode. Distances ("hops") are numbers of moves under the non-slippery
dynamics.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass

import numpy as np

from trl_icrl.envs.instances import generate_distinct

MAX_MAP_SIZE = 10
TILES = "SFHG"

Map = tuple[str, ...]

# Tile letters indexed by the number of sampling thresholds a uniform draw reaches (see generate_map).
_SAMPLED_LETTERS = np.frombuffer(b"SGHF", dtype=np.uint8)
# Translation tables that turn tiles into the bit strings of starts, goals and passable (S, F) tiles.
_START_BITS, _GOAL_BITS, _PASSABLE_BITS = (str.maketrans("SFHG", bits) for bits in ("1000", "0001", "1100"))
# Tries that generate_map draws per vectorised batch (fixed, so that maps do not depend on max_tries).
_BATCH = 64


@functools.cache
def grid_moves(nrow: int, ncol: int) -> tuple[tuple[int, int, int, int], ...]:
    """For each tile, the tile that each action (left, down, right, up) leads to."""
    return tuple(
        (
            r * ncol + max(c - 1, 0),
            min(r + 1, nrow - 1) * ncol + c,
            r * ncol + min(c + 1, ncol - 1),
            max(r - 1, 0) * ncol + c,
        )
        for r in range(nrow)
        for c in range(ncol)
    )


def tile_goal_distances(tiles: str, nrow: int, ncol: int) -> list[int]:
    """Moves from each tile (flattened map) to the nearest goal; -1 for holes and tiles that reach none."""
    moves = grid_moves(nrow, ncol)
    dist = [-1] * len(tiles)
    frontier = [i for i, letter in enumerate(tiles) if letter == "G"]
    for i in frontier:
        dist[i] = 0
    hops = 0
    while frontier:
        hops += 1
        reached = []
        for u in frontier:
            for v in moves[u]:
                if dist[v] < 0 and tiles[v] != "H":
                    dist[v] = hops
                    reached.append(v)
        frontier = reached
    return dist


def grid_rows(desc: str | Sequence[str], tiles: str, rows_range: tuple[int, int], cols_range: tuple[int, int],
              size_rule: str) -> Map:
    """Checks the shape and letters of a grid map (rows of ``tiles``, ``rows_range`` x ``cols_range`` in size, the
    sizes ``size_rule`` states) and returns it as a tuple of rows."""
    rows = tuple(desc.split("/")) if isinstance(desc, str) else tuple(desc)
    if not all(isinstance(row, str) for row in rows):
        raise TypeError(f"map rows must be strings, got {rows!r}")
    lengths = [len(row) for row in rows]
    if not any(lengths):
        raise ValueError("empty map")
    if len(set(lengths)) > 1:
        raise ValueError(f"ragged map: the rows have lengths {lengths}")
    if not (rows_range[0] <= len(rows) <= rows_range[1] and cols_range[0] <= lengths[0] <= cols_range[1]):
        raise ValueError(f"map is {lengths[0]} wide and {len(rows)} high; {size_rule}")
    for r, row in enumerate(rows):
        for c, letter in enumerate(row):
            if letter not in tiles:
                raise ValueError(f"unknown tile {letter!r} at row {r}, column {c} (tiles are {', '.join(tiles)})")
    return rows


def _rows(desc: str | Sequence[str] | np.ndarray) -> Map:
    """Checks the shape and letters of a Frozen Lake map and returns it as a tuple of rows."""
    if isinstance(desc, np.ndarray):  # bytes (nrow, ncol), as gymnasium's FrozenLakeEnv.desc
        desc = [b"".join(row).decode() for row in np.asarray(desc, dtype="c").tolist()]
    return grid_rows(desc, TILES, (1, MAX_MAP_SIZE), (1, MAX_MAP_SIZE), f"each side must be in 1..{MAX_MAP_SIZE}")


def validate_map(desc: str | Sequence[str] | np.ndarray) -> Map:
    """Returns the map as a tuple of rows, or raises ``ValueError`` naming what is wrong with it.

    ``desc`` is a sequence of row strings, one string with ``/`` between rows ("SFF/FHF/FFG") or a bytes
    array ``(nrow, ncol)`` as gymnasium's ``FrozenLakeEnv.desc``. A valid
    map is rectangular, 1..MAX_MAP_SIZE per side, uses only S, F, H, G, and has at least one start and
    one goal, with some goal reachable from every start.
    """
    rows = _rows(desc)
    tiles = "".join(rows)
    if "S" not in tiles:
        raise ValueError("map has no start tile 'S'")
    if "G" not in tiles:
        raise ValueError("map has no goal tile 'G'")
    ncol = len(rows[0])
    dist = tile_goal_distances(tiles, len(rows), ncol)
    for i, letter in enumerate(tiles):
        if letter == "S" and dist[i] < 0:
            raise ValueError(
                f"no goal is reachable from the start tile {i} (row {i // ncol}, column {i % ncol})"
            )
    return rows


def goal_distances(desc: str | Sequence[str]) -> np.ndarray:
    """Moves from every tile to the nearest goal, shape ``(nrow * ncol,)``.

    Goals are 0; holes and tiles from which no goal can be reached are -1.
    """
    rows = _rows(desc)
    return np.array(tile_goal_distances("".join(rows), len(rows), len(rows[0])), dtype=np.int64)


def optimal_actions(desc: str | Sequence[str]) -> list[tuple[int, ...]]:
    """For every tile, the actions that bring it one move closer to a goal (empty for goals, holes and
    tiles that reach no goal)."""
    rows = _rows(desc)
    nrow, ncol = len(rows), len(rows[0])
    dist = tile_goal_distances("".join(rows), nrow, ncol)
    return [
        tuple(a for a, target in enumerate(targets) if dist[tile] > 0 and dist[target] == dist[tile] - 1)
        for tile, targets in enumerate(grid_moves(nrow, ncol))
    ]


def _check_generator_params(
    width_range: tuple[int, int],
    height_range: tuple[int, int],
    p_start: float,
    p_goal: float,
    p_hole: float,
    min_hops: int,
) -> None:
    """Raises ``ValueError`` for generator parameters that are invalid or can never give a map."""
    for name, (low, high) in (("width_range", width_range), ("height_range", height_range)):
        if not 1 <= low <= high <= MAX_MAP_SIZE:
            raise ValueError(f"{name} must satisfy 1 <= min <= max <= {MAX_MAP_SIZE}, got {(low, high)}")
    if not 0 < p_start < 1:
        raise ValueError(f"p_start must be in (0, 1), got {p_start}")
    if not 0 < p_goal <= 1:
        raise ValueError(f"p_goal must be in (0, 1], got {p_goal}")
    if not 0 <= p_hole <= 1:
        raise ValueError(f"p_hole must be in [0, 1], got {p_hole}")
    # A path of k moves visits k + 1 distinct tiles (detours around holes can exceed width + height - 2).
    max_hops = width_range[1] * height_range[1] - 1
    if not 0 <= min_hops <= max_hops:
        raise ValueError(f"min_hops must be in 0..{max_hops} for maps of at most that size, got {min_hops}")


@functools.cache
def _inside_mask(nrow: int, ncol: int, canvas_rows: int, width: int) -> int:
    """Bitboard of the tiles of an ``nrow`` x ``ncol`` map in the top-left corner of a canvas."""
    bits = ("1" if r < nrow and c < ncol else "0" for r in range(canvas_rows) for c in range(width))
    return int("".join(bits), 2)


def _far_enough(canvas: str, inside: int, width: int, min_hops: int) -> bool:
    """Whether the map has a start, every start reaches a goal and no goal is within ``min_hops - 1``
    moves of a start.

    A breadth-first search on bitboards: bit ``i`` of a mask is tile ``i`` of the canvas, a flattened
    grid with rows of ``width`` tiles whose bits ``inside`` are the map. Every row of the canvas ends
    outside the map, so shifting a mask by 1 or by ``width`` moves each tile one step sideways or
    vertically without wrapping around.
    """
    start = int(canvas.translate(_START_BITS), 2) & inside
    if not start:
        return False
    passable = int(canvas.translate(_PASSABLE_BITS), 2) & inside
    reached = frontier = int(canvas.translate(_GOAL_BITS), 2) & inside
    hops = 0
    while start & ~reached:
        if not frontier:
            return False
        hops += 1
        frontier = ((frontier << 1) | (frontier >> 1) | (frontier << width) | (frontier >> width)) & passable
        frontier &= ~reached
        if hops < min_hops and frontier & start:
            return False
        reached |= frontier
    return True


def generate_map(
    seed: int,
    width_range: tuple[int, int] = (3, 5),
    height_range: tuple[int, int] = (3, 5),
    p_start: float = 0.1,
    p_goal: float = 0.1,
    p_hole: float = 0.2,
    min_hops: int = 4,
    exclude: Container[Map] = frozenset(),
    max_tries: int = 10_000,
) -> Map:
    """Draws a random map, fully determined by ``seed`` (the paper's generator).

    Each try draws the width and height uniformly from the inclusive ranges, then makes each tile a start
    with probability ``p_start``, else a goal with ``p_goal``, else a hole with ``p_hole``, else frozen.
    The first try is kept in which every start reaches a goal, the nearest goal from every start is at
    least ``min_hops`` moves away, and the map is not in ``exclude``. Raises ``ValueError`` for invalid
    parameters and ``RuntimeError`` if no try out of ``max_tries`` is kept.
    """
    _check_generator_params(width_range, height_range, p_start, p_goal, p_hole, min_hops)
    if max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    rng = np.random.default_rng(seed)
    # A uniform draw below thresholds[0] gives S, below thresholds[1] G, below thresholds[2] H, else F.
    p_s, p_g = p_start, (1 - p_start) * p_goal
    thresholds = np.array([p_s, p_s + p_g, p_s + p_g + (1 - p_s - p_g) * p_hole])
    # Tries are drawn _BATCH at a time, each on a canvas of the largest size plus a spare column.
    canvas_rows, width = height_range[1], width_range[1] + 1
    canvas_size = canvas_rows * width
    low, high = (height_range[0], width_range[0]), (height_range[1] + 1, width_range[1] + 1)
    for first_try in range(0, max_tries, _BATCH):
        sizes = rng.integers(low, high, size=(_BATCH, 2)).tolist()
        draws = rng.random((_BATCH, canvas_size))
        canvases = _SAMPLED_LETTERS[np.searchsorted(thresholds, draws, side="right")].tobytes().decode()
        for k, (nrow, ncol) in enumerate(sizes[: max_tries - first_try]):
            canvas = canvases[k * canvas_size : (k + 1) * canvas_size]
            if _far_enough(canvas, _inside_mask(nrow, ncol, canvas_rows, width), width, min_hops):
                rows = tuple(canvas[r * width : r * width + ncol] for r in range(nrow))
                if rows not in exclude:
                    return rows
    raise RuntimeError(
        f"no valid map in {max_tries} tries with width_range={width_range}, height_range={height_range}, "
        f"p_start={p_start}, p_goal={p_goal}, p_hole={p_hole}, min_hops={min_hops}"
    )


@dataclass(frozen=True)
class MapFamily:
    """A named distribution over maps: the parameters of :func:`generate_map`."""

    name: str
    width_range: tuple[int, int]
    height_range: tuple[int, int]
    p_start: float = 0.1
    p_goal: float = 0.1
    p_hole: float = 0.2
    min_hops: int = 4

    def __post_init__(self) -> None:
        _check_generator_params(
            self.width_range, self.height_range, self.p_start, self.p_goal, self.p_hole, self.min_hops
        )

    def generate(self, seed: int, exclude: Container[Map] = frozenset()) -> Map:
        """One map of this family, determined by ``seed``, not in ``exclude``."""
        return generate_map(
            seed,
            self.width_range,
            self.height_range,
            self.p_start,
            self.p_goal,
            self.p_hole,
            self.min_hops,
            exclude=exclude,
        )

    def generate_many(self, n: int, seed: int, exclude: Collection[Map] = frozenset()) -> list[Map]:
        """``n`` distinct maps of this family, none in ``exclude``, determined by ``seed``.

        Map ``i`` is ``generate(seeds[i], exclude=<exclude and maps 0..i-1>)`` with
        ``seeds = np.random.SeedSequence(seed).generate_state(n)``, so the first ``k`` maps do not
        depend on ``n``.
        """
        return generate_distinct(lambda s, ex: self.generate(s, exclude=ex), n, seed, exclude)


IN_DISTRIBUTION = MapFamily("id", width_range=(3, 5), height_range=(3, 5))
OUT_OF_DISTRIBUTION = MapFamily("ood", width_range=(6, 7), height_range=(6, 7))
UP_TO_8 = MapFamily("up_to_8", width_range=(3, 8), height_range=(3, 8))
"""Every size up to gymnasium's 8x8 (a general model's Frozen Lake); gymnasium's own maps are held out."""
FAMILIES = {family.name: family for family in (IN_DISTRIBUTION, OUT_OF_DISTRIBUTION, UP_TO_8)}
CANONICAL_MAPS: frozenset[Map] = frozenset({
    ("SFFF", "FHFH", "FFFH", "HFFG"),
    ("SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"),
})
"""gymnasium's ``FrozenLake-v1`` maps (``map_name="4x4"`` and ``"8x8"``), held out of every family's training."""


@dataclass(frozen=True)
class NonStationarySchedule:
    """A non-stationary task: map ``first`` for ``switch_after`` episodes, then map ``second``, in one trial."""

    first: Map
    second: Map
    switch_after: int = 30

    def __post_init__(self) -> None:
        if self.switch_after < 0:
            raise ValueError(f"switch_after must be non-negative, got {self.switch_after}")
        object.__setattr__(self, "first", validate_map(self.first))
        object.__setattr__(self, "second", validate_map(self.second))

    def map_for_episode(self, episode: int) -> Map:
        """The map of episode ``episode`` (counted from 0)."""
        if episode < 0:
            raise ValueError(f"episode must be non-negative, got {episode}")
        return self.first if episode < self.switch_after else self.second

    def reset_options(self, episode: int) -> dict[str, Map] | None:
        """``env.reset`` options at the start of episode ``episode`` of an env made on ``first``: the switch
        to ``second`` at ``switch_after``, else none."""
        return {"desc": self.second} if episode == self.switch_after else None
