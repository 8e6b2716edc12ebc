"""Tests for trl_icrl.agent.play: the one play loop, with tabular agents and with the in-context model.

The expected trajectories were recorded from the loops this one replaced (the baselines' and the rollout
engine's own), so a change in reset, schedule, step or write bookkeeping shows here.
"""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from trl_icrl import ICRLAgent
from trl_icrl.agent.exploration import ExplorationSchedule
from trl_icrl.agent.play import play, play_seeds, reached_goal
from trl_icrl.baselines import BASELINES, TabularAgents
from trl_icrl.envs import IN_DISTRIBUTION, ParametricFrozenLake, heldout_maps
from trl_icrl.envs.codec import frozen_lake_codec
from trl_icrl.protocol import TokenProtocol
from trl_icrl.tiny_model import build_tokenizer

RESULTS_MODEL = Path(__file__).parent.parent / "results" / "tiny_full_finetune_online"

Q_ACTIONS = [
    [1, 3, 3, 0, 0, 2, 3, 0, 0, 0, 0, 2, 2, 3, 2, 3, 2, 1, 0, 2, 0, 2, 1, 1, 0, 0, 2, 3, 1, 2, 3, 3, 0, 1],
    [1, 3, 3, 0, 3, 1, 0, 0, 1, 2, 2, 2, 1, 3, 2, 0, 1, 3, 2, 3, 3, 0, 1],
    [1, 0, 2, 3, 3, 2, 0, 0, 0, 0, 2, 1, 0, 2, 2, 3, 1, 1, 0, 0, 0, 0, 1, 3, 1, 0, 2, 1, 3],
]
Q_LENGTHS = [[5, 8, 6, 8, 7], [7, 8, 1, 2, 5], [2, 8, 8, 3, 8]]
Q_RETURNS = [[1.0, 0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]

LM_ACTIONS_MAP_0 = [0, 3, 3, 3, 0, 3, 3, 3, 0, 3, 3, 3, 0, 0, 0, 0]
LM_SUCCESSES = [[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
LM_LENGTHS = [[4, 4, 4, 4], [4, 31, 3, 7]]


def test_tabular_agents_reproduce_a_known_trajectory():
    """Optimistic Q-learning, random then half greedy then greedy, a map switch at episode 2, a step cap of 8."""
    codec = frozen_lake_codec()
    protocol = TokenProtocol(build_tokenizer(), "step", codec.action_words, codec.observation_texts(),
                             codec.reward_values)
    maps = IN_DISTRIBUTION.generate_many(3, seed=2024)
    envs = [ParametricFrozenLake(desc=m, max_episode_steps=8) for m in maps]
    agent_rng = np.random.default_rng(0)
    agents = TabularAgents([BASELINES["q_learning_optimistic"](env, agent_rng) for env in envs])
    result = play(agents, envs, 5, ExplorationSchedule.parse("0.0,0.5,1.0"), np.random.default_rng(7),
                  reset_seeds=[10, 11, 12], protocol=protocol, codec=codec,
                  reset_options=lambda i, e: {"desc": maps[(i + 1) % 3]} if e == 2 else None)
    assert [trial.actions for trial in result.trials] == Q_ACTIONS
    assert result.lengths.tolist() == Q_LENGTHS and result.returns.tolist() == Q_RETURNS
    assert result.successes.dtype == result.returns.dtype == np.float64  # one convention for every agent
    assert result.successes.tolist() == Q_RETURNS and result.env_steps == sum(map(sum, Q_LENGTHS))
    assert [len(protocol.parse(trial.input_ids)) for trial in result.trials] == [5, 5, 5]
    assert envs[0].unwrapped.map == maps[1]  # the switch happened


def test_in_context_agent_reproduces_a_known_trajectory():
    """The committed model, greedy, on two held-out maps: its actions come from its KV-cached contexts."""
    agent = ICRLAgent.from_pretrained(RESULTS_MODEL)
    envs = [ParametricFrozenLake(desc=m) for m in heldout_maps("id", 2, seed=0)]
    result = agent.play(envs, n_episodes=4, schedule="greedy", seed=0)
    assert result.trials[0].actions == LM_ACTIONS_MAP_0
    assert result.successes.tolist() == LM_SUCCESSES and result.lengths.tolist() == LM_LENGTHS


def test_play_seeds_is_the_evaluation_rule():
    rng, reset_seeds = play_seeds(5, 3)
    assert reset_seeds == [5, 6, 7]
    assert rng.integers(2**63) == np.random.default_rng(5).integers(2**63)


def test_play_needs_both_protocol_and_codec_to_write():
    env = ParametricFrozenLake(desc=("SFG",))
    with pytest.raises(ValueError, match="give both protocol and codec"):
        play(TabularAgents([BASELINES["oracle"](env, None)]), [env], 1, ExplorationSchedule.parse("greedy"),
             np.random.default_rng(0), codec=frozen_lake_codec())


def test_an_episode_succeeds_when_it_ends_at_a_goal_whatever_its_rewards():
    cliff = gym.make("CliffWalking-v1")
    cliff.reset(seed=0)
    for action in [0] + [1] * 11 + [2]:  # up, along the top of the cliff, down onto the goal
        obs, reward, terminated, _, info = cliff.step(action)
    assert (obs, reward, terminated) == (47, -1.0, True) and reached_goal(cliff, reward, info)
    lake = gym.make("FrozenLake-v1", is_slippery=False)
    lake.reset(seed=0)
    _, reward, terminated, _, info = lake.step(2)  # right, then down into the hole at row 1, column 1
    _, reward, terminated, _, info = lake.step(1)
    assert terminated and not reached_goal(lake, reward, info)
    assert reached_goal(lake, 0.0, {"is_success": True}) and not reached_goal(cliff, -1.0, {"is_success": False})
