"""An open vocabulary: words the embedded tokenizer lacks are added with embeddings composed from their parts, when
training starts on a new env and when a saved model meets one; a word with an unknown part gets one sentence."""

import json
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from fresh_python import fresh_process
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_icrl import DQNConfig, DQNTrainer, ICRLAgent, codec_for, frozen_lake_codec
from trl_icrl.envs import ENV_ID
from trl_icrl.envs.codec import EnvCodec
from trl_icrl.protocol import ProtocolError, TokenProtocol
from trl_icrl.tiny_model import TINY_BASE_DIR
from trl_icrl.vocabulary import composition, extend_vocabulary, missing_words, protocol_words

ROOT = Path(__file__).parent.parent
ADAPTER_MODEL = ROOT / "results" / "tiny_adapter_offline"


class _TwoStateChain(gym.Env):
    """A toy-text-like env of no known class: its rewards are only in its ``P`` table."""

    observation_space, action_space = gym.spaces.Discrete(2), gym.spaces.Discrete(2)
    P = {0: {0: [(1.0, 0, 0.0, False)], 1: [(1.0, 1, 5.0, True)]}, 1: {0: [(1.0, 1, 0.0, True)],
                                                                       1: [(1.0, 1, -2.0, True)]}}


gym.register("test/TwoStateChain-v0", entry_point=_TwoStateChain)
gym.register("test/FrozenLake8x8-v0", entry_point="gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv",
             kwargs={"map_name": "8x8", "is_slippery": False})


def test_codecs_of_envs_registered_under_new_ids():
    assert codec_for("test/FrozenLake8x8-v0") == frozen_lake_codec()
    codec = codec_for("test/TwoStateChain-v0")
    assert codec.reward_values == (-2.0, 5.0) and codec.action_words == ("0", "1")
    assert codec.observation_format == "index"
    with pytest.raises(ValueError, match="coords.*use observation_format='index'"):
        codec_for("CliffWalking-v1", "coords").check_env(gym.make("CliffWalking-v1"))


def test_new_words_are_composed_from_their_parts():
    model = AutoModelForCausalLM.from_pretrained(TINY_BASE_DIR)
    tokenizer = AutoTokenizer.from_pretrained(TINY_BASE_DIR)
    codec = codec_for("CliffWalking-v1")
    words = protocol_words("step", codec)
    new = missing_words(tokenizer, words)
    assert "36:right:-100.0" in new and "36:start" not in new  # Frozen Lake's index step words include 36:start
    before = model.get_input_embeddings().weight.detach().clone()
    extended = extend_vocabulary(model, tokenizer, words)
    weights = model.get_input_embeddings().weight
    assert weights.shape[0] == len(extended) == len(tokenizer) + len(new)
    assert torch.equal(weights[:len(tokenizer)], before)  # the words it knew keep their rows
    assert model.get_output_embeddings().weight is weights  # still tied
    word_id = extended.convert_tokens_to_ids("36:right:-100.0")
    parts = [tokenizer.convert_tokens_to_ids(p) for p in ("36", "right", "-100.0")]
    assert torch.allclose(weights[word_id], before[parts].sum(0))
    assert missing_words(extended, words) == []
    protocol = TokenProtocol(extended, "step", codec.action_words, codec.observation_texts(), codec.reward_values)
    assert protocol.layout.step_word_ids("36", 1, -100.0) == [word_id]


def test_a_word_with_an_unknown_part_gets_one_sentence():
    model = AutoModelForCausalLM.from_pretrained(TINY_BASE_DIR)
    tokenizer = AutoTokenizer.from_pretrained(TINY_BASE_DIR)
    codec = EnvCodec(("left", "jump"), (1.0,), 4, "index")
    with pytest.raises(ProtocolError, match="new word 'jump'.*part 'jump' is not in the vocabulary"):
        extend_vocabulary(model, tokenizer, protocol_words("step", codec))
    with pytest.raises(ProtocolError, match="'0:jump'"):
        composition(tokenizer, "0:jump")


def _trial_q(agent: ICRLAgent, env: gym.Env) -> torch.Tensor:
    result = agent.play(env, n_episodes=2, schedule="uniform", seed=3)
    trial = result.trials[0]
    with torch.no_grad():
        q, _ = agent.network(torch.tensor([trial.input_ids]), torch.tensor([trial.decision_positions]))
    return q[0]


