"""Tabular and scripted baselines on Discrete envs, played through the same loop as the in-context agent.

One :class:`TabularAgent` per env acts on its integer observations and keeps what it learned across the
episodes of a trial, the tabular analogue of in-context learning; :class:`TabularAgents` puts one per row
behind the play loop's :class:`~trl_icrl.agent.play.Agent` interface, and :func:`play_agents` plays them. Given a
protocol and a codec the loop also writes each env's history as a :class:`~trl_icrl.protocol.Trial`, which is
how offline datasets from scripted behaviour policies are made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

from .agent.exploration import ExplorationSchedule
from .agent.play import Agent, RolloutResult, Transition, play, trial_full
from .envs.codec import EnvCodec
from .protocol import TokenProtocol, TrialWriter


class TabularAgent(ABC):
    """Acts on the integer observations of one Discrete env and learns from its transitions."""

    name: str

    @abstractmethod
    def greedy_action(self, obs: int) -> int:
        """The action this agent takes at ``obs`` when acting greedily."""

    def observe(self, obs: int, action: int, reward: float, next_obs: int, terminated: bool,  # noqa: B027
                truncated: bool) -> None:
        """Learn from one transition (by default: nothing)."""


class UniformRandomAgent(TabularAgent):
    """Uniformly random actions, also when asked for its greedy one."""

    name = "random"

    def __init__(self, n_actions: int, rng: np.random.Generator):
        self.n_actions, self.rng = n_actions, rng

    def greedy_action(self, obs: int) -> int:
        return int(self.rng.integers(self.n_actions))


class OracleAgent(TabularAgent):
    """The shortest-path action of the env's oracle, ``env.unwrapped.optimal_action`` (the lowest-numbered
    optimal action, so ties are broken deterministically); it follows the env's current map."""

    name = "oracle"

    def __init__(self, env: gym.Env):
        self.lake = env.unwrapped
        if not hasattr(self.lake, "optimal_action"):
            raise TypeError(f"{type(self.lake).__name__} has no optimal_action(tile) oracle")

    def greedy_action(self, obs: int) -> int:
        return self.lake.optimal_action(obs)


class EpsilonOptimalAgent(OracleAgent):
    """The oracle action with probability ``quality``, else a uniformly random one: the data-quality knob
    of scripted offline data (0 is random, 1 is optimal)."""

    def __init__(self, env: gym.Env, quality: float, rng: np.random.Generator):
        super().__init__(env)
        if not 0.0 <= quality <= 1.0:
            raise ValueError(f"quality must be in [0, 1], got {quality}")
        self.quality, self.rng, self.n_actions = quality, rng, int(env.action_space.n)
        self.name = f"epsilon_optimal_{quality:g}"

    def greedy_action(self, obs: int) -> int:
        if self.rng.random() < self.quality:
            return super().greedy_action(obs)
        return int(self.rng.integers(self.n_actions))


class QLearningAgent(TabularAgent):
    """Tabular Q-learning: ``Q[s, a] += lr * (r + gamma * max_a' Q[s', a'] - Q[s, a])``.

    A terminating transition has no bootstrap term; a truncated one keeps it. Greedy ties are broken
    uniformly at random, so with ``init=1.0`` (optimistic for rewards in [0, 1]) untried actions look best
    and the agent explores systematically, while with ``init=0.0`` it acts at random until it first finds
    reward. ``q`` is (n_states, n_actions); it grows by rows of ``init`` when an observation beyond it
    arrives (a switch to a larger map).
    """

    def __init__(self, n_states: int, n_actions: int, lr: float = 0.5, gamma: float = 0.9, init: float = 0.0,
                 *, rng: np.random.Generator):
        self.lr, self.gamma, self.init, self.rng = lr, gamma, init, rng
        self.q = np.full((n_states, n_actions), init, dtype=np.float64)
        names = {0.0: "q_learning_zero_init", 1.0: "q_learning_optimistic"}
        self.name = names.get(init, f"q_learning_init_{init:g}")

    def _row(self, obs: int) -> np.ndarray:
        """Q[obs], (n_actions,); grows the table first if needed."""
        if obs >= len(self.q):
            extra = np.full((obs + 1 - len(self.q), self.q.shape[1]), self.init)
            self.q = np.concatenate([self.q, extra])
        return self.q[obs]

    def greedy_action(self, obs: int) -> int:
        values = self._row(obs)
        return int(self.rng.choice(np.flatnonzero(values == values.max())))

    def observe(self, obs: int, action: int, reward: float, next_obs: int, terminated: bool,
                truncated: bool) -> None:
        target = reward if terminated else reward + self.gamma * self._row(next_obs).max()
        row = self._row(obs)
        row[action] += self.lr * (target - row[action])


