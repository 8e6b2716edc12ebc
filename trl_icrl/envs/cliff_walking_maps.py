"""Cliff-walking maps: validation, oracle distances and a generator of random cliff layouts.

A cliff map is a tuple of equally long row strings over the tiles ``S`` (start, exactly one), ``F`` (safe),
``C`` (cliff) and ``G`` (goal, exactly one); gymnasium's ``CliffWalking-v1`` is :data:`CANONICAL_CLIFF_MAP`.
Tile ``i`` is at row ``i // ncol``, column ``i % ncol``. Actions are gymnasium's: 0 up, 1 right, 2 down,
3 left; a move into a wall stays in place, a move into a cliff costs -100 and returns the agent to the start,
and reaching the goal ends the episode. Distances ("hops") are numbers of moves along safe tiles.
"""

from __future__ import annotations

import functools
from collections.abc import Container, Sequence
from dataclasses import dataclass

import numpy as np

from trl_icrl.envs.frozen_lake_maps import Map, MapFamily, grid_moves, grid_rows, tile_goal_distances

MIN_CLIFF_ROWS, MAX_CLIFF_ROWS = 2, 10
MIN_CLIFF_COLS, MAX_CLIFF_COLS = 3, 12
CLIFF_TILES = "SFCG"

CANONICAL_CLIFF_MAP: Map = ("FFFFFFFFFFFF", "FFFFFFFFFFFF", "FFFFFFFFFFFF", "SCCCCCCCCCCG")
"""Gymnasium's ``CliffWalking-v1`` (Sutton and Barto's example 6.6): 4 x 12, start and goal at the ends of the
bottom row with the cliff between them."""


@functools.cache
def cliff_moves(nrow: int, ncol: int) -> tuple[tuple[int, ...], ...]:
    """For each tile, the tile that each action (up, right, down, left) leads to: Frozen Lake's moves
    (left, down, right, up) in reverse order."""
    return tuple(targets[::-1] for targets in grid_moves(nrow, ncol))


def _distances(rows: Map) -> list[int]:
    """Moves from each tile (flattened map) to the goal along safe tiles; -1 for cliffs and tiles that reach
    none (cliffs block paths as Frozen Lake's holes do)."""
    return tile_goal_distances("".join(rows).replace("C", "H"), len(rows), len(rows[0]))


def _cliff_rows(desc: str | Sequence[str]) -> Map:
    """Checks the shape and letters of a cliff map and returns it as a tuple of rows."""
    return grid_rows(desc, CLIFF_TILES, (MIN_CLIFF_ROWS, MAX_CLIFF_ROWS), (MIN_CLIFF_COLS, MAX_CLIFF_COLS),
                     f"a cliff map has {MIN_CLIFF_ROWS}..{MAX_CLIFF_ROWS} rows and {MIN_CLIFF_COLS}..{MAX_CLIFF_COLS} "
                     "columns")


def validate_cliff_map(desc: str | Sequence[str]) -> Map:
    """Returns the map as a tuple of rows, or raises ``ValueError`` naming what is wrong with it.

    ``desc`` is a sequence of row strings or one string with ``/`` between rows ("FFF/SCG"). A valid map is
    rectangular with 2..10 rows and 3..12 columns, uses only S, F, C, G, has exactly one start and one goal,
    and the goal is reachable from the start without stepping into a cliff.
    """
    rows = _cliff_rows(desc)
    tiles = "".join(rows)
    for letter, name in (("S", "start"), ("G", "goal")):
        if tiles.count(letter) != 1:
            raise ValueError(f"map has {tiles.count(letter)} {name} tiles {letter!r}; a cliff map has exactly one")
    start, ncol = tiles.index("S"), len(rows[0])
    if _distances(rows)[start] < 0:
        raise ValueError(
            f"the goal is not reachable from the start tile {start} (row {start // ncol}, column {start % ncol}) "
            f"without stepping into a cliff"
        )
    return rows


def cliff_goal_distances(desc: str | Sequence[str]) -> np.ndarray:
    """Moves from every tile to the goal along safe tiles, shape ``(nrow * ncol,)``.

    The goal is 0; cliffs and tiles from which the goal cannot be reached safely are -1.
    """
    return np.array(_distances(_cliff_rows(desc)), dtype=np.int64)


def cliff_optimal_actions(desc: str | Sequence[str]) -> list[tuple[int, ...]]:
    """For every tile, the actions (0 up, 1 right, 2 down, 3 left) that bring it one safe move closer to the
    goal (empty for the goal, cliffs and tiles that cannot reach the goal)."""
    rows = _cliff_rows(desc)
    dist = _distances(rows)
    return [
        tuple(a for a, target in enumerate(targets) if dist[tile] > 0 and dist[target] == dist[tile] - 1)
        for tile, targets in enumerate(cliff_moves(len(rows), len(rows[0])))
    ]


