"""Tests for trl_icrl.baselines: tabular and scripted agents, played through the loop the in-context agent uses."""

import gymnasium as gym
import numpy as np
import pytest
from monte_carlo import random_walk_success

from trl_icrl.agent.exploration import ExplorationSchedule
from trl_icrl.baselines import (
    BASELINES,
    EpsilonOptimalAgent,
    OracleAgent,
    QLearningAgent,
    UniformRandomAgent,
    play_agents,
)
from trl_icrl.envs import IN_DISTRIBUTION, ParametricFrozenLake
from trl_icrl.envs.codec import frozen_lake_codec
from trl_icrl.protocol import TokenProtocol
from trl_icrl.tiny_model import build_tokenizer

GREEDY = ExplorationSchedule.parse("greedy")
ID_MAPS = IN_DISTRIBUTION.generate_many(20, seed=2024)

# Start 0, goal 8, a hole at 2; random walks are cut at STEP_CAP steps (exact success rate 0.301).
RANDOM_MAP = ("SFH", "FFF", "FFG")
STEP_CAP = 20
N_RANDOM_ENVS, N_RANDOM_EPISODES = 40, 100

# Goal 8 is 4 moves from the start 0 (down, down, right, right); holes at 2 and 4.
Q_MAP = ("SFH", "FHF", "FFG")


class Recorder(gym.Wrapper):
    """Records the start tile, actions and rewards of every episode."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.starts, self.actions, self.rewards = [], [], []

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.starts.append(obs)
        self.actions.append([])
        self.rewards.append([])
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        self.actions[-1].append(action)
        self.rewards[-1].append(out[1])
        return out


def make_protocol():
    codec = frozen_lake_codec()
    return TokenProtocol(build_tokenizer(), "compact", codec.action_words, codec.observation_texts(),
                         codec.reward_values), codec


@pytest.fixture(scope="module")
def monte_carlo_random_success() -> tuple[float, int]:
    """Success rate of uniform random actions on RANDOM_MAP, from gymnasium's own FrozenLake-v1."""
    n = 4000
    return random_walk_success(RANDOM_MAP, n, np.random.default_rng(12345), STEP_CAP), n


def within_standard_errors(p1: float, n1: int, p2: float, n2: int, k: float = 4.0) -> bool:
    """|p1 - p2| is within k standard errors of the difference of two independent proportions."""
    p = (p1 * n1 + p2 * n2) / (n1 + n2)
    return abs(p1 - p2) <= k * np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


def play_random_map(make_agent) -> np.ndarray:
    """Successes (N_RANDOM_ENVS, N_RANDOM_EPISODES) of greedy agents on RANDOM_MAP."""
    envs = [ParametricFrozenLake(desc=RANDOM_MAP, max_episode_steps=STEP_CAP) for _ in range(N_RANDOM_ENVS)]
    agents = [make_agent(env, np.random.default_rng(i)) for i, env in enumerate(envs)]
    result = play_agents(agents, envs, N_RANDOM_EPISODES, GREEDY, np.random.default_rng(0),
                         reset_seeds=range(N_RANDOM_ENVS))
    return result.successes


def test_oracle_is_optimal_on_generated_maps():
    envs = [Recorder(ParametricFrozenLake(desc=m)) for m in ID_MAPS]
    agents = [BASELINES["oracle"](env, np.random.default_rng(0)) for env in envs]
    result = play_agents(agents, envs, 4, GREEDY, np.random.default_rng(0), reset_seeds=range(20))
    assert result.successes.all() and result.returns.min() == 1.0 and result.trials == []
    shortest = [[env.unwrapped.shortest_path_length(s) for s in env.starts] for env in envs]
    np.testing.assert_array_equal(result.lengths, shortest)
    assert result.env_steps == result.lengths.sum()


def test_schedule_is_read_at_first_episode_offset():
    """Schedule 0.0 then 1.0: episode 0 is random, later ones greedy; from first_episode=1 all are greedy."""
    schedule = ExplorationSchedule.parse("0.0,1.0")
    results = {}
    for first in (0, 1):
        envs = [Recorder(ParametricFrozenLake(desc=m)) for m in ID_MAPS]
        result = play_agents([OracleAgent(env) for env in envs], envs, 3, schedule, np.random.default_rng(1),
                             reset_seeds=range(20), first_episode=first)
        shortest = np.array([[env.unwrapped.shortest_path_length(s) for s in env.starts] for env in envs])
        results[first] = result.lengths == shortest
    assert results[0][:, 1:].all() and not results[0][:, 0].all()
    assert results[1].all()


