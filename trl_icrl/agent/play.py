"""One play loop for every agent: N envs in lockstep, many consecutive episodes per env in one trial.

:func:`play` does the bookkeeping every agent shares: resets (seeded once, then each env continues its own
stream, with ``reset_options`` per episode), the exploration schedule (with probability
``schedule.greedy_probability(episode)`` the agent's greedy action, else a uniform one drawn from the row's
own stream), env steps, per-episode returns, successes and lengths, and, given a protocol and a codec, each
row's history written as a :class:`~trl_icrl.protocol.Trial`. An :class:`Agent` only acts on a batch of rows
and sees what happened: the in-context model with its KV cache
(:class:`~trl_icrl.agent.rollout_engine.RolloutEngine`) is one, the tabular baselines
(:class:`~trl_icrl.baselines.TabularAgents`) are others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.envs.toy_text import CliffWalkingEnv
from tqdm.auto import tqdm

from ..envs.codec import EnvCodec
from ..protocol import Episode, TokenProtocol, Trial, TrialWriter
from .exploration import ExplorationSchedule, exploration_streams

Transition = tuple[int, int, float, int, bool, bool]
"""``(obs, action, reward, next_obs, terminated, truncated)`` of one env step."""


@dataclass
class RolloutResult:
    """What :func:`play` returns. Arrays are (n_envs, n_episodes) floats over the played episodes, NaN for
    episodes a trial never reached (its context was full first); ``trials`` is empty when nothing was written."""

    trials: list[Trial]
    returns: np.ndarray
    successes: np.ndarray
    lengths: np.ndarray
    env_steps: int


class Agent(ABC):
    """Acts for a batch of rows (one env and one trial each) that :func:`play` steps in lockstep."""

    def start(self, trials: Sequence[TrialWriter | None]) -> None:  # noqa: B027  (an optional hook)
        """Called once every row's first episode has begun; ``trials`` are the rows' histories (``None`` where
        :func:`play` writes none)."""

    def decision_rows(self, rows: Sequence[int]) -> list[int]:
        """Those of the playing ``rows`` that are at a decision now (default: all of them)."""
        return list(rows)

    @abstractmethod
    def greedy_actions(self, rows: Sequence[int], observations: Sequence[int]) -> list[int]:
        """The greedy action of each of ``rows``, whose envs are at ``observations``; (len(rows),)."""

    def context_full(self, row: int) -> bool:
        """True when the step ``row`` is taking must end its trial (a context with no room for another)."""
        return False

    def episode_full(self, row: int) -> bool:
        """True when the step ``row`` is taking must end its episode, truncated, and the trial goes on with the
        next one (an episode about to outgrow the context)."""
        return False

    def observe(self, row: int, transition: Transition, new_ids: Sequence[int],  # noqa: B027  (optional hook)
                playing: bool) -> None:
        """What ``row``'s step did: the transition, the token ids written for it (with the next episode's
        start, if one began) and whether the row plays on."""

    def finish(self, trials: list[Trial]) -> list[Trial]:
        """Called after the last step; the trials as the result holds them (default: whole)."""
        return trials


def trial_full(length: int, step_budget: int, max_tokens: int) -> bool:
    """True when a trial (or visible context) of ``length`` tokens must end with the step being taken: one more
    step may add ``step_budget`` tokens, and the step after it, if cut short, as many again, so a trial ended this
    way never holds more than ``max_tokens``."""
    return length + 2 * step_budget > max_tokens


def play_seeds(seed: int, n_envs: int) -> tuple[np.random.Generator, list[int]]:
    """The seeding rule of evaluations: the exploration stream ``default_rng(seed)`` and env ``i``'s first
    reset from ``seed + i``; returns ``(rng, reset_seeds)`` for :func:`play`."""
    return np.random.default_rng(seed), [seed + i for i in range(n_envs)]


@dataclass
class _Row:
    """One env's trial in progress."""

    env: gym.Env
    writer: TrialWriter | None
    obs: int = 0
    episode: int = 0  # index among the played episodes
    episode_return: float = 0.0
    episode_length: int = 0


def reached_goal(env: gym.Env, reward: float, info: dict) -> bool:
    """Whether a terminated episode ended at a goal: ``info["is_success"]`` where the env says so, else a
    positive last reward; gymnasium's CliffWalking, whose rewards are all negative, terminates only at its goal."""
    if "is_success" in info:
        return bool(info["is_success"])
    return reward > 0 or isinstance(env.unwrapped, CliffWalkingEnv)