def test_cliff_walking_trains_saves_and_reloads_with_its_new_words(tmp_path):
    args = DQNConfig(output_dir=str(tmp_path / "out"), env_id="CliffWalking-v1", observation_format="index",
                     protocol_format="step", adapter_type="lora", max_steps=2, trials_per_rollout=2,
                     episodes_per_trial=2, learning_starts=2, per_device_train_batch_size=2, eval_maps=0,
                     max_context_tokens=256, disable_tqdm=True, report_to="none", save_strategy="no")
    trainer = DQNTrainer("tiny", args)
    tokenizer = AutoTokenizer.from_pretrained(TINY_BASE_DIR)
    assert len(trainer.processing_class) > len(tokenizer)
    trainer.train()
    trainer.save_model()
    agent = ICRLAgent.from_pretrained(args.output_dir)
    assert agent.config.env_id == "CliffWalking-v1" and len(agent.tokenizer) == len(trainer.processing_class)
    env = gym.make("CliffWalking-v1", max_episode_steps=12)
    result = agent.play(env, n_episodes=2, schedule="uniform", seed=1)
    episodes = agent.protocol.parse(result.trials[0].input_ids)
    assert [sum(e.rewards) for e in episodes] == pytest.approx(list(result.returns[0]))
    trial = result.trials[0]
    with torch.no_grad():
        ids, positions = torch.tensor([trial.input_ids]), torch.tensor([trial.decision_positions])
        trained_q, _ = trainer.q_network(ids, positions)
        reloaded_q, _ = agent.network(ids, positions)
    assert torch.allclose(trained_q, reloaded_q, atol=1e-5)
    # The card's plain-peft snippet grows the base to the added words first; in a fresh process, offline, every
    # saved tensor loads and the Q-values are from_pretrained's.
    plain_peft = re.findall(r"```python\n(.*?)```", (Path(args.output_dir) / "README.md").read_text(), flags=re.S)[1]
    out = fresh_process(plain_peft + f"""
import torch
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
saved = load_file({args.output_dir!r} + "/adapter_model.safetensors")
loaded = get_peft_model_state_dict(model, save_embedding_layers=False)
print("every_tensor", set(saved) == set(loaded) and all(torch.equal(saved[k], loaded[k]) for k in saved))
ids, positions = torch.tensor([{trial.input_ids}]), torch.tensor([{trial.decision_positions}])
reloaded = trl_icrl.ICRLAgent.from_pretrained({args.output_dir!r})
print("same_q", torch.equal(agent.network(ids, positions)[0], reloaded.network(ids, positions)[0]))
""", tmp_path)
    assert "every_tensor True" in out and "same_q True" in out


@pytest.mark.skipif(not (ADAPTER_MODEL / "adapter_config.json").is_file(), reason="committed adapter model")
def test_a_saved_model_meets_an_env_it_never_saw():
    agent = ICRLAgent.from_pretrained(ADAPTER_MODEL)
    lake = gym.make("FrozenLake-v1", is_slippery=False)
    q_before = _trial_q(agent, lake)
    embedding = agent.network.model.get_input_embeddings()
    cliff = agent.for_env("CliffWalking-v1")
    assert len(cliff.tokenizer) > len(agent.tokenizer)
    word = "36:right:-100.0"
    parts = torch.tensor([agent.tokenizer.convert_tokens_to_ids(p) for p in ("36", "right", "-100.0")])
    with torch.no_grad():  # composed from the embeddings as the trained adapter has them
        assert torch.allclose(embedding(torch.tensor([cliff.tokenizer.convert_tokens_to_ids(word)]))[0],
                              embedding(parts).sum(0), atol=1e-5)
    result = cliff.play(gym.make("CliffWalking-v1", max_episode_steps=12), n_episodes=3, schedule="uniform")
    episodes = cliff.protocol.parse(result.trials[0].input_ids)
    assert len(episodes) == 3 and np.isfinite(result.returns).all()
    assert torch.allclose(_trial_q(agent, lake), q_before)  # the words it knew act as before
    with pytest.raises(ValueError, match="6 actions, this agent's Q-values cover 4"):
        agent.for_env("Taxi-v4")


@pytest.mark.skipif(not (ADAPTER_MODEL / "adapter_config.json").is_file(), reason="committed adapter model")
def test_a_grid_written_as_state_ids_in_another_envs_action_words():
    mdp_words = ("north", "east", "south", "west")
    codec = codec_for("FrozenLake-v1", "index", action_words=mdp_words)
    assert (codec.action_words, codec.observation_format, codec.reward_values) == (mdp_words, "index", (1.0,))
    for wrong in (mdp_words[:3], ("north", "north", "south", "west")):
        with pytest.raises(ValueError, match="4 actions with distinct words"):
            codec_for("FrozenLake-v1", action_words=wrong)
    player = ICRLAgent.from_pretrained(ADAPTER_MODEL).for_env("FrozenLake-v1", "index", action_words=mdp_words)
    lake = gym.make("FrozenLake-v1", is_slippery=False, max_episode_steps=8)
    result = player.play(lake, n_episodes=3, schedule="uniform")
    words = player.tokenizer.convert_ids_to_tokens(result.trials[0].input_ids)
    steps = [w.split(":") for w in words if re.fullmatch(r"\d+:[a-z]+(:[-\d.]+)?", w)]
    moves = 0
    for (before, _, *_), (after, word, *reward) in zip(steps, steps[1:]):
        if word == "start":
            continue
        # action i is named mdp_words[i]: the move written is the one the env's table makes
        [(_, next_state, table_reward, _)] = lake.unwrapped.P[int(before)][mdp_words.index(word)]
        assert (int(after), float(reward[0]) if reward else 0.0) == (next_state, table_reward)
        moves += 1
    assert moves >= 3 and sum(w == "start" for _, w, *_ in steps) == 3


