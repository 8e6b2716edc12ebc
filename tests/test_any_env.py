"""Any Discrete gymnasium env trains with the defaults: the observation format fits the env, an episode longer than
the context ends truncated, and gymnasium's own envs train, save, reload and play."""

import json

import gymnasium as gym
import numpy as np
import pytest

from trl_icrl import DQNConfig, DQNTrainer, ExplorationSchedule, ICRLAgent, RolloutEngine, codec_for
from trl_icrl.agent.q_network import build_q_network, make_peft_config
from trl_icrl.envs.codec import fits_grid, grid_shape
from trl_icrl.protocol import TokenProtocol


class _WideGrid(gym.Env):
    """A 2 x 12 grid with ``nrow``/``ncol``, wider than the coordinate vocabulary's 10 x 10."""

    nrow, ncol = 2, 12
    observation_space, action_space = gym.spaces.Discrete(24), gym.spaces.Discrete(2)
    reward_values = (1.0,)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, 0.0, False, False, {}


gym.register("test/WideGrid-v0", entry_point=_WideGrid)


@pytest.mark.parametrize(("env_id", "kwargs", "shape", "observation_format"), [
    ("trl_icrl/ParametricFrozenLake-v0", {"desc": ["SFFF", "FHFH", "FFFH", "HFFG"]}, (4, 4), "coords"),
    ("FrozenLake8x8-v1", {}, (8, 8), "coords"),
    ("CliffWalking-v1", {}, (4, 12), "index"),
    ("Taxi-v4", {}, None, "index"),
    ("test/WideGrid-v0", {}, (2, 12), "index"),
])
def test_the_observation_format_fits_the_env(env_id, kwargs, shape, observation_format):
    env = gym.make(env_id, **kwargs)
    assert grid_shape(env) == shape
    assert fits_grid(env) == (observation_format == "coords")
    codec = codec_for(env_id)
    assert codec.observation_format == observation_format
    codec.check_env(env)
    env.reset(seed=0)
    assert codec.observation_text(env, 1) in codec.observation_texts()


def test_an_episode_longer_than_the_context_ends_truncated_and_play_goes_on(tiny_lm, tokenizer):
    codec = codec_for("CliffWalking-v1")
    protocol = TokenProtocol(tokenizer, "compact", codec.action_words, codec.observation_texts(),
                             codec.reward_values)
    network = build_q_network(tiny_lm, codec.n_actions, protocol.action_token_ids, "value_head",
                              make_peft_config("lora", "value_head"))
    env = gym.make("CliffWalking-v1")  # no time limit: the greedy untrained agent walks on and on
    assert env.spec.max_episode_steps is None
    result = RolloutEngine(network, protocol, codec, max_context_tokens=96).play(
        [env], 3, ExplorationSchedule.parse("greedy"), np.random.default_rng(0), reset_seeds=[0])
    trial = result.trials[0]
    assert len(trial.input_ids) <= 96
    assert not np.isnan(result.returns).any()  # all three episodes were played
    episodes = protocol.parse(trial.input_ids)
    assert episodes and all(e.truncated for e in episodes)  # each cut with the protocol's truncation marker
    assert result.lengths[0].max() < 96


@pytest.mark.parametrize(("env_id", "observation_format"), [
    ("CliffWalking-v1", "index"), ("Taxi-v4", "index"), ("FrozenLake8x8-v1", "coords")])
def test_gymnasiums_envs_train_save_reload_and_play_with_the_defaults(tmp_path, env_id, observation_format):
    # Only the run's size is set: nothing about the env.
    args = DQNConfig(env_id=env_id, output_dir=str(tmp_path / "out"), max_steps=2, learning_starts=2,
                     trials_per_rollout=2, per_device_train_batch_size=2, report_to="none", disable_tqdm=True)
    trainer = DQNTrainer("tiny", args)
    trainer.train()
    trainer.save_model()
    saved = json.loads((tmp_path / "out" / "icrl_config.json").read_text())
    assert saved["env_id"] == env_id and saved["observation_format"] == observation_format
    agent = ICRLAgent.from_pretrained(tmp_path / "out")
    env = gym.make(env_id, max_episode_steps=None)  # the env as registered, CliffWalking with no time limit
    result = agent.play(env, n_episodes=2, eval_context_tokens=256)
    assert result.returns.shape == (1, 2) and not np.isnan(result.returns).any()
    assert result.lengths.max() < 256  # an episode outgrowing the context ends truncated
    assert agent.env_codec.observation_format == observation_format
