"""Bad input is rejected before any work starts, with a message naming the field and the allowed range."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from accelerate.utils import DistributedType

from trl_icrl import (
    DQNConfig,
    DQNTrainer,
    ExplorationSchedule,
    ICRLAgent,
    ProtocolError,
    ReplayStore,
    ReplayStoreError,
    RolloutEngine,
    TokenProtocol,
    build_tokenizer,
)
from trl_icrl.agent.q_network import add_q_head, build_q_network, make_peft_config
from trl_icrl.replay_store import collate_trials
from trl_icrl.trainer.sharding import parameter_sharding, requested_sharding


def config(tmp_path, **overrides) -> DQNConfig:
    kwargs = dict(output_dir=str(tmp_path / "out"), eval_maps=0, trials_per_rollout=2, episodes_per_trial=2,
                  learning_starts=2, max_context_tokens=256, disable_tqdm=True)
    return DQNConfig(**{**kwargs, **overrides})


def test_context_longer_than_model_positions(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="max_context_tokens=9000 exceeds the model's max_position_embeddings=8192"):
        DQNTrainer(str(tiny_dir), config(tmp_path, max_context_tokens=9000))


def test_env_with_other_action_count(tiny_lm, protocol, env_codec):
    net = build_q_network(tiny_lm, 4, protocol.action_token_ids, "value_head", make_peft_config("lora", "value_head"))
    engine = RolloutEngine(net, protocol, env_codec)
    with pytest.raises(ValueError, match="env has 6 actions but the codec \\(and Q head\\) has 4"):
        engine.play([gym.make("Taxi-v4")], 1, ExplorationSchedule.parse("greedy"), np.random.default_rng(0))
    with pytest.raises(ValueError, match="the model's Q head has 4 actions, the env has 6"):
        add_q_head(net.causal_lm, 6)


def test_tokenizer_without_protocol_tokens(env_codec):
    tokenizer = build_tokenizer(["<ep>", "</ep>", "<trunc>", "left", "down", "right", "up"])
    with pytest.raises(ProtocolError, match="lacks protocol token\\(s\\) in 'r0 c0'"):
        TokenProtocol(tokenizer, "compact", env_codec.action_words, env_codec.observation_texts(), (1.0,))


def test_unknown_parameterisation_and_adapter():
    with pytest.raises(ValueError, match="q_parameterisation must be one of \\('value_head', 'action_logits'\\)"):
        make_peft_config("lora", "softmax")
    with pytest.raises(ValueError, match="adapter_type must be one of \\('none', 'lora', 'ia3'\\)"):
        make_peft_config("dora", "value_head")


def test_replay_store_missing_corrupted_or_foreign(tmp_path):
    with pytest.raises(ReplayStoreError, match="no replay store at"):
        ReplayStore.load_from_disk(tmp_path / "nowhere")
    store = ReplayStore(4, "protocol-a")
    store.append([{"input_ids": [1, 2], "decision_positions": [0], "actions": [0], "rewards": [0.0], "dones": [1],
                   "next_positions": [-1], "episode_index": [0], "episode_offsets": [0], "env_id": "e",
                   "env_map": "", "seed": 0, "policy": "online"}])
    store.save_to_disk(tmp_path / "rs")
    with pytest.raises(ReplayStoreError, match="written for protocol 'protocol-a', not 'protocol-b'"):
        ReplayStore.load_from_disk(tmp_path / "rs", "protocol-b")
    for f in (tmp_path / "rs").glob("*.arrow"):
        f.write_bytes(b"garbage")
    with pytest.raises(ReplayStoreError, match="is corrupted"):
        ReplayStore.load_from_disk(tmp_path / "rs", "protocol-a")


def test_trainer_rejects_store_of_another_protocol(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="replay store protocol 'other'"):
        DQNTrainer(str(tiny_dir), config(tmp_path), replay_store=ReplayStore(4, "other"))


def test_offline_training_needs_data(tiny_dir, tmp_path):
    trainer = DQNTrainer(str(tiny_dir), config(tmp_path, online_collection=False, max_steps=1))
    with pytest.raises(ValueError, match="online_collection=False needs a non-empty replay store"):
        trainer.train()


def test_non_finite_q_stops_with_step_and_cause(tiny_dir, tmp_path):
    trainer = DQNTrainer(str(tiny_dir), config(tmp_path))
    rows, _ = trainer.collector.collect()
    batch = collate_trials(rows, trainer.pad_token_id)
    for name, p in trainer.q_network.weights().items():
        if "q_head" in name:
            p.data.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="at step 0 .*lower learning_rate"):
        trainer.compute_loss(trainer.q_network, batch)
    assert not torch.isfinite(trainer.q_network(batch["input_ids"], batch["decision_positions"])[0]).all()


@pytest.mark.parametrize("name", ["/no/such/dir", "./outputs/no_such_run", "no-such-user/no-such-agent"])
def test_agent_from_a_missing_directory_names_it(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"local directory {name} does not exist"):
        ICRLAgent.from_pretrained(name)


def test_parameter_sharding_backends_are_named():
    """FSDP and ZeRO-3 shard parameters (DQNTrainer refuses them at init); DDP and ZeRO-2 keep them whole."""
    assert parameter_sharding(DistributedType.FSDP) == "FSDP"
    assert parameter_sharding(DistributedType.DEEPSPEED, zero_stage=3) == "DeepSpeed ZeRO-3"
    assert parameter_sharding(DistributedType.DEEPSPEED, zero_stage=2) is None
    assert parameter_sharding(DistributedType.MULTI_CPU) is None and parameter_sharding(DistributedType.NO) is None


@pytest.mark.parametrize("environment,expected", [({"ACCELERATE_USE_FSDP": "true"}, "FSDP"),
                                                  ({"ACCELERATE_USE_DEEPSPEED": "true",
                                                    "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, "DeepSpeed ZeRO-3"),
                                                  ({"ACCELERATE_USE_DEEPSPEED": "true",
                                                    "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}, None)])
def test_sharding_launch_is_refused_before_any_work(tmp_path, monkeypatch, environment, expected):
    """What ``accelerate launch --config_file recipes/accelerate/fsdp.yaml`` (or ZeRO-3) sets is refused before the
    model loads or offline data is made."""
    args = config(tmp_path, offline_data="q_learning")  # (TrainingArguments with that environment wants deepspeed)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert requested_sharding(args) == expected
    if expected is None:
        return

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the refusal")

    monkeypatch.setattr("trl_icrl.trainer.model_loading.AutoModelForCausalLM.from_pretrained", no_work)
    monkeypatch.setattr("trl_icrl.trainer.replay_data.spec_offline_trials", no_work)
    with pytest.raises(ValueError, match=f"does not support {expected}"):
        DQNTrainer("tiny", args)
