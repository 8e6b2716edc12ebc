"""Random tabular MDPs with sparse deterministic transitions and sparse terminal rewards, and their env.

An MDP instance is a tuple of strings, one per state ``0..n-1`` (``"/".join(instance)`` is its one-string form),
each one of:

- ``"G"``: a goal. Entering it gives reward ``GOAL_REWARD`` (1.0) and ends the episode.
- ``"H"``: a trap. Entering it gives reward ``TRAP_REWARD`` (-1.0) and ends the episode.
- ``N_ACTIONS`` (4) next-state ids joined by commas, ``"3,0,5,1"``: a non-terminal state whose action ``a`` leads
  to the ``a``-th state listed, with reward 0 unless that state is a goal or a trap. A leading ``S``
  (``"S3,0,5,1"``) makes it a start state; episodes start at one drawn uniformly from the starts.

For example ``("S1,2,0,0", "3,1,0,2", "H", "G")``, or ``"S1,2,0,0/3,1,0,2/H/G"``: from the start 0, action 1
falls into the trap 2 and the shortest path to the goal is action 0, then action 0 (2 moves). Ids are written
without leading zeros, so every MDP has exactly one encoding. Distances ("hops") count moves.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from trl_icrl.envs.generated_map_env import GeneratedMapEnv
from trl_icrl.envs.instances import generate_distinct

MDP_ENV_ID = "trl_icrl/RandomMDP-v0"
N_ACTIONS = 4
MAX_STATES = 64
"""The most states an MDP may have: observation ids stay below it, so one codec covers every MDP."""
GOAL_REWARD = 1.0
TRAP_REWARD = -1.0

MDP = tuple[str, ...]

_ID = "(?:0|[1-9][0-9]*)"
_STATE = re.compile(rf"(S?)({_ID}(?:,{_ID}){{{N_ACTIONS - 1}}})|([GH])")


def _parse(desc: str | Sequence[str]) -> tuple[MDP, list[tuple[int, ...] | None], str]:
    """Checks the syntax of an MDP and returns it as a tuple of state strings, each state's next state per action
    (``None`` for goals and traps) and the kinds of the states as letters: S (start), N (other non-terminal), G, H."""
    states = tuple(desc.split("/")) if isinstance(desc, str) else tuple(desc)
    if not all(isinstance(s, str) for s in states):
        raise TypeError(f"MDP states must be strings, got {states!r}")
    if not states:
        raise ValueError("empty MDP: it has no states")
    n = len(states)
    next_states: list[tuple[int, ...] | None] = []
    kinds = []
    for i, text in enumerate(states):
        match = _STATE.fullmatch(text)
        if match is None:
            raise ValueError(
                f"state {i} is {text!r}: expected 'G' (goal), 'H' (trap) or {N_ACTIONS} next-state ids joined by "
                f"commas without leading zeros, optionally after 'S' (start), such as 'S3,0,5,1'"
            )
        start, targets, terminal = match.groups()
        if terminal:
            next_states.append(None)
            kinds.append(terminal)
            continue
        row = tuple(int(t) for t in targets.split(","))
        for a, j in enumerate(row):
            if j >= n:
                raise ValueError(f"state {i}, action {a} leads to state {j}, but the MDP has states 0..{n - 1}")
        next_states.append(row)
        kinds.append("S" if start else "N")
    return states, next_states, "".join(kinds)


def _goal_distances(next_states: list[tuple[int, ...] | None], kinds: str) -> list[int]:
    """Moves from each state to the nearest goal: 0 for goals, -1 for traps and states that reach none."""
    predecessors: list[list[int]] = [[] for _ in kinds]
    for i, row in enumerate(next_states):
        for j in set(row or ()):
            predecessors[j].append(i)
    dist = [0 if kind == "G" else -1 for kind in kinds]
    frontier = [i for i, kind in enumerate(kinds) if kind == "G"]
    hops = 0
    while frontier:
        hops += 1
        reached = []
        for v in frontier:
            for u in predecessors[v]:
                if dist[u] < 0:
                    dist[u] = hops
                    reached.append(u)
        frontier = reached
    return dist


def _dead_end(next_states: list[tuple[int, ...] | None], kinds: str, dist: list[int]) -> int | None:
    """The first non-terminal state reachable from a start (the starts included) that reaches no goal, if any."""
    seen = {i for i, kind in enumerate(kinds) if kind == "S"}
    frontier = sorted(seen)
    while frontier:
        reached = []
        for u in frontier:
            for v in next_states[u] or ():
                if v not in seen:
                    seen.add(v)
                    reached.append(v)
        frontier = reached
    return min((i for i in seen if dist[i] < 0 and next_states[i] is not None), default=None)


def validate_mdp(desc: str | Sequence[str]) -> MDP:
    """Returns the MDP as a tuple of state strings, or raises ``ValueError`` naming what is wrong with it.

    ``desc`` is a sequence of state strings or one string with ``/`` between states (see the module docstring).
    A valid MDP has at least one start and one goal, and a goal is reachable from every non-terminal state that
    can be reached from a start (so an oracle has an action wherever an agent can be).
    """
    states, next_states, kinds = _parse(desc)
    if len(states) > MAX_STATES:
        raise ValueError(f"MDP has {len(states)} states; at most {MAX_STATES}")
    if "S" not in kinds:
        raise ValueError("MDP has no start state: no state string begins with 'S'")
    if "G" not in kinds:
        raise ValueError("MDP has no goal state 'G'")
    dead_end = _dead_end(next_states, kinds, _goal_distances(next_states, kinds))
    if dead_end is not None:
        where = "the start state" if kinds[dead_end] == "S" else "state"
        raise ValueError(f"no goal is reachable from {where} {dead_end}, which can be reached from a start")
    return states


def mdp_dynamics(desc: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """The tables of an MDP: next states ``(n, N_ACTIONS)`` ints (goals and traps lead to themselves), the reward
    for entering each state ``(n,)`` floats, whether each state ends the episode ``(n,)`` bools, and the starts."""
    _, next_states, kinds = _parse(desc)
    table = np.array([row or (i,) * N_ACTIONS for i, row in enumerate(next_states)], dtype=np.int64)
    rewards = np.array([{"G": GOAL_REWARD, "H": TRAP_REWARD}.get(kind, 0.0) for kind in kinds])
    terminal = np.array([row is None for row in next_states])
    return table, rewards, terminal, tuple(i for i, kind in enumerate(kinds) if kind == "S")


def mdp_goal_distances(desc: str | Sequence[str]) -> np.ndarray:
    """Moves from every state to the nearest goal, shape ``(n,)``: 0 for goals, -1 for traps and for states from
    which no goal can be reached."""
    _, next_states, kinds = _parse(desc)
    return np.array(_goal_distances(next_states, kinds), dtype=np.int64)


def mdp_optimal_actions(desc: str | Sequence[str]) -> list[tuple[int, ...]]:
    """For every state, the actions that bring it one move closer to a goal (empty for goals, traps and states
    that reach no goal)."""
    _, next_states, kinds = _parse(desc)
    dist = _goal_distances(next_states, kinds)
    return [
        tuple(a for a, j in enumerate(row or ()) if dist[i] > 0 and dist[j] == dist[i] - 1)
        for i, row in enumerate(next_states)
    ]


def _check_generator_params(n_states_range: tuple[int, int], p_trap: float, min_hops: int) -> None:
    """Raises ``ValueError`` for generator parameters that are invalid or can never give an MDP."""
    low, high = n_states_range
    if not 2 <= low <= high <= MAX_STATES:
        raise ValueError(f"n_states_range must satisfy 2 <= min <= max <= {MAX_STATES}, got {n_states_range}")
    if not 0 <= p_trap < 1:
        raise ValueError(f"p_trap must be in [0, 1), got {p_trap}")
    # A path of k moves visits k + 1 distinct states.
    if not 1 <= min_hops <= high - 1:
        raise ValueError(f"min_hops must be in 1..{high - 1} for MDPs of at most {high} states, got {min_hops}")


def generate_mdp(
    seed: int,
    n_states_range: tuple[int, int] = (8, 32),
    p_trap: float = 0.1,
    min_hops: int = 3,
    exclude: Container[MDP] = frozenset(),
    max_tries: int = 10_000,
) -> MDP:
    """Draws a random MDP, fully determined by ``seed``.

    Each try draws the number of states ``n`` uniformly from the inclusive range, one start and one goal at
    distinct uniform ids, makes each other state a trap with probability ``p_trap``, and sends each action of
    each non-terminal state to a uniform state (itself included). The first try is kept in which every state
    reachable from the start reaches the goal, the goal is at least ``min_hops`` moves from the start, and the
    MDP is not in ``exclude``. Raises ``ValueError`` for invalid parameters and ``RuntimeError`` if no try out of
    ``max_tries`` is kept.
    """
    _check_generator_params(n_states_range, p_trap, min_hops)
    if max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        n = int(rng.integers(n_states_range[0], n_states_range[1] + 1))
        start, goal = (int(i) for i in rng.choice(n, size=2, replace=False))
        letters = np.where(rng.random(n) < p_trap, "H", "N")
        letters[start], letters[goal] = "S", "G"
        kinds = "".join(letters.tolist())
        table = rng.integers(n, size=(n, N_ACTIONS)).tolist()
        next_states = [None if kind in "GH" else tuple(row) for kind, row in zip(kinds, table)]
        dist = _goal_distances(next_states, kinds)
        if dist[start] < min_hops or _dead_end(next_states, kinds, dist) is not None:
            continue
        mdp = tuple(
            kind if row is None else ("S" if kind == "S" else "") + ",".join(map(str, row))
            for kind, row in zip(kinds, next_states)
        )
        if mdp not in exclude:
            return mdp
    raise RuntimeError(
        f"no valid MDP in {max_tries} tries with n_states_range={n_states_range}, p_trap={p_trap}, "
        f"min_hops={min_hops}"
    )


@dataclass(frozen=True)
class MDPFamily:
    """A named distribution over MDPs: the parameters of :func:`generate_mdp`."""

    name: str
    n_states_range: tuple[int, int] = (8, 32)
    p_trap: float = 0.1
    min_hops: int = 3

    def __post_init__(self) -> None:
        _check_generator_params(self.n_states_range, self.p_trap, self.min_hops)

    def generate(self, seed: int, exclude: Container[MDP] = frozenset()) -> MDP:
        """One MDP of this family, determined by ``seed``, not in ``exclude``."""
        return generate_mdp(seed, self.n_states_range, self.p_trap, self.min_hops, exclude=exclude)

    def generate_many(self, n: int, seed: int, exclude: Collection[MDP] = frozenset()) -> list[MDP]:
        """``n`` distinct MDPs of this family, none in ``exclude``, determined by ``seed`` (``generate_distinct``)."""
        return generate_distinct(lambda s, ex: self.generate(s, exclude=ex), n, seed, exclude)


RANDOM_MDP = MDPFamily("mdp")
MDP_FAMILIES = {RANDOM_MDP.name: RANDOM_MDP}


class RandomMDP(GeneratedMapEnv):
    """A tabular MDP given by its encoding (see the module docstring) or drawn from a family.

    ## Action Space
    ``Discrete(4)``. The words in ``action_words`` only name the actions; they mean nothing spatial here.

    ## Observation Space
    ``Discrete(n_states)``: the id of the current state (the ``index`` observation format). Its size depends on
    the MDP, so it changes when ``reset`` switches to an MDP with another number of states.

    ## Starting State
    A start state drawn uniformly from the MDP's starts.

    ## Rewards
    ``GOAL_REWARD`` (1.0) for entering a goal, ``TRAP_REWARD`` (-1.0) for entering a trap, else 0.0.

    ## Episode End
    - Termination: the agent enters a goal or a trap (a step from there stays, with reward 0, and terminates).
    - Truncation: ``max_episode_steps`` steps since ``reset`` (also on a step that terminates).

    ## Arguments
    - ``desc``: the MDP (a tuple of state strings or one ``/``-joined string); if ``None`` it is generated from
      ``family`` with ``map_seed``.
    - ``family``: an :class:`MDPFamily` or its name (``"mdp"``).
    - ``map_seed``: the seed of the generated MDP; if it and ``desc`` are ``None``, a fresh random seed (kept in
      ``map_seed``).
    - ``seed``: an alias of ``map_seed``, so that ``gym.make(id, seed=0)`` fixes the MDP. The start draw is seeded
      by ``reset(seed=...)`` as usual.
    - ``max_episode_steps``: the step limit.

    ``reset(options={"desc": mdp})`` or ``reset(options={"map_seed": seed})`` switches the MDP.

    ## Attributes
    ``map`` (the MDP as a tuple of state strings), ``n_states``, ``map_seed`` (``None`` for a given MDP),
    ``family``, ``start_states`` and ``start_tile`` (this episode's start state, ``None`` before the first reset).
    """

    metadata = {"render_modes": []}
    env_id = MDP_ENV_ID
    families = MDP_FAMILIES
    kind = "MDP"
    action_words = ("north", "east", "south", "west")
    reward_values = (GOAL_REWARD, TRAP_REWARD)
    max_observations = MAX_STATES

    def __init__(
        self,
        desc: str | Sequence[str] | None = None,
        family: str | MDPFamily = "mdp",
        map_seed: int | None = None,
        max_episode_steps: int = 50,
        seed: int | None = None,
    ) -> None:
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.start_tile: int | None = None
        self._state: int | None = None
        super().__init__(desc, family, map_seed, max_episode_steps, seed)

    def _load_map(self, desc: str | Sequence[str]) -> None:
        """Loads an MDP and its tables."""
        self.map: MDP = validate_mdp(desc)
        self.n_states = len(self.map)
        self.observation_space = spaces.Discrete(self.n_states)
        self._next, self._rewards, self._terminal, self.start_states = mdp_dynamics(self.map)
        self._goal_distances = mdp_goal_distances(self.map)
        self._optimal_actions = mdp_optimal_actions(self.map)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Starts an episode; ``options`` may hold ``"desc"`` or ``"map_seed"`` to switch the MDP first."""
        super().reset(seed=seed, options=options)
        self.start_tile = self._state = int(self.start_states[self.np_random.integers(len(self.start_states))])
        return self._state, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Moves the agent; see the class docstring for rewards and episode end."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in 0..{N_ACTIONS - 1}, got {action!r}")
        if self._terminal[self._state]:
            reward = 0.0
        else:
            self._state = int(self._next[self._state, action])
            reward = float(self._rewards[self._state])
        self._elapsed_steps += 1
        return self._state, reward, bool(self._terminal[self._state]), self._elapsed_steps >= self.max_episode_steps, {}

    def shortest_path_length(self, state: int | None = None) -> int:
        """Fewest moves from ``state`` (default: this episode's start) to a goal; -1 for traps and states that
        reach no goal."""
        if state is None:
            if self.start_tile is None:
                raise RuntimeError("call reset() first or pass state")
            state = self.start_tile
        return int(self._goal_distances[self._check_state(state)])

    def optimal_return(self, gamma: float = 1.0) -> float:
        """Return of an optimal policy averaged over the uniform draw of the start: the mean over start states of
        ``gamma ** (moves - 1)``, or 0 where the goal is farther than ``max_episode_steps`` moves."""
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        hops = [int(self._goal_distances[s]) for s in self.start_states]
        return float(np.mean([GOAL_REWARD * gamma ** (h - 1) if h <= self.max_episode_steps else 0.0 for h in hops]))

    def optimal_action(self, state: int) -> int:
        """The lowest-numbered action that brings ``state`` one move closer to a goal."""
        actions = self._optimal_actions[self._check_state(state)]
        if not actions:
            raise ValueError(f"state {state} is a goal, a trap or cannot reach a goal: it has no optimal action")
        return actions[0]

    def _check_state(self, state: int) -> int:
        """Returns ``state`` if the MDP has it, else raises ``ValueError``."""
        if not 0 <= state < self.n_states:
            raise ValueError(f"state must be in 0..{self.n_states - 1}, got {state}")
        return state