def play(agent: Agent, envs: Sequence[gym.Env], n_episodes: int, schedule: ExplorationSchedule,
         rng: np.random.Generator, reset_seeds: Sequence[int] | None = None,
         reset_options: Callable[[int, int], dict | None] | None = None,
         prefixes: Sequence[Sequence[Episode]] | None = None, first_episode: int = 0,
         protocol: TokenProtocol | None = None, codec: EnvCodec | None = None,
         progress: bool = False) -> RolloutResult:
    """Play ``n_episodes`` consecutive episodes in each env, one trial per env, all envs in lockstep.

    Args:
        agent: acts for every row.
        envs: one env per row, reset at every episode start.
        schedule: P(greedy action) per episode index (offset by ``first_episode``).
        rng: source of exploration randomness (one stream per env is drawn from it).
        reset_seeds: seed of each env's first reset (later resets continue its own stream).
        reset_options: ``(env_index, episode) -> options`` for ``env.reset`` (e.g. switch the map).
        prefixes: episodes written into each trial before play (e.g. demonstrations).
        protocol, codec: write each row's history as a trial (both or neither).
    """
    if (protocol is None) != (codec is None):
        raise ValueError("give both protocol and codec to write trials, or neither")
    rows = [_Row(env, protocol.new_trial() if protocol else None) for env in envs]

    def begin_episode(i: int, row: _Row, seed: int | None = None) -> list[int]:
        obs, _ = row.env.reset(seed=seed, options=reset_options(i, row.episode) if reset_options else None)
        row.obs = int(obs)
        return row.writer.begin_episode(codec.observation_text(row.env, row.obs)) if row.writer else []

    for i, row in enumerate(rows):
        if codec:
            codec.check_env(row.env)
        for episode in (prefixes[i] if prefixes and row.writer else ()):
            row.writer.write_episode(episode)
        begin_episode(i, row, None if reset_seeds is None else int(reset_seeds[i]))
    agent.start([row.writer for row in rows])
    n = len(rows)
    returns, successes = np.full((n, n_episodes), np.nan), np.full((n, n_episodes), np.nan)
    lengths = np.zeros((n, n_episodes), dtype=np.int64)
    env_steps = 0
    bar = tqdm(total=n * n_episodes, disable=not progress, desc="rollout", unit="episode", leave=False)
    streams = exploration_streams(rng, n)
    while playing := [i for i, row in enumerate(rows) if row.episode < n_episodes]:
        deciding = agent.decision_rows(playing)
        actions = {}
        for i in deciding:
            p_greedy = schedule.greedy_probability(first_episode + rows[i].episode)
            explore = streams[i].random() >= p_greedy
            actions[i] = int(streams[i].integers(rows[i].env.action_space.n)) if explore else None
        greedy = [i for i in deciding if actions[i] is None]
        actions.update(zip(greedy, agent.greedy_actions(greedy, [rows[i].obs for i in greedy])))
        for i in deciding:
            row, action = rows[i], actions[i]
            obs, reward, terminated, truncated, info = row.env.step(action)
            obs, reward = int(obs), float(reward)
            full = agent.context_full(i)
            truncated = truncated or ((full or agent.episode_full(i)) and not terminated)
            transition = (row.obs, action, reward, obs, terminated, truncated)
            row.obs = obs
            env_steps += 1
            row.episode_return += reward
            row.episode_length += 1
            new_ids = row.writer.step(action, reward, codec.observation_text(row.env, obs), terminated=terminated,
                                      truncated=truncated) if row.writer else []
            if terminated or truncated:
                e = row.episode
                returns[i, e], lengths[i, e] = row.episode_return, row.episode_length
                successes[i, e] = float(terminated and reached_goal(row.env, reward, info))
                row.episode = n_episodes if full else row.episode + 1
                row.episode_return, row.episode_length = 0.0, 0
                bar.update(1)
                if row.episode < n_episodes:
                    new_ids = new_ids + begin_episode(i, row)
            agent.observe(i, transition, new_ids, row.episode < n_episodes)
    bar.close()
    trials = agent.finish([row.writer.trial for row in rows if row.writer])
    return RolloutResult(trials, returns, successes, lengths, env_steps)
