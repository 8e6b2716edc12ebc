"""Tabular and scripted baselines on Discrete envs, played exactly as the in-context agent is.

:func:`play_agents` is the loop of :meth:`~trl_icrl.rollout.RolloutEngine.play` with an agent in place
of the model: the same resets, the same per-episode exploration schedule and the same results. An agent
keeps what it learned across the episodes of a trial, the tabular analogue of in-context learning. Given a
protocol and an codec it also writes each env's history as a :class:`~trl_icrl.protocol.Trial`, which is
how offline datasets from scripted behaviour policies are made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import gymnasium as gym
import numpy as np

from .env_codec import EnvCodec
from .exploration import ExplorationSchedule, exploration_streams
from .protocol import TokenProtocol, TrialWriter
from .rollout import RolloutResult


class Agent(Protocol):
    """Acts on the integer observations of a Discrete env and learns from its transitions."""

    name: str

    def greedy_action(self, obs: int) -> int: ...

    def observe(self, obs: int, action: int, reward: float, next_obs: int, terminated: bool,
                truncated: bool) -> None: ...


class _FixedPolicy:
    """An agent that learns nothing."""

    def observe(self, obs: int, action: int, reward: float, next_obs: int, terminated: bool,
                truncated: bool) -> None:
        """No learning."""


class UniformRandomAgent(_FixedPolicy):
    """Uniformly random actions, also when asked for its greedy one."""

    name = "random"

    def __init__(self, n_actions: int, rng: np.random.Generator):
        self.n_actions, self.rng = n_actions, rng

    def greedy_action(self, obs: int) -> int:
        return int(self.rng.integers(self.n_actions))


class OracleAgent(_FixedPolicy):
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


class QLearningAgent:
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


BASELINES: dict[str, Callable[[gym.Env, np.random.Generator], Agent]] = {
    "random": lambda env, rng: UniformRandomAgent(int(env.action_space.n), rng),
    "q_learning_zero_init": lambda env, rng: QLearningAgent(
        int(env.observation_space.n), int(env.action_space.n), lr=0.5, gamma=0.9, init=0.0, rng=rng),
    "q_learning_optimistic": lambda env, rng: QLearningAgent(
        int(env.observation_space.n), int(env.action_space.n), lr=0.5, gamma=0.9, init=1.0, rng=rng),
    "oracle": lambda env, rng: OracleAgent(env),
}
"""Baselines by name, as factories ``(env, rng) -> agent``. Q-learning uses lr 0.5 and gamma 0.9 (the DQN's
discount), from a table of zeros or of optimistic ones."""


@dataclass
class _Run:
    """One env's trial in progress."""

    agent: Agent
    env: gym.Env
    writer: TrialWriter | None
    obs: int = 0
    episode: int = 0  # index among the played episodes
    episode_return: float = 0.0
    episode_length: int = 0


def play_agents(agents: Sequence[Agent], envs: Sequence[gym.Env], n_episodes: int,
                schedule: ExplorationSchedule, rng: np.random.Generator,
                reset_seeds: Sequence[int] | None = None,
                reset_options: Callable[[int, int], dict | None] | None = None, first_episode: int = 0,
                protocol: TokenProtocol | None = None,
                codec: EnvCodec | None = None) -> RolloutResult:
    """Each agent plays ``n_episodes`` consecutive episodes of its env, as ``RolloutEngine.play`` does.

    The envs step in lockstep; at each step, with probability ``schedule.greedy_probability(first_episode +
    episode)`` the agent's greedy action is taken, else a uniform one (each env draws from its own stream of
    ``rng``, as the rollout engine does), and the agent observes
    the transition. Resets, seeds, success (terminated with reward > 0) and the returned arrays, (n_envs,
    n_episodes), are those of ``RolloutEngine.play``. ``trials`` holds each env's history written with
    ``protocol`` and ``codec`` when both are given, else is empty.

    Args:
        agents: one agent per env; it keeps what it learned across episodes.
        envs: Discrete envs, reset at every episode start.
        reset_seeds: seed of each env's first reset (later resets continue its own stream).
        reset_options: ``(env_index, episode) -> options`` for ``env.reset`` (e.g. switch the map).
    """
    if len(agents) != len(envs):
        raise ValueError(f"one agent per env: got {len(agents)} agents for {len(envs)} envs")
    if (protocol is None) != (codec is None):
        raise ValueError("give both protocol and codec to write trials, or neither")
    runs = [_Run(agent, env, protocol.new_trial() if protocol else None)
            for agent, env in zip(agents, envs, strict=True)]

    def reset(i: int, run: _Run, seed: int | None) -> None:
        obs, _ = run.env.reset(seed=seed, options=reset_options(i, run.episode) if reset_options else None)
        run.obs = int(obs)
        if run.writer:
            run.writer.begin_episode(codec.observation_text(run.env, run.obs))

    for i, run in enumerate(runs):
        if codec:
            codec.check_env(run.env)
        reset(i, run, None if reset_seeds is None else int(reset_seeds[i]))
    n = len(envs)
    returns, lengths = np.zeros((n, n_episodes)), np.zeros((n, n_episodes), dtype=np.int64)
    successes = np.zeros((n, n_episodes), dtype=bool)
    env_steps = 0
    streams = exploration_streams(rng, n)
    while any(run.episode < n_episodes for run in runs):
        for i, run in enumerate(runs):
            if run.episode >= n_episodes:
                continue
            p_greedy = schedule.greedy_probability(first_episode + run.episode)
            action = (run.agent.greedy_action(run.obs) if streams[i].random() < p_greedy
                      else int(streams[i].integers(run.env.action_space.n)))
            obs, reward, terminated, truncated, _ = run.env.step(action)
            obs, reward = int(obs), float(reward)
            run.agent.observe(run.obs, action, reward, obs, terminated, truncated)
            run.obs = obs
            env_steps += 1
            run.episode_return += reward
            run.episode_length += 1
            if run.writer:
                run.writer.step(action, reward, codec.observation_text(run.env, obs), terminated=terminated,
                                truncated=truncated)
            if terminated or truncated:
                e = run.episode
                returns[i, e], lengths[i, e] = run.episode_return, run.episode_length
                successes[i, e] = bool(terminated and reward > 0)
                run.episode += 1
                run.episode_return, run.episode_length = 0.0, 0
                if run.episode < n_episodes:
                    reset(i, run, None)
    trials = [run.writer.trial for run in runs if run.writer]
    return RolloutResult(trials, returns, successes, lengths, env_steps)