@functools.cache
def _edges(nrow: int, ncol: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """The map's four edges (top and bottom row, left and right column), each as its ``(row, col)`` in order."""
    return (
        tuple((0, c) for c in range(ncol)),
        tuple((nrow - 1, c) for c in range(ncol)),
        tuple((r, 0) for r in range(nrow)),
        tuple((r, ncol - 1) for r in range(nrow)),
    )


@functools.cache
def _border(nrow: int, ncol: int) -> tuple[tuple[int, int], ...]:
    """Every border tile ``(row, col)`` once, in row-major order."""
    return tuple((r, c) for r in range(nrow) for c in range(ncol) if r in (0, nrow - 1) or c in (0, ncol - 1))


@dataclass(frozen=True)
class CliffFamily:
    """A named distribution over cliff maps.

    Each try of :meth:`generate` draws the height and width uniformly from the inclusive ranges and a number of
    cliff segments from ``segments``. With probability ``p_edge`` the start and goal lie on one edge (row or
    column) with at least one tile between them, and the first segment fills that gap, as in the canonical
    map; otherwise they are two distinct border tiles. Every other segment is a run of 1..side-1 cliffs along a
    random row or column. A try is kept if it has a cliff, the goal is at least ``min_hops`` safe moves from the
    start, and the map is not excluded.
    """

    name: str
    height_range: tuple[int, int]
    width_range: tuple[int, int]
    segments: tuple[int, int] = (1, 3)
    p_edge: float = 0.5
    min_hops: int = 3

    def __post_init__(self) -> None:
        for name, (low, high), (lowest, highest) in (
            ("height_range", self.height_range, (MIN_CLIFF_ROWS, MAX_CLIFF_ROWS)),
            ("width_range", self.width_range, (MIN_CLIFF_COLS, MAX_CLIFF_COLS)),
        ):
            if not lowest <= low <= high <= highest:
                raise ValueError(f"{name} must satisfy {lowest} <= min <= max <= {highest}, got {(low, high)}")
        if not 1 <= self.segments[0] <= self.segments[1]:
            raise ValueError(f"segments must satisfy 1 <= min <= max, got {self.segments}")
        if not 0 <= self.p_edge <= 1:
            raise ValueError(f"p_edge must be in [0, 1], got {self.p_edge}")
        max_hops = self.height_range[1] * self.width_range[1] - 1
        if not 1 <= self.min_hops <= max_hops:
            raise ValueError(f"min_hops must be in 1..{max_hops} for maps of at most that size, got {self.min_hops}")

    def generate(self, seed: int, exclude: Container[Map] = frozenset(), max_tries: int = 10_000) -> Map:
        """One map of this family, determined by ``seed``, not in ``exclude``; ``RuntimeError`` if no try out of
        ``max_tries`` is kept."""
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries}")
        rng = np.random.default_rng(seed)
        for _ in range(max_tries):
            rows = self._draw(rng)
            if rows is not None and rows not in exclude:
                return rows
        raise RuntimeError(f"no valid map in {max_tries} tries for {self}")

    generate_many = MapFamily.generate_many  # n distinct maps, seeded as a MapFamily seeds them

    def _draw(self, rng: np.random.Generator) -> Map | None:
        """One try: a random layout, or ``None`` if it is not kept (no cliff, goal unsafe or too close)."""
        nrow = int(rng.integers(self.height_range[0], self.height_range[1] + 1))
        ncol = int(rng.integers(self.width_range[0], self.width_range[1] + 1))
        n_segments = int(rng.integers(self.segments[0], self.segments[1] + 1))
        grid = [["F"] * ncol for _ in range(nrow)]
        if rng.random() < self.p_edge:
            edges = [edge for edge in _edges(nrow, ncol) if len(edge) >= 3]
            edge = edges[int(rng.integers(len(edges)))]
            i = int(rng.integers(len(edge) - 2))
            j = int(rng.integers(i + 2, len(edge)))
            for r, c in edge[i + 1 : j]:
                grid[r][c] = "C"
            start, goal = (edge[i], edge[j]) if rng.random() < 0.5 else (edge[j], edge[i])
            n_segments -= 1
        else:
            border = _border(nrow, ncol)
            start, goal = (border[k] for k in rng.choice(len(border), size=2, replace=False).tolist())
        for _ in range(n_segments):
            if rng.random() < 0.5:  # along a row
                length = int(rng.integers(1, ncol))
                r, c = int(rng.integers(nrow)), int(rng.integers(ncol - length + 1))
                tiles = [(r, c + k) for k in range(length)]
            else:
                length = int(rng.integers(1, nrow))
                r, c = int(rng.integers(nrow - length + 1)), int(rng.integers(ncol))
                tiles = [(r + k, c) for k in range(length)]
            for r, c in tiles:
                grid[r][c] = "C"
        grid[start[0]][start[1]], grid[goal[0]][goal[1]] = "S", "G"
        rows = tuple("".join(row) for row in grid)
        if "C" not in "".join(rows):
            return None
        hops = _distances(rows)[start[0] * ncol + start[1]]
        return rows if hops >= self.min_hops else None


CLIFF_FAMILY = CliffFamily("cliff", height_range=(3, 5), width_range=(3, 8))
"""The training (in-distribution) family: 3-5 rows, 3-8 columns, so never gymnasium's 4 x 12 canonical map."""
CLIFF_FAMILIES = {family.name: family for family in (CLIFF_FAMILY,)}
