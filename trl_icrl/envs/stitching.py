"""Stitching tasks: a map and two demonstrations whose pieces, joined, solve it, though neither does.

The paper's probe is ``STITCHING_MAP`` with ``PAPER_STITCHING_DEMOS``; :func:`stitching_task` builds such a
task on any map that allows one, and :func:`stitching_family` a family of them from held-out maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trl_icrl.envs.frozen_lake_maps import Map, grid_moves, optimal_actions
from trl_icrl.envs.splits import RESERVED_HELDOUT_MAPS, heldout_maps

STITCHING_MAP: Map = ("HHFF", "FFFF", "SFFH", "HFFF", "HFFF", "HFGF")
"""The stitching probe of the paper (4 wide, 6 high): start 8, goal 22, reachable from 8 in 5 moves."""

@dataclass(frozen=True)
class Demonstration:
    """A hand-written episode: from tile ``start`` the ``actions`` (T,), without slipping; it must end on
    its last step in a goal (reward 1) or a hole (reward 0)."""

    start: int
    actions: tuple[int, ...]

    def tiles(self, desc: Map) -> list[int]:
        """Tiles visited on ``desc``, (T + 1,)."""
        moves = grid_moves(len(desc), len(desc[0]))
        tiles = [self.start]
        for action in self.actions:
            tiles.append(moves[tiles[-1]][action])
        return tiles

    def transitions(self, desc: Map) -> list[tuple[int, int, float, int, bool, bool]]:
        """``(obs, action, reward, next_obs, terminated, truncated)`` per step, as an agent observes them."""
        letters, tiles = "".join(desc), self.tiles(desc)
        if not self.actions or letters[tiles[-1]] not in "GH" or any(letters[t] in "GH" for t in tiles[:-1]):
            raise ValueError(f"demonstration {self} on {desc} must end, and only end, in a goal or a hole")
        return [(tiles[t], a, float(letters[tiles[t + 1]] == "G"), tiles[t + 1], t == len(self.actions) - 1,
                 False) for t, a in enumerate(self.actions)]


PAPER_STITCHING_DEMOS = (Demonstration(2, (1,) * 5), Demonstration(8, (2,) * 3))
"""On ``STITCHING_MAP``: from tile 2 down x5 to the goal 22 (reward 1); from the start 8 right x3 into the
hole 11."""

StitchingTask = tuple[Map, tuple[Demonstration, Demonstration]]
"""A map with its start forced (one ``S``) and the two demonstrations: reaching the goal, dying."""


def _oracle_walk(desc: str, moves: Sequence[Sequence[int]], actions: Sequence[Sequence[int]], tile: int,
                 stop: Callable[[int], bool]) -> tuple[list[int], list[int]]:
    """Tiles and actions of the lowest-numbered oracle path from ``tile`` until ``stop(tile)`` or a goal."""
    tiles, taken = [tile], []
    while not stop(tiles[-1]) and desc[tiles[-1]] != "G":
        taken.append(actions[tiles[-1]][0])
        tiles.append(moves[tiles[-1]][taken[-1]])
    return tiles, taken


def stitching_task(desc: Map) -> StitchingTask | None:
    """A stitching task built on a map, or ``None`` when the map allows none.

    Construction: keep one start ``s`` (other ``S`` become ``F``, so the start is forced) and take its oracle
    path ``s = p_0 .. p_k`` (goal). Pick the first junction ``p_j``, ``0 < j < k``, next to a hole ``h``, and
    a tile ``t`` off the path whose oracle path first meets ``s``'s path at ``p_j``. Demonstration 1 goes
    from ``t`` to the goal (through ``p_j``, then along ``p_j .. p_k``); demonstration 2 goes from ``s``
    along ``p_0 .. p_j`` and steps into ``h``. The path from ``s`` is never shown whole: solving the task
    means joining the second demonstration's prefix to the first one's suffix, as on the paper's map (which
    this rule does not rebuild: its lowest-numbered oracle path turns down at tile 9, not at 10).
    """
    nrow, ncol = len(desc), len(desc[0])
    moves = grid_moves(nrow, ncol)
    letters = "".join(desc)
    for start in [i for i, letter in enumerate(letters) if letter == "S"]:
        flat = "".join("F" if letter == "S" and i != start else letter for i, letter in enumerate(letters))
        task_map = tuple(flat[r * ncol:(r + 1) * ncol] for r in range(nrow))
        actions = optimal_actions(task_map)
        path, path_actions = _oracle_walk(flat, moves, actions, start, lambda _: False)
        on_path = set(path)
        for j in range(1, len(path) - 1):
            holes = [a for a in range(4) if flat[moves[path[j]][a]] == "H"]
            if not holes:
                continue
            for tile in range(len(flat)):
                if tile in on_path or not actions[tile]:
                    continue
                walk, walk_actions = _oracle_walk(flat, moves, actions, tile, on_path.__contains__)
                if walk[-1] == path[j]:
                    reach = Demonstration(tile, tuple(walk_actions + path_actions[j:]))
                    die = Demonstration(start, tuple(path_actions[:j] + [holes[0]]))
                    return task_map, (reach, die)
    return None


def _reserved_tasks(seed: int) -> list[StitchingTask]:
    """The stitching tasks of the first ``RESERVED_HELDOUT_MAPS`` held-out ID maps of ``seed``, in order."""
    return [task for m in heldout_maps("id", RESERVED_HELDOUT_MAPS, seed) if (task := stitching_task(m)) is not None]


def stitching_maps(seed: int = 0) -> frozenset[Map]:
    """Every map the stitching condition may play with ``seed``: the paper's map and the (start-forced) map of every
    task the reserved held-out maps allow; training excludes them."""
    return frozenset([STITCHING_MAP, *(task[0] for task in _reserved_tasks(seed))])


def stitching_family(n_tasks: int, seed: int = 0) -> list[StitchingTask]:
    """``n_tasks`` stitching tasks (:func:`stitching_task`) from the held-out ID maps of ``seed``, in order,
    skipping maps that allow none; only the first ``RESERVED_HELDOUT_MAPS`` (which training never draws)."""
    tasks = _reserved_tasks(seed)
    if len(tasks) < n_tasks:
        raise ValueError(f"only {len(tasks)} of the first {RESERVED_HELDOUT_MAPS} held-out maps allow a stitching "
                         f"task; asked for {n_tasks}")
    return tasks[:n_tasks]