def test_random_agent_matches_monte_carlo(monte_carlo_random_success):
    p_mc, n_mc = monte_carlo_random_success
    successes = play_random_map(BASELINES["random"])
    assert 0.2 < p_mc < 0.8  # a map where the comparison has power
    assert within_standard_errors(successes.mean(), successes.size, p_mc, n_mc)


def test_epsilon_optimal_quality_spans_random_to_oracle(monte_carlo_random_success):
    envs = [ParametricFrozenLake(desc=m) for m in ID_MAPS]
    oracle = play_agents([OracleAgent(env) for env in envs], envs, 3, GREEDY, np.random.default_rng(0),
                         reset_seeds=range(20))
    envs = [ParametricFrozenLake(desc=m) for m in ID_MAPS]
    agents = [EpsilonOptimalAgent(env, 1.0, np.random.default_rng(i)) for i, env in enumerate(envs)]
    best = play_agents(agents, envs, 3, GREEDY, np.random.default_rng(0), reset_seeds=range(20))
    np.testing.assert_array_equal(best.successes, oracle.successes)
    np.testing.assert_array_equal(best.lengths, oracle.lengths)

    p_mc, n_mc = monte_carlo_random_success
    worst = play_random_map(lambda env, rng: EpsilonOptimalAgent(env, 0.0, rng))
    assert within_standard_errors(worst.mean(), worst.size, p_mc, n_mc)
    half = play_random_map(lambda env, rng: EpsilonOptimalAgent(env, 0.5, rng))
    assert p_mc + 0.1 < half.mean() < 1.0


def test_q_learning_update_by_hand():
    agent = QLearningAgent(9, 4, lr=0.5, gamma=0.9, rng=np.random.default_rng(0))
    agent.q[5] = [0.0, 0.4, 0.2, 0.0]
    agent.observe(2, 1, 0.0, 5, terminated=False, truncated=False)
    assert agent.q[2, 1] == pytest.approx(0.5 * (0.0 + 0.9 * 0.4 - 0.0))  # 0.18
    agent.q[3, 2] = 0.2
    agent.observe(3, 2, 0.0, 5, terminated=False, truncated=True)  # truncation bootstraps
    assert agent.q[3, 2] == pytest.approx(0.2 + 0.5 * (0.9 * 0.4 - 0.2))  # 0.28
    agent.q[8] = 10.0
    agent.q[7, 2] = 0.2
    agent.observe(7, 2, 1.0, 8, terminated=True, truncated=False)  # termination does not
    assert agent.q[7, 2] == pytest.approx(0.2 + 0.5 * (1.0 - 0.2))  # 0.6
    assert agent.greedy_action(7) == 2 and agent.greedy_action(5) == 1
    # An observation beyond the table (a switch to a larger map) adds rows of the initial value.
    assert agent.greedy_action(11) in range(4) and agent.q.shape == (12, 4) and not agent.q[9:].any()

    optimistic = QLearningAgent(9, 4, init=1.0, rng=np.random.default_rng(0))
    optimistic.observe(0, 2, 0.0, 1, terminated=False, truncated=False)
    assert optimistic.q[0, 2] == pytest.approx(1.0 + 0.5 * (0.9 * 1.0 - 1.0))  # 0.95
    # Ties are broken uniformly among the best actions only.
    assert {optimistic.greedy_action(0) for _ in range(200)} == {0, 1, 3}
    assert optimistic.name == "q_learning_optimistic" and agent.name == "q_learning_zero_init"


def test_optimistic_q_learning_solves_fixed_map():
    envs = [ParametricFrozenLake(desc=Q_MAP) for _ in range(10)]
    rng = np.random.default_rng(3)
    result = play_agents([BASELINES["q_learning_optimistic"](env, rng) for env in envs], envs, 30, GREEDY,
                         np.random.default_rng(0), reset_seeds=range(10))
    assert result.successes[:, -5:].all()
    np.testing.assert_array_equal(result.lengths[:, -5:], 4)
    assert result.successes[:, 0].mean() < 0.5  # it had to learn


