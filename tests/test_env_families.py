"""The trainer, offline data and model card find an env's generated maps by env id, never by naming Frozen Lake."""

import gymnasium as gym
import pytest
from gymnasium.envs.registration import EnvSpec

import trl_icrl.envs.families as env_families
from trl_icrl import DQNConfig, DQNTrainer, frozen_lake_codec
from trl_icrl.agent.config import AgentConfig
from trl_icrl.envs import GENERATED_MAP_ENVS, MapFamily
from trl_icrl.envs.codec import CODECS
from trl_icrl.envs.families import map_family, register_map_families
from trl_icrl.envs.generated_map_env import GeneratedMapEnv
from trl_icrl.model_card import build_model_card
from trl_icrl.offline_data import offline_trials

WIDE_LAKE = "test/WideLake-v0"
WIDE = MapFamily("wide", width_range=(8, 8), height_range=(3, 3))


@pytest.fixture
def wide_lake(monkeypatch):
    """The parametric Frozen Lake under another env id, whose only family is 8x3 maps."""
    spec = EnvSpec(WIDE_LAKE, entry_point="trl_icrl.envs.parametric_frozen_lake:ParametricFrozenLake")
    monkeypatch.setitem(gym.registry, WIDE_LAKE, spec)
    monkeypatch.setitem(CODECS, WIDE_LAKE, frozen_lake_codec)
    monkeypatch.setattr(env_families, "_MAP_FAMILIES", dict(env_families._MAP_FAMILIES))
    register_map_families(WIDE_LAKE, {"wide": WIDE})


def test_heldout_maps_offline_data_and_card_come_from_the_registered_family(wide_lake, tiny_dir, tmp_path):
    args = DQNConfig(output_dir=str(tmp_path / "out"), env_id=WIDE_LAKE, map_family="wide", eval_maps=3,
                     trials_per_rollout=2, episodes_per_trial=2, learning_starts=2, max_context_tokens=256,
                     disable_tqdm=True, report_to="none")
    trainer = DQNTrainer(str(tiny_dir), args)
    assert len(trainer.heldout_maps) == 3
    assert all(len(m) == 3 and len(m[0]) == 8 for m in trainer.heldout_maps)
    rows = offline_trials(trainer.env_spec.protocol, trainer.env_spec.codec, WIDE_LAKE, "high", 2, episodes_per_trial=2,
                          family="wide", progress=False)
    assert [r["env_id"] for r in rows] == [WIDE_LAKE] * 2
    assert all(len(r["env_map"].split("/")) == 3 and len(r["env_map"].split("/")[0]) == 8 for r in rows)
    card = build_model_card(tmp_path, trainer.agent_config, args.to_dict(), 0)
    assert f'gym.make("{WIDE_LAKE}", family="wide", seed=1234)' in card.text and "(8-8 wide, 3-3 high)" in card.text


def test_an_env_without_generated_maps_has_no_family():
    assert map_family("CliffWalking-v1", "id") is None
    with pytest.raises(ValueError, match="map_family must be one of \\['id', 'ood', 'up_to_8'\\]"):
        map_family("trl_icrl/ParametricFrozenLake-v0", "wide")
    with pytest.raises(ValueError, match="CliffWalking-v1 has none"):
        offline_trials(None, None, "CliffWalking-v1", "high", 1)


def test_agent_config_of_a_plain_env_gives_a_card_without_family(tmp_path):
    config = AgentConfig(base_model="tiny", q_parameterisation="value_head", adapter_type="none",
                         env_id="CliffWalking-v1", protocol_format="compact", observation_format="index",
                         action_words=("up", "right", "down", "left"), reward_values=(-1.0, -100.0), n_actions=4,
                         n_observations=48, episodes_per_trial=30, eval_context_tokens=1024, gamma=0.9,
                         reward_scale=1.0)
    card = build_model_card(tmp_path, config, DQNConfig(output_dir=str(tmp_path), report_to="none").to_dict(), 0)
    assert 'env = gym.make("CliffWalking-v1")\n' in card.text


@pytest.mark.parametrize("env_class", GENERATED_MAP_ENVS, ids=lambda c: c.__name__)
def test_each_generated_map_env_shares_one_base_and_is_registered_in_one_place(env_class):
    """One base class checks the arguments, draws or takes the map and switches it on reset; registration.py
    registers each with gymnasium and its families."""
    assert issubclass(env_class, GeneratedMapEnv) and "_load_map" in vars(env_class)
    assert gym.spec(env_class.env_id).entry_point == f"{env_class.__module__}:{env_class.__name__}"
    assert env_families.map_families(env_class.env_id) is env_class.families
    env = gym.make(env_class.env_id, seed=3).unwrapped
    assert type(env) is env_class and env.map_seed == 3
    first = env.map
    env.reset(seed=0, options={"map_seed": 4})
    assert env.map_seed == 4 and env.map == next(iter(env.families.values())).generate(4) != first
    env.reset(options={"desc": first})
    assert env.map == first and env.map_seed is None
    with pytest.raises(ValueError, match="seed is an alias of map_seed"):
        env_class(seed=1, map_seed=2)
    with pytest.raises(ValueError, match="options may hold one of 'desc' or 'map_seed'"):
        env.reset(options={"desc": first, "map_seed": 1})
    with pytest.raises(ValueError, match=f"unknown {env_class.kind} family 'nope'"):
        env_class(family="nope")