BASELINES: dict[str, Callable[[gym.Env, np.random.Generator], TabularAgent]] = {
    "random": lambda env, rng: UniformRandomAgent(int(env.action_space.n), rng),
    "q_learning_zero_init": lambda env, rng: QLearningAgent(
        int(env.observation_space.n), int(env.action_space.n), lr=0.5, gamma=0.9, init=0.0, rng=rng),
    "q_learning_optimistic": lambda env, rng: QLearningAgent(
        int(env.observation_space.n), int(env.action_space.n), lr=0.5, gamma=0.9, init=1.0, rng=rng),
    "oracle": lambda env, rng: OracleAgent(env),
}
"""Baselines by name, as factories ``(env, rng) -> agent``. Q-learning uses lr 0.5 and gamma 0.9 (the DQN's
discount), from a table of zeros or of optimistic ones."""


class TabularAgents(Agent):
    """One tabular agent per row of the play loop. With ``max_context_tokens``, a row's trial ends (its episode
    truncated) before it could hold more (:func:`~trl_icrl.agent.play.trial_full`): fixed-size offline trials."""

    def __init__(self, agents: Sequence[TabularAgent], max_context_tokens: int | None = None, step_budget: int = 0):
        self.agents = list(agents)
        self.max_context_tokens, self.step_budget = max_context_tokens, step_budget

    def start(self, trials: Sequence[TrialWriter | None]) -> None:
        if self.max_context_tokens is not None and any(writer is None for writer in trials):
            raise ValueError("max_context_tokens counts the tokens of written trials: pass a protocol and a codec")
        self.writers = list(trials)

    def context_full(self, row: int) -> bool:
        return self.max_context_tokens is not None and \
            trial_full(len(self.writers[row].trial.input_ids), self.step_budget, self.max_context_tokens)

    def greedy_actions(self, rows: Sequence[int], observations: Sequence[int]) -> list[int]:
        return [self.agents[i].greedy_action(obs) for i, obs in zip(rows, observations, strict=True)]

    def observe(self, row: int, transition: Transition, new_ids: Sequence[int], playing: bool) -> None:
        self.agents[row].observe(*transition)


def play_agents(agents: Sequence[TabularAgent], envs: Sequence[gym.Env], n_episodes: int,
                schedule: ExplorationSchedule, rng: np.random.Generator,
                reset_seeds: Sequence[int] | None = None,
                reset_options: Callable[[int, int], dict | None] | None = None, first_episode: int = 0,
                protocol: TokenProtocol | None = None, codec: EnvCodec | None = None,
                max_context_tokens: int | None = None) -> RolloutResult:
    """Each agent plays ``n_episodes`` consecutive episodes of its env: :func:`~trl_icrl.agent.play.play` with
    :class:`TabularAgents` (see there for the arguments). ``trials`` holds each env's history written with
    ``protocol`` and ``codec`` when both are given, else is empty; with ``max_context_tokens`` a trial ends
    sooner when it is that long (as training trials end when ``max_context_tokens`` are full)."""
    if len(agents) != len(envs):
        raise ValueError(f"one agent per env: got {len(agents)} agents for {len(envs)} envs")
    budget = protocol.layout.token_budget if protocol and codec else 0
    return play(TabularAgents(agents, max_context_tokens, budget), envs, n_episodes, schedule, rng,
                reset_seeds=reset_seeds, reset_options=reset_options, first_episode=first_episode, protocol=protocol,
                codec=codec)