def test_trials_parse_back_to_played_episodes():
    protocol, codec = make_protocol()
    envs = [Recorder(ParametricFrozenLake(desc=m, max_episode_steps=6)) for m in ID_MAPS[:4]]
    agents = [EpsilonOptimalAgent(env, 0.5, np.random.default_rng(i)) for i, env in enumerate(envs)]
    schedule = ExplorationSchedule.parse("paper_ramp")
    result = play_agents(agents, envs, 8, schedule, np.random.default_rng(0), reset_seeds=range(4),
                         protocol=protocol, codec=codec)
    assert len(result.trials) == 4
    truncations = 0
    for i, (env, trial) in enumerate(zip(envs, result.trials, strict=True)):
        episodes = protocol.parse(trial.input_ids)
        assert len(episodes) == 8
        assert trial.actions == [a for actions in env.actions for a in actions]
        for e, episode in enumerate(episodes):
            assert episode.observations[0] == codec.observation_text(env, env.starts[e])
            assert episode.actions == env.actions[e] and episode.rewards == env.rewards[e]
            assert len(episode.actions) == result.lengths[i, e]
            assert sum(episode.rewards) == result.returns[i, e]
            assert result.successes[i, e] == (episode.terminated and episode.rewards[-1] > 0)
            truncations += episode.truncated
    assert truncations > 0  # the step cap of 6 cut some episodes


def test_rejects_mismatched_arguments():
    env = ParametricFrozenLake(desc=Q_MAP)
    protocol, _ = make_protocol()
    with pytest.raises(ValueError, match="one agent per env"):
        play_agents([], [env], 1, GREEDY, np.random.default_rng(0))
    with pytest.raises(ValueError, match="protocol and codec"):
        play_agents([OracleAgent(env)], [env], 1, GREEDY, np.random.default_rng(0), protocol=protocol)
    with pytest.raises(ValueError, match="quality"):
        EpsilonOptimalAgent(env, 1.5, np.random.default_rng(0))
    assert UniformRandomAgent(4, np.random.default_rng(0)).name == "random"


def test_offline_data_opens_each_context_with_the_ramp(step_protocol, env_codec):
    """Scripted offline trials play under the paper's ramp: the first two episodes of every context are random
    (the quality knob acts only where the ramp lets the behaviour choose), the last ten are the behaviour's own."""
    from trl_icrl.envs import ENV_ID
    from trl_icrl.offline_data import offline_trials

    rows = offline_trials(step_protocol, env_codec, ENV_ID, "high", 64, episodes_per_trial=30, progress=False)
    successes = np.zeros((len(rows), 30))
    for i, row in enumerate(rows):
        for episode, reward in zip(row["episode_index"], row["rewards"]):
            successes[i, episode] += reward > 0
    assert successes[:, :2].mean() < 0.35 < 0.8 < successes[:, 20:].mean()


def test_offline_map_switches_restart_the_ramp_on_a_second_map(step_protocol, env_codec):
    """With ``map_switches=1`` every trial moves to a second training map at an episode in ``SWITCH_EPISODES``:
    the behaviour (optimistic Q-learning, keeping its table) succeeds less right after the switch than before it,
    the ramp's random episodes start again there, and it recovers."""
    import re

    from trl_icrl.envs import ENV_ID
    from trl_icrl.offline_data import SWITCH_EPISODES, offline_trials

    rows = offline_trials(step_protocol, env_codec, ENV_ID, "q_learning", 64, episodes_per_trial=70,
                          map_switches=1.0, progress=False)
    around = []
    for row in rows:
        switch = int(re.search(r"then .* from episode (\d+)$", row["env_map"]).group(1))
        assert SWITCH_EPISODES[0] <= switch <= SWITCH_EPISODES[1]
        successes = np.zeros(70)
        for episode, reward in zip(row["episode_index"], row["rewards"]):
            successes[episode] += reward > 0
        around.append(successes[switch - 5:switch + 35])
    before, after, late = np.mean(around, 0)[:5].mean(), np.mean(around, 0)[5:7].mean(), np.mean(around, 0)[30:].mean()
    assert after < 0.4 < 0.7 < min(before, late)
    assert offline_trials(step_protocol, env_codec, ENV_ID, "q_learning", 4, episodes_per_trial=3,
                          progress=False)[0]["env_map"].count("then") == 0