def test_one_model_trains_on_several_envs_taking_turns(tmp_path):
    args = DQNConfig(output_dir=str(tmp_path / "out"), train_env_ids=[ENV_ID, "CliffWalking-v1"], max_steps=2,
                     trials_per_rollout=2, episodes_per_trial=2, learning_starts=4, per_device_train_batch_size=2,
                     eval_maps=2, eval_episodes=2, max_context_tokens=256, disable_tqdm=True, report_to="none",
                     save_strategy="no")
    trainer = DQNTrainer("tiny", args)
    assert args.env_id == ENV_ID and trainer.env_specs["CliffWalking-v1"].codec.observation_format == "index"
    assert trainer.reward_path.env_scales == {ENV_ID: 1.0, "CliffWalking-v1": 0.01}  # the cliff's -100 becomes -1
    rows = [trainer.collector.collect()[0] for _ in range(4)]
    assert [r[0]["env_id"] for r in rows] == [ENV_ID, "CliffWalking-v1"] * 2
    summary = trainer.evaluate_in_context()
    assert list(summary["final10_by_env"]) == [ENV_ID]  # CliffWalking-v1 has no held-out maps
    trainer.train()
    trainer.save_model()
    agent = ICRLAgent.from_pretrained(args.output_dir)
    assert agent.config.trained_env_ids == (ENV_ID, "CliffWalking-v1")
    cliff = agent.for_env("CliffWalking-v1")
    assert len(cliff.tokenizer) == len(agent.tokenizer)  # its words were added in training
    result = cliff.play(gym.make("CliffWalking-v1", max_episode_steps=10), n_episodes=2, schedule="uniform")
    assert len(cliff.protocol.parse(result.trials[0].input_ids)) == 2
    evaluated = tmp_path / "envs"
    subprocess.run([sys.executable, str(ROOT / "recipes" / "evaluate_envs.py"), "--model", args.output_dir,
                    "--families", ENV_ID, "--canonical", "CliffWalking-v1", "--n_maps", "2", "--n_contexts", "2",
                    "--n_episodes", "3", "--output_dir", str(evaluated)], check=True, capture_output=True)
    rows = json.loads((evaluated / "envs.json").read_text())["rows"]
    assert set(rows) == {f"{ENV_ID} held-out", "CliffWalking-v1"}
    cliff_ramp = rows["CliffWalking-v1"]["paper_ramp"]
    assert set(cliff_ramp) == {"icrl", "random", "q_learning_zero_init", "q_learning_optimistic"}
    assert all(len(s["success_per_episode"]) == 3 and s["mean_return"] < 0 for s in cliff_ramp.values())
    text = (evaluated / "envs.md").read_text()
    assert (evaluated / "envs.png").is_file() and "| CliffWalking-v1 | greedy |" in text
    random = cliff_ramp["random"]  # the in-context table: first-10 / final-10 / episodes to the first success
    assert (f"{np.mean(random['success_per_episode'][:10]):.3f} / {random['final10_success']:.3f} / "
            f"{random['episodes_to_first_success']:.1f}") in text.split("episodes to first success")[1]
    with pytest.raises(ValueError, match="as many actions each"):
        DQNTrainer("tiny", DQNConfig(output_dir=str(tmp_path / "taxi"), train_env_ids=[ENV_ID, "Taxi-v4"],
                                     report_to="none"))


FULL_FINE_TUNE = ROOT / "results" / "tiny_full_finetune_online"


@pytest.mark.skipif(not (FULL_FINE_TUNE / "icrl_config.json").is_file(), reason="committed full fine-tune")
def test_a_full_fine_tune_meets_a_new_env_and_plays_untrained_there():
    agent = ICRLAgent.from_pretrained(FULL_FINE_TUNE)
    with agent.network.untrained():  # before the new words: the base's own vocabulary size
        _trial_q(agent, gym.make("FrozenLake-v1", is_slippery=False))
    cliff = agent.for_env("CliffWalking-v1")
    word_id = cliff.tokenizer.convert_tokens_to_ids("36:right:-100.0")
    parts = torch.tensor([agent.tokenizer.convert_tokens_to_ids(p) for p in ("36", "right", "-100.0")])
    embedding = cliff.network.model.get_input_embeddings()
    env = gym.make("CliffWalking-v1", max_episode_steps=12)
    trained_q = _trial_q(cliff, env)
    with torch.no_grad(), cliff.network.untrained():  # the base grown by the same composition, from its embeddings
        assert embedding.weight.shape[0] == len(cliff.tokenizer)
        assert torch.allclose(embedding.weight[word_id], embedding.weight[parts].sum(0), atol=1e-5)
        untrained_q = _trial_q(cliff, env)
    assert not torch.allclose(trained_q, untrained_q)
    assert torch.equal(_trial_q(cliff, env), trained_q)  # the trained weights come back
