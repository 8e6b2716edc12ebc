import ast
import json
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, ProgressCallback, TrainerControl, TrainerState
from transformers.integrations.sdpa_attention import sdpa_attention_forward

import trl_icrl.precision
import trl_icrl.trainer.callbacks
from trl_icrl import DQNConfig, DQNTrainer, Episode, ExplorationSchedule, ReplayStore, RolloutEngine
from trl_icrl.agent.kv_cache import decoding_attention_forward
from trl_icrl.agent.q_network import (
    ONLINE,
    TARGET,
    QNetwork,
    add_q_head,
    build_q_network,
    load_q_head,
    make_peft_config,
)
from trl_icrl.envs import ENV_ID
from trl_icrl.precision import cpu_supports_bf16
from trl_icrl.protocol import CONTINUE, TERMINATED, TRUNCATED
from trl_icrl.replay_store import collate_trials
from trl_icrl.trainer import td_targets
from trl_icrl.trainer.callbacks import (
    EnvInteractionCallback,
    MinutesProgressCallback,
    TargetNetworkCallback,
    WallClockLimitCallback,
)
from trl_icrl.trainer.collector import TrialCollector
from trl_icrl.trainer.replay_data import ReplayBatches
from trl_icrl.trainer.rewards import RewardPath, env_goal_reward, env_reward_scale


def test_td_targets_by_hand():
    """One trial: [s0 -> s1 -> terminal goal (r=1)], [s3 -> truncated at s4]; gamma 0.5."""
    rewards = torch.tensor([[0.0, 1.0, 0.0]])
    dones = torch.tensor([[CONTINUE, TERMINATED, TRUNCATED]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    online = torch.tensor([[[1.0, 3.0], [0.0, 0.0], [5.0, 2.0]]])  # argmax: 1, -, 0
    target = torch.tensor([[[10.0, 20.0], [99.0, 99.0], [4.0, 8.0]]])
    y = td_targets(rewards, dones, mask, online, target, gamma=0.5)
    # d0: 0 + 0.5 * target[a*=1] = 10;  d1: terminal, r only = 1;  d2: truncation bootstraps: 0.5 * target[a*=0] = 2
    assert torch.allclose(y, torch.tensor([[10.0, 1.0, 2.0]]))
    y_plain = td_targets(rewards, dones, mask, online, target, gamma=0.5, double_dqn=False)
    assert torch.allclose(y_plain, torch.tensor([[10.0, 1.0, 4.0]]))  # max over target: 20 -> 10, 8 -> 4
    y2 = td_targets(rewards, dones, mask, online, target, gamma=0.5, n_step=2)
    # d0: r0 + 0.5 r1, stops at the terminal: 0.5; d1 and d2 unchanged
    assert torch.allclose(y2, torch.tensor([[0.5, 1.0, 2.0]]))
    assert td_targets(rewards, dones, torch.zeros_like(mask), online, target, gamma=0.5).abs().sum() == 0


def test_n_step_targets_bootstrap_from_the_state_n_steps_on():
    """Four steps of one episode ending in a truncation, n_step 2, gamma 0.5: every target sums two rewards and
    bootstraps from the state two steps on (the truncated last state bootstraps too), through double DQN."""
    rewards = torch.tensor([[0.5, 0.25, 1.0, 0.0]])
    dones = torch.tensor([[CONTINUE, CONTINUE, CONTINUE, TRUNCATED]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    online = torch.tensor([[[1.0, 0.0]] * 4])  # the online net picks action 0 everywhere ...
    target = torch.tensor([[[8.0, 80.0], [4.0, 40.0], [2.0, 20.0], [6.0, 60.0]]])  # ... the target values it
    y = td_targets(rewards, dones, mask, online, target, gamma=0.5, n_step=2)
    # d0: 0.5 + 0.5 * 0.25 + 0.25 * 4 = 1.625; d1: 0.25 + 0.5 * 1 + 0.25 * 2 = 1.25; d2: 1 + 0 + 0.25 * 6 = 2.5;
    # d3: the truncation stops the sum after one step: 0 + 0.5 * 6 = 3
    assert torch.allclose(y, torch.tensor([[1.625, 1.25, 2.5, 3.0]]))


@pytest.mark.parametrize("loss_type,expected", [("huber", 0.25), ("mse", 0.5), ("normalized_mse", 0.125)])
def test_td_loss_types_by_hand(loss_type, expected):
    """Q (1, 2) against targets (2, 2), and the same with every sign flipped (negative rewards, as in cliff
    walking): the paper's normalised MSE divides by the targets' mean magnitude, 2."""
    trainer = SimpleNamespace(args=SimpleNamespace(loss_type=loss_type))
    for sign in (1.0, -1.0):
        loss = DQNTrainer.td_loss(trainer, sign * torch.tensor([1.0, 2.0]), sign * torch.tensor([2.0, 2.0]))
        assert loss.item() == pytest.approx(expected)


@pytest.mark.parametrize("adapter_type,q_param", [("lora", "value_head"), ("ia3", "action_logits"),
                                                  ("ia3", "value_head"), ("lora", "action_logits"),
                                                  ("none", "value_head"), ("none", "action_logits")])
def test_save_reload_identical_q(tiny_dir, tiny_lm, protocol, tmp_path, adapter_type, q_param):
    net = build_q_network(tiny_lm, 4, protocol.action_token_ids, q_param, make_peft_config(adapter_type, q_param))
    for p in net.weights(ONLINE).values():
        p.data.add_(torch.randn_like(p) * 0.05)
    ids = torch.randint(2, 100, (2, 40))
    positions = torch.tensor([[3, 9, 30], [1, 2, 39]])
    q, _ = net(ids, positions)
    net.model.save_pretrained(tmp_path)
    if adapter_type == "none":  # full fine-tuning: every weight trains and one file holds them, Q head included
        assert not net.is_peft and all(p.requires_grad for p in net.model.parameters())
        model = AutoModelForCausalLM.from_pretrained(tmp_path)
        if q_param == "value_head":
            add_q_head(model, 4)
            load_q_head(model, tmp_path)
    else:
        model = AutoModelForCausalLM.from_pretrained(tiny_dir)
        if q_param == "value_head":
            add_q_head(model, 4)
        model = PeftModel.from_pretrained(model, tmp_path)
    assert torch.equal(QNetwork(model, q_param, protocol.action_token_ids)(ids, positions)[0], q)


def test_untrained_plays_the_initial_weights(tiny_lm, protocol):
    net = build_q_network(tiny_lm, 4, protocol.action_token_ids, "value_head", None)
    ids, positions = torch.randint(2, 100, (1, 20)), torch.tensor([[5, 19]])
    before = net(ids, positions)[0]
    for p in net.model.parameters():
        p.data.add_(0.1)
    after = net(ids, positions)[0]
    assert not torch.allclose(before, after)
    with net.untrained():
        assert torch.equal(net(ids, positions)[0], before)
    assert torch.equal(net(ids, positions)[0], after)


@pytest.mark.parametrize("adapter_type", ["lora", "ia3", "none"])
def test_target_moves_by_tau_and_base_is_frozen(tiny_lm, protocol, adapter_type):
    net = build_q_network(tiny_lm, 4, protocol.action_token_ids, "value_head",
                          make_peft_config(adapter_type, "value_head"))
    online, target = net.weights(ONLINE), net.weights(TARGET)
    assert len(online) > 2 and any("q_head" in k for k in online)  # adapter (or all) weights and the Q head
    assert all(not p.requires_grad for p in target.values())
    assert all(p.data_ptr() != target[k].data_ptr() for k, p in online.items())  # a copy, not shared storage
    assert online.keys() == target.keys() and all(torch.equal(online[k], target[k]) for k in online)
    for p in online.values():
        p.data.add_(1.0)
    before = {k: v.clone() for k, v in target.items()}
    net.polyak_update(0.1)
    for k in online:
        assert torch.allclose(target[k], before[k] + 0.1 * (online[k] - before[k]), atol=1e-6)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    if adapter_type == "none":  # every online weight trains, no target weight does
        assert trainable == {f"model.{n}" for n in online}
    else:
        assert trainable and all(ONLINE in n.split(".") for n in trainable)
    ids, positions = torch.randint(2, 100, (1, 12)), torch.tensor([[4, 11]])
    with net.using_adapter(TARGET):
        q_target = net(ids, positions)[0]
    assert not torch.allclose(q_target, net(ids, positions)[0])  # the target acts inside the block only
    assert {n for n, p in net.named_parameters() if p.requires_grad} == trainable


@pytest.mark.parametrize("pad_to_decision", [False, True])
@pytest.mark.parametrize("fmt,adapter_type", [("compact", "lora"), ("step", "none")])
def test_kv_cached_rollout_matches_full_forward(tiny_lm, tokenizer, env_codec, fmt, adapter_type, pad_to_decision):
    """The Q-values that chose greedy actions equal those of one forward over the finished trial."""
    import gymnasium as gym

    from trl_icrl import TokenProtocol

    protocol = TokenProtocol(tokenizer, fmt, env_codec.action_words, env_codec.observation_texts(),
                             env_codec.reward_values)
    net = build_q_network(tiny_lm, 4, protocol.action_token_ids, "value_head",
                          make_peft_config(adapter_type, "value_head"))
    for p in net.weights(ONLINE).values():
        p.data.add_(torch.randn_like(p) * 0.05)
    engine = RolloutEngine(net, protocol, env_codec, max_context_tokens=4096, pad_to_decision=pad_to_decision)
    envs = [gym.make("trl_icrl/ParametricFrozenLake-v0", desc=d) for d in (["SFF", "FHF", "FFG"], ["SFFF", "FFHG"])]
    result = engine.play(envs, 4, ExplorationSchedule.parse("greedy"), np.random.default_rng(0), reset_seeds=[0, 1])
    for trial in result.trials:
        q, _ = net(torch.tensor([trial.input_ids]), torch.tensor([trial.decision_positions]))
        assert q[0].argmax(-1).tolist() == trial.actions
        assert len(trial.episode_offsets) == 4


@pytest.mark.parametrize("q_len,masked", [(1, False), (1, True), (3, True)])
def test_decoding_attention_equals_sdpa(q_len, masked):
    """The rollouts' attention for steps of a few tokens (grouped query heads over their shared key/value heads,
    padding masked) gives SDPA's output."""
    generator = torch.Generator().manual_seed(0)
    module = SimpleNamespace(training=False, num_key_value_groups=3, is_causal=True)
    query, key, value = (torch.randn(shape, generator=generator) for shape in ((2, 6, q_len, 8), (2, 2, 10, 8),
                                                                               (2, 2, 10, 8)))
    mask = None
    if masked:
        mask = torch.ones(2, 1, q_len, 10, dtype=torch.bool).tril(10 - q_len)
        mask[0, ..., :4] = False  # a left-padded row
    ours, _ = decoding_attention_forward(module, query, key, value, mask, scaling=8 ** -0.5)
    reference, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=8 ** -0.5)
    assert ours.shape == (2, q_len, 6, 8) and torch.allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("pad_to_decision", [False, True])
def test_rows_play_in_a_batch_as_they_play_alone(tiny_lm, protocol, env_codec, pad_to_decision):
    """Greedy rows that drop old episodes (re-encoding their cache rows) and finish at different times act in a
    batch exactly as each does alone, with or without padded feeding."""
    import gymnasium as gym

    net = build_q_network(tiny_lm, 4, protocol.action_token_ids, "value_head", make_peft_config("lora", "value_head"))
    for p in net.weights(ONLINE).values():
        p.data.add_(torch.randn_like(p, generator=torch.Generator().manual_seed(0)) * 0.05)
    engine = RolloutEngine(net, protocol, env_codec, max_context_tokens=160, pad_to_decision=pad_to_decision)
    maps = (["SFF", "FHF", "FFG"], ["SFFF", "FFHG"], ["SFG"], ["SFFFF", "FHFHF", "FFFFG"])
    greedy = ExplorationSchedule.parse("greedy")

    def played(descs, rows):
        envs = [gym.make("trl_icrl/ParametricFrozenLake-v0", desc=d, max_episode_steps=8 + 6 * i)
                for d, i in zip(descs, rows)]
        return engine.play(envs, 6, greedy, np.random.default_rng(0), reset_seeds=rows)

    batch = played(maps, [0, 1, 2, 3])
    assert engine._cache.layers[0].keys.shape[0] < len(maps)  # rows that finished left the batch
    assert len({int(n) for n in batch.lengths.sum(1)}) > 1 and \
        any(len(t.actions) < n for t, n in zip(batch.trials, batch.lengths.sum(1)))  # some dropped episodes
    for i, desc in enumerate(maps):
        alone = played([desc], [i])
        assert alone.trials[0].actions == batch.trials[i].actions
        assert alone.lengths[0].tolist() == batch.lengths[i].tolist()


def test_padded_feeding_reaches_every_decision_in_one_forward(tiny_lm, env_codec):
    """With the ``llama3`` format rows write different numbers of tokens per step; ``pad_to_decision`` feeds
    them all in one forward per round of decisions (the same actions), the unpadded way needs several."""
    import gymnasium as gym

    from trl_icrl import TokenProtocol
    from trl_icrl.tiny_model import llama3_tokenizer

    protocol = TokenProtocol(llama3_tokenizer(), "llama3", env_codec.action_words, env_codec.observation_texts(),
                             env_codec.reward_values)
    tiny_lm.resize_token_embeddings(max(tiny_lm.get_input_embeddings().num_embeddings, len(llama3_tokenizer())))
    net = build_q_network(tiny_lm, 4, protocol.action_token_ids, "value_head", make_peft_config("none", "value_head"))
    maps = (["SFF", "FHF", "FFG"], ["SFFF", "FFHG"], ["SFFFF", "FHFHF", "FFFFG"])
    played = {}
    for pad in (False, True):
        engine = RolloutEngine(net, protocol, env_codec, max_context_tokens=2048, pad_to_decision=pad)
        forwards = []
        engine._forward = lambda *a, f=engine._forward, n=forwards, **k: n.append(1) or f(*a, **k)
        envs = [gym.make("trl_icrl/ParametricFrozenLake-v0", desc=d, max_episode_steps=12) for d in maps]
        result = engine.play(envs, 5, ExplorationSchedule.parse("paper_ramp"), np.random.default_rng(0),
                             reset_seeds=[0, 1, 2])
        played[pad] = ([t.actions for t in result.trials], len(forwards), int(result.lengths.sum(1).max()))
    assert played[True][0] == played[False][0]
    assert played[True][1] <= played[True][2] + 1 < played[False][1]  # one forward per step of the longest row


def test_context_window_drops_whole_episodes(tiny_lm, protocol, env_codec):
    import gymnasium as gym

    net = build_q_network(tiny_lm, 4, protocol.action_token_ids, "value_head",
                          make_peft_config("lora", "value_head"))
    engine = RolloutEngine(net, protocol, env_codec, max_context_tokens=200)
    envs = [gym.make("trl_icrl/ParametricFrozenLake-v0", desc=["SFF", "FHF", "FFG"])]
    result = engine.play(envs, 12, ExplorationSchedule.parse("uniform"), np.random.default_rng(0), reset_seeds=[0])
    trial = result.trials[0]
    assert len(trial.input_ids) <= 200
    assert len(trial.actions) < result.env_steps  # old episodes were dropped ...
    assert trial.episode_offsets[0] == 0 and trial.input_ids[0] == protocol.episode_start[0]  # ... whole
    assert protocol.parse(trial.input_ids)  # and what is left parses
    assert not np.isnan(result.successes).any()  # all 12 episodes were played


def small_config(tmp_path, **overrides) -> DQNConfig:
    kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=20, trials_per_rollout=4, episodes_per_trial=4,
                  learning_starts=4, rollout_interval=100, per_device_train_batch_size=4, eval_maps=5,
                  logging_steps=5, max_context_tokens=512, learning_rate=3e-3, seed=0, disable_tqdm=True,
                  report_to="none")
    kwargs.update(overrides)
    return DQNConfig(**kwargs)


@pytest.mark.parametrize("adapter_type", ["none", "lora"])
def test_training_reduces_td_loss_on_fixed_batch(tiny_dir, tmp_path, adapter_type):
    trainer = DQNTrainer(str(tiny_dir), small_config(tmp_path, adapter_type=adapter_type))
    rows, _ = trainer.collector.collect()
    trainer.replay_store.append(rows)
    batch = collate_trials(trainer.replay_store.rows(range(4)), trainer.pad_token_id)
    base = {n: p.clone() for n, p in trainer.q_network.named_parameters() if ".base_layer." in n}

    def loss() -> float:
        with torch.no_grad():
            return trainer.compute_loss(trainer.q_network, batch).item()

    before = loss()
    trainer.train()
    assert loss() < before
    for n, p in trainer.q_network.named_parameters():
        if n in base:
            assert torch.equal(p, base[n]), f"base weight {n} changed"
    assert any("td_loss" in log for log in trainer.state.log_history)


def test_replay_store_save_load(tmp_path):
    store = ReplayStore(capacity=3, protocol_signature="p")
    row = {"input_ids": [1, 2, 3], "decision_positions": [1], "actions": [2], "rewards": [1.0], "dones": [1],
           "next_positions": [-1], "episode_index": [0], "episode_offsets": [0], "env_id": "e", "env_map": "SG",
           "seed": 7, "policy": "online"}
    store.append([dict(row, seed=s) for s in range(5)])
    assert len(store) == 3 and [r["seed"] for r in store.rows(range(3))] == [2, 3, 4]  # FIFO
    store.save_to_disk(tmp_path / "rs")
    loaded = ReplayStore.load_from_disk(tmp_path / "rs", "p")
    assert loaded.rows(range(3)) == store.rows(range(3)) and loaded.total_appended == 5
    rng = np.random.default_rng(0)
    recent = store.sample_indices(4000, rng, recency=3.0)
    assert np.mean(recent == 2) > np.mean(recent == 0) * 3


def test_the_reward_path_scales_each_trials_rewards_by_its_env():
    store = ReplayStore(capacity=10, protocol_signature="p")
    row = {"input_ids": [1, 2, 3, 4], "decision_positions": [1, 2], "actions": [2, 0], "dones": [0, 1],
           "next_positions": [2, -1], "episode_index": [0, 0], "episode_offsets": [0], "env_map": "SG", "seed": 0,
           "policy": "online"}
    store.append([dict(row, env_id="lake", rewards=[0.0, 1.0]), dict(row, env_id="cliff", rewards=[-1.0, -100.0])])

    def rewards_of(**path) -> set[tuple[float, ...]]:
        path = RewardPath(**path)
        batch = next(iter(ReplayBatches(store, 32, pad_token_id=0, seed=0, reward_path=path)))
        return {tuple(round(x, 6) for x in r)
                for r in path.rewards(batch["rewards"], batch["dones"], batch["env_index"]).tolist()}

    assert rewards_of(env_scales={"lake": 1.0, "cliff": 0.01}) == {(0.0, 1.0), (-0.01, -1.0)}
    signs = rewards_of(env_scales={"lake": 1.0, "cliff": 1.0}, clip="sign")
    assert signs == {(0.0, 1.0), (-1.0, -1.0)}  # DQN's clipping: a step costs a fall's 1
    assert rewards_of(env_scales={"lake": 1.0, "cliff": 0.1}, clip="unit") == {(0.0, 1.0), (-0.1, -1.0)}
    goal = rewards_of(env_scales={"lake": 1.0, "cliff": 0.01}, goal_rewards={"lake": 0.0, "cliff": 1.0})
    assert goal == {(0.0, 1.0), (-0.01, 0.0)}  # a goal's 1 at the end
    # reward_scale multiplies last, after the clip: the paper's 30 on a clipped fall gives -30, not -1
    assert rewards_of(env_scales={"lake": 1.0, "cliff": 0.1}, clip="unit", reward_scale=30.0) == \
        {(0.0, 30.0), (-3.0, -30.0)}
    with pytest.raises(ValueError, match="reward_clip must be None, 'sign' or 'unit', got 'tanh'"):
        RewardPath({"lake": 1.0}, clip="tanh")
    store.append([dict(row, env_id="taxi", rewards=[-1.0, 20.0])])
    with pytest.raises(ValueError, match=r"\['taxi'\], an env this trainer does not train on"):
        path = RewardPath({"lake": 1.0, "cliff": 0.01})
        for _ in zip(range(20), ReplayBatches(store, 8, 0, seed=1, reward_path=path)):
            pass


def test_the_reward_path_targets_are_td_targets_of_its_rewards():
    """One call, one order: env scale, goal, clip, reward_scale, then the n-step target (by hand: gamma 0.5)."""
    path = RewardPath({"lake": 1.0, "cliff": 0.1}, {"cliff": 1.0}, clip="unit", reward_scale=2.0, gamma=0.5)
    rewards = torch.tensor([[-1.0, -100.0]])
    dones = torch.tensor([[CONTINUE, TERMINATED]])
    next_q = torch.tensor([[[4.0, 0.0], [9.0, 9.0]]])
    targets = path.targets(rewards, dones, torch.ones(1, 2, dtype=torch.bool), torch.tensor([1]), next_q, next_q)
    # step 0: -1 * 0.1 * 2 + 0.5 * 4; step 1: clip(-100 * 0.1 + 1) * 2, terminal
    assert targets[0].tolist() == pytest.approx([-0.2 + 2.0, -2.0])


def test_reward_path_of_specs_takes_each_envs_scale_and_goal_and_the_normalisations_clip():
    specs = {"lake": SimpleNamespace(reward_scale=1.0, goal_reward=0.0),
             "cliff": SimpleNamespace(reward_scale=0.1, goal_reward=1.0)}
    assert RewardPath.of_specs(specs, "horizon", reward_scale=2.0) == \
        RewardPath({"lake": 1.0, "cliff": 0.1}, {"lake": 0.0, "cliff": 1.0}, "unit", 2.0)
    assert RewardPath.of_specs(specs, "goal").clip is None and RewardPath.of_specs(specs, "sign").clip == "sign"


BF16 = pytest.param("bf16", marks=pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU runs no bf16 matmuls"))


@pytest.mark.parametrize("precision", ["fp32", BF16])
@pytest.mark.parametrize("adapter_type,weights", [("none", "model.safetensors"), ("lora", "adapter_model.safetensors")])
def test_resume_from_checkpoint_matches_uninterrupted_run(tiny_dir, tmp_path, adapter_type, weights, precision):
    """Online and target weights, optimizer, RNGs, sampler, collector and replay store all come back."""
    settings = dict(max_steps=4, save_strategy="steps", save_steps=2, rollout_interval=2, adapter_type=adapter_type,
                    precision=precision)
    uninterrupted = DQNTrainer(str(tiny_dir), small_config(tmp_path, **settings))
    uninterrupted.train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    assert (checkpoint / "replay_store").is_dir() and (checkpoint / "target" / weights).is_file()
    assert not (tmp_path / "out" / ".staging" / "checkpoint-2").exists()  # written aside, then renamed
    at_checkpoint = ReplayStore.load_from_disk(checkpoint / "replay_store")
    resumed = DQNTrainer(str(tiny_dir), small_config(tmp_path / "again", **settings))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 4
    assert resumed.replay_store.rows(range(len(at_checkpoint))) == at_checkpoint.rows(range(len(at_checkpoint)))
    assert resumed.replay_store.rows(range(len(resumed.replay_store))) == \
        uninterrupted.replay_store.rows(range(len(uninterrupted.replay_store)))
    for name in (ONLINE, TARGET):
        a, b = uninterrupted.q_network.weights(name), resumed.q_network.weights(name)
        assert a and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name


def test_collections_take_schedules_in_turn(tiny_dir, tmp_path):
    trainer = DQNTrainer(str(tiny_dir), small_config(tmp_path, exploration="uniform+greedy", eval_maps=0))
    used = []
    for _ in range(3):
        trainer.collector.collect()
        used.append(trainer.collector.schedule.probabilities)
    assert used == [(0.0,), (1.0,), (0.0,)]
    with pytest.raises(ValueError, match="unknown exploration schedule"):
        DQNConfig(output_dir="x", exploration="paper_ramp+sometimes")


@pytest.mark.parametrize("precision", ["fp32", BF16])
def test_same_seed_same_rows_and_weights(tiny_dir, tmp_path, precision):
    runs = [DQNTrainer(str(tiny_dir), small_config(tmp_path / str(i), max_steps=3, precision=precision))
            for i in range(2)]
    for run in runs:
        run.train()
    assert runs[0].replay_store.rows(range(4)) == runs[1].replay_store.rows(range(4))
    a, b = (r.q_network.weights(ONLINE) for r in runs)
    assert a and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("rewards,normalisation,gamma,scale", [
    ((-1.0, -100.0), "max", 0.9, 0.01), ((-1.0, -100.0), "horizon", 0.9, 0.1), ((-1.0, -100.0), "horizon", 0.99, 0.01),
    ((1.0,), "horizon", 0.9, 1.0), ((-1.0, 20.0, -10.0), "horizon", 0.8, 0.2), ((-1.0, -100.0), "sign", 0.9, 1.0),
    ((), "max", 0.9, 1.0), ((-1.0, -100.0), "goal", 0.9, 0.01)])
def test_env_reward_scale_brings_a_step_cost_to_the_discount_horizon(rewards, normalisation, gamma, scale):
    assert env_reward_scale(rewards, normalisation, gamma) == pytest.approx(scale)


def test_goal_normalisation_rewards_the_goal_of_envs_that_only_cost():
    assert env_goal_reward((-1.0, -100.0), "goal") == 1.0  # the cliff: episodes end only at its goal
    assert env_goal_reward((1.0,), "goal") == env_goal_reward((-1.0, 20.0, -10.0), "goal") == 0.0  # a goal pays
    assert env_goal_reward((-1.0, -100.0), "max") == 0.0


def test_config_rejects_bad_values():
    for field, value, message in [("gamma", 1.5, "gamma must be in \\[0, 1\\]"), ("tau", 0.0, "tau must be in"),
                                  ("episodes_per_trial", 0, "episodes_per_trial must be >= 1"),
                                  ("q_parameterisation", "softmax", "q_parameterisation must be one of"),
                                  ("adapter_type", "dora", "adapter_type must be one of"),
                                  ("exploration", "sometimes", "unknown exploration schedule"),
                                  ("learning_rate", -1.0, "learning_rate must be > 0, got -1.0"),
                                  ("reward_normalisation", "clip", "reward_normalisation must be one of .*'sign'"),
                                  ("protocol_format", "xml", "protocol_format must be one of .*'chat'")]:
        with pytest.raises(ValueError, match=message):
            DQNConfig(output_dir="x", **{field: value})
    with pytest.raises(ValueError, match="map_family must be one of \\['cliff'\\] for .*CliffWalking"):
        DQNConfig(output_dir="x", train_env_ids=["trl_icrl/ParametricCliffWalking-v0", "trl_icrl/RandomMDP-v0"],
                  map_family="up_to_8")
    cliff_only = DQNConfig(output_dir="x", train_env_ids=["trl_icrl/ParametricCliffWalking-v0"], map_family="null")
    assert cliff_only.map_family == "cliff"  # unset: the first env's first family, resolved once, here
    assert cliff_only.env_id == "trl_icrl/ParametricCliffWalking-v0"


def test_the_trainer_never_writes_its_args(tiny_dir, tmp_path):
    """Defaults are resolved by DQNConfig; the trainer (set-up, training, push) leaves its args as given."""
    args = small_config(tmp_path, max_steps=1, eval_maps=0)
    given = args.to_dict()
    trainer = DQNTrainer(str(tiny_dir), args)
    trainer.train()
    trainer.save_model()
    assert args.to_dict() == given
    assert trainer.env_spec.family_name == args.map_family == "id" and trainer.env_ids == [args.env_id]


def test_writes_demonstrations_into_context(protocol):
    writer = protocol.new_trial()
    writer.write_episode(Episode(["r0 c0"], [2], [1.0], terminated=True))
    assert protocol.parse(writer.trial.input_ids)[0].rewards == [1.0]


@pytest.mark.parametrize("env_id", ["CliffWalking-v1", "Taxi-v4"])
def test_any_discrete_env_speaks_the_protocol(tiny_lm, tokenizer, env_id):
    import gymnasium as gym

    from trl_icrl import TokenProtocol, codec_for

    codec = codec_for(env_id)
    protocol = TokenProtocol(tokenizer, "compact", codec.action_words, codec.observation_texts(),
                             codec.reward_values)
    net = build_q_network(tiny_lm, codec.n_actions, protocol.action_token_ids, "value_head",
                          make_peft_config("lora", "value_head"))
    envs = [gym.make(env_id, max_episode_steps=15) for _ in range(2)]
    result = RolloutEngine(net, protocol, codec).play(envs, 2, ExplorationSchedule.parse("uniform"),
                                                        np.random.default_rng(0), reset_seeds=[0, 1])
    for trial, returns in zip(result.trials, result.returns):
        episodes = protocol.parse(trial.input_ids)
        assert len(episodes) == 2
        assert [sum(e.rewards) for e in episodes] == pytest.approx(list(returns))


def test_offline_training_from_scripted_behaviour(tiny_dir, tmp_path):
    from trl_icrl.offline_data import offline_store

    args = small_config(tmp_path, online_collection=False, max_steps=2)
    probe = DQNTrainer(str(tiny_dir), args)
    store = offline_store(probe.env_spec.protocol, probe.env_spec.codec, args.env_id, "mixed", 4,
                          probe.replay_store.protocol_signature, episodes_per_trial=3, progress=False)
    assert sorted(set(store.dataset["policy"])) == ["epsilon_optimal_0.3", "epsilon_optimal_0.9"]
    trainer = DQNTrainer(str(tiny_dir), args, replay_store=store)
    trainer.train()
    assert trainer.state.global_step == 2 and len(trainer.replay_store) == 4  # learned, collected nothing


def test_offline_data_config_makes_trials_that_fill_the_context(tiny_dir, tmp_path):
    """``offline_data`` trains on scripted trials made by the trainer: training maps only, each trial ending
    when ``max_context_tokens`` are full (as online ones do); nothing is collected."""
    args = small_config(tmp_path, offline_data="high", offline_trials=6, max_steps=2, max_context_tokens=128,
                        episodes_per_trial=1000)
    assert not args.online_collection
    trainer = DQNTrainer(str(tiny_dir), args)
    store = trainer.replay_store.dataset
    assert len(store) == 6 and set(store["policy"]) == {"epsilon_optimal_0.9"}
    budget = trainer.collector.engine.step_budget
    assert all(128 - 2 * budget < len(ids) <= 128 for ids in store["input_ids"])
    assert all(dones[-1] in (TERMINATED, TRUNCATED) and len(offsets) > 1
               for dones, offsets in zip(store["dones"], store["episode_offsets"]))
    assert not set(store["env_map"]) & {"/".join(m) for m in trainer.heldout_maps}
    online, _ = trainer.collector.collect()  # the trials the model collects end by the same rule
    assert all(128 - 2 * budget < len(row["input_ids"]) <= 128 for row in online)
    trainer.train()
    assert trainer.state.global_step == 2 and len(trainer.replay_store) == 6
    with pytest.raises(ValueError, match="offline_data must be one of"):
        small_config(tmp_path, offline_data="best")


def test_offline_data_with_online_collection_seeds_the_store_then_collects(tiny_dir, tmp_path):
    """``offline_data`` with ``online_collection=True``: the scripted trials fill the store first, the model's own
    trials follow them (no fill: the store already holds ``learning_starts``), the oldest leave beyond
    ``replay_capacity``."""
    args = small_config(tmp_path, offline_data="low", offline_trials=6, online_collection=True, max_steps=4,
                        rollout_interval=2, replay_capacity=10, episodes_per_trial=3)
    trainer = DQNTrainer(str(tiny_dir), args)
    assert trainer.replay_store.capacity == 10 and trainer.replay_store.dataset["policy"] == ["epsilon_optimal_0.3"] * 6
    trainer.train()
    policies = trainer.replay_store.dataset["policy"]
    assert trainer.state.global_step == 4 and len(policies) == 10  # 6 scripted + 2 collections of 4, FIFO at 10
    assert policies[:2] == ["epsilon_optimal_0.3"] * 2 and "epsilon_optimal_0.3" not in policies[2:]


def test_coordinate_frame_names_coordinates_beyond_the_training_maps(tiny_dir, tmp_path):
    """``coordinate_frame=7``: trials on 3-5 wide training maps, offline and online, name rows and columns up to 6
    and never beyond; without it none reaches 5. Only with coords observations."""
    def coordinates(trainer, rows) -> set[int]:
        words = [w for row in rows for w in trainer.processing_class.convert_ids_to_tokens(row["input_ids"])]
        return {int(n) for w in words for n in re.findall(r"[rc](\d+)", w)}

    for frame, expected in ((7, set(range(7))), (0, set(range(5)))):
        args = small_config(tmp_path, offline_data="q_learning", offline_trials=24, max_steps=1,
                            coordinate_frame=frame)
        trainer = DQNTrainer(str(tiny_dir), args)
        offline = [trainer.replay_store.dataset[i] for i in range(24)]
        online, _ = trainer.collector.collect()
        assert coordinates(trainer, offline) == expected
        assert coordinates(trainer, online) <= expected and max(coordinates(trainer, online)) >= 3
    with pytest.raises(ValueError, match="coordinate_frame needs coordinates"):
        small_config(tmp_path, coordinate_frame=7, observation_format="index")


def test_callbacks_run_on_what_they_are_given(tiny_lm, step_protocol, env_codec, tmp_path):
    """No trainer: a collector, a store and a network drive the callbacks; callbacks.py never imports the trainer."""
    imported = [node.module or "" for node in ast.walk(ast.parse(Path(trl_icrl.trainer.callbacks.__file__).read_text()))
                if isinstance(node, ast.ImportFrom)]
    assert not any("trainer" in module for module in imported)
    network = build_q_network(tiny_lm, 4, step_protocol.action_token_ids, "value_head", None)
    engine = RolloutEngine(network, step_protocol, env_codec, 256, step_protocol.pad_token_id, when_full="end")
    collector = TrialCollector(engine, ENV_ID, "id", 2, 2, [ExplorationSchedule.parse("uniform")])
    store, sizes = ReplayStore(10, "test"), []
    args = DQNConfig(output_dir=str(tmp_path), learning_starts=3, rollout_interval=2, max_train_minutes=0.0,
                     target_update="hard", target_update_interval=2, save_strategy="steps", report_to="none")
    state, control = TrainerState(), TrainerControl()
    callbacks = [TargetNetworkCallback(network), WallClockLimitCallback(),
                 EnvInteractionCallback(collector, lambda: store, lambda result, size: sizes.append(size))]
    for callback in callbacks:
        callback.on_train_begin(args, state, control)
    assert len(store) == 4 and sizes == [2, 4]  # filled up to learning_starts, two trials at a time
    with torch.no_grad():
        next(iter(network.weights(ONLINE).values())).add_(1.0)
    state.global_step = 2
    for callback in callbacks:
        callback.on_step_end(args, state, control)
    assert len(store) == 6 and sizes == [2, 4, 6]
    assert control.should_training_stop and control.should_save  # 0 minutes allowed
    assert all(torch.equal(p, network.weights(TARGET)[n]) for n, p in network.weights(ONLINE).items())


def test_minutes_bar_counts_the_minutes_the_limit_counts(tmp_path):
    """The bar of a time-bounded run reads the limit's clock, which starts before the replay store fills: when the
    limit stops training the bar is full, however long the filling took (it showed 0.0/0.1 on a loaded machine)."""
    args = DQNConfig(output_dir=str(tmp_path), max_train_minutes=0.1, report_to="none")
    state, control = TrainerState(), TrainerControl()
    wall_clock = WallClockLimitCallback()
    bar = MinutesProgressCallback(wall_clock)
    for callback in (wall_clock, bar):
        callback.on_train_begin(args, state, control)
    wall_clock.started -= 7.0  # the replay store took 7 s to fill, after the limit's clock started
    state.global_step = 1
    for callback in (wall_clock, bar):
        callback.on_step_end(args, state, control)
    assert control.should_training_stop
    assert "0.1/0.1 min, step 1" in str(bar.training_bar)


def test_time_bounded_run_counts_minutes_not_max_steps(tiny_dir, tmp_path, capsys):
    """A run bounded by max_train_minutes shows a bar over those minutes with its steps beside them, never
    steps out of an unreachable max_steps (``25/100000 [00:19<50:28:33]``): ``3.2/7.0 min, step 190``."""
    trainer = DQNTrainer(str(tiny_dir), small_config(tmp_path, max_steps=100_000, max_train_minutes=0.1,
                                                     eval_maps=0, disable_tqdm=False))
    kinds = [type(c) for c in trainer.callback_handler.callbacks]
    assert MinutesProgressCallback in kinds and ProgressCallback not in kinds
    trainer.train()
    shown = capsys.readouterr().err
    assert re.search(r"\| 0\.1/0\.1 min, step \d+", shown) and "100000" not in shown
    assert 0 < trainer.state.global_step < 100_000


def test_a_time_bounded_run_decays_its_learning_rate_over_its_last_minutes(tiny_dir, tmp_path):
    """max_steps out of reach, so a step-based decay never starts; lr_decay_minutes decays by the clock instead:
    the scheduler's learning rate holds for the first 6 of 10 minutes, then falls (never rising) to
    lr_decay_min_ratio of it at the end, when training stops."""
    with pytest.raises(ValueError, match="lr_decay_minutes needs max_train_minutes"):
        small_config(tmp_path, max_train_minutes=None, lr_decay_minutes=1.0)
    args = small_config(tmp_path, max_steps=100_000, max_train_minutes=10, lr_decay_minutes=4,
                        lr_decay_min_ratio=0.2, eval_maps=0, warmup_steps=0)
    trainer = DQNTrainer(str(tiny_dir), args)
    trainer.create_optimizer_and_scheduler(num_training_steps=args.max_steps)
    state, control, rates = TrainerState(), TrainerControl(), []
    for minute in range(11):
        trainer.wall_clock.started = time.monotonic() - 60 * minute - 1e-3
        trainer.wall_clock.on_step_end(args, state, control)
        trainer.lr_scheduler.step()
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
    assert rates[:7] == pytest.approx([3e-3] * 7)
    assert all(later < earlier for earlier, later in zip(rates[6:], rates[7:]))
    assert rates[-1] == pytest.approx(0.2 * 3e-3, rel=1e-3) and control.should_training_stop


def test_resuming_a_finished_run_trains_no_step_more(tiny_dir, tmp_path):
    """A run that reached max_steps, resumed with the same config: its weights and store come back, global_step
    stays at max_steps and no checkpoint beyond it is written (``Trainer`` alone trains one more step)."""
    settings = dict(max_steps=4, save_strategy="steps", save_steps=2, rollout_interval=2, eval_maps=0)
    finished = DQNTrainer(str(tiny_dir), small_config(tmp_path, **settings))
    finished.train()
    resumed = DQNTrainer(str(tiny_dir), small_config(tmp_path, **settings))
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 4
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    a, b = finished.q_network.weights(), resumed.q_network.weights()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(resumed.replay_store) == len(finished.replay_store)


@pytest.mark.parametrize(("adapter_type", "across"), [("lora", False), ("none", False), ("lora", True)])
def test_compute_loss_is_the_td_error_of_its_trials_by_hand(tiny_dir, tmp_path, adapter_type, across):
    """Q read at each decision, the next state's value read at its own position with the target network (the
    online one picking the action), the reward scaled: any wrong position, scale or network changes the number.
    With ``bootstrap_across_episodes`` a terminal step bootstraps from the next episode's first decision."""
    trainer = DQNTrainer(str(tiny_dir), small_config(tmp_path, adapter_type=adapter_type, reward_scale=2.0, gamma=0.8,
                                                     loss_type="mse", n_step=1, double_dqn=True, episodes_per_trial=6,
                                                     bootstrap_across_episodes=across))
    net = trainer.q_network
    rows = [row for _ in range(4) for row in trainer.collector.collect()[0]]
    assert any(max(row["rewards"]) > 0 for row in rows) and any(TERMINATED in row["dones"] for row in rows)
    torch.manual_seed(1)
    with torch.no_grad():  # the online network moves away from its target copy
        for p in net.weights(ONLINE).values():
            p.add_(0.05 * torch.randn_like(p))
    errors = []
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            decisions = len(row["actions"])
            crossing = [across and done == TERMINATED and d + 1 < decisions for d, done in enumerate(row["dones"])]
            nxt = torch.tensor([[row["decision_positions"][d + 1] if crossing[d] else max(p, 0)
                                 for d, p in enumerate(row["next_positions"])]])
            q = net(ids, torch.tensor([row["decision_positions"]]))[0][0]
            q_next_online = net(ids, nxt)[0][0]
            with net.using_adapter(TARGET):
                q_next_target = net(ids, nxt)[0][0]
            for d, (action, reward, done) in enumerate(zip(row["actions"], row["rewards"], row["dones"])):
                target = 2.0 * reward
                if done != TERMINATED or crossing[d]:
                    target += 0.8 * q_next_target[d, q_next_online[d].argmax()]
                errors.append((q[d, action] - target) ** 2)
        loss = trainer.compute_loss(net, collate_trials(rows, trainer.pad_token_id))
    assert loss.item() == pytest.approx(torch.stack(errors).mean().item(), rel=1e-4)


@pytest.mark.parametrize("units,expected", [(["amx_bf16"], torch.bfloat16), (["avx512_bf16"], torch.bfloat16),
                                            ([], torch.float32)])
def test_auto_precision_runs_the_matmuls_in_bf16_only_where_the_cpu_has_bf16_units(
        tiny_dir, tmp_path, monkeypatch, units, expected):
    """Under ``precision="auto"`` the decoder's linear layers compute in bf16 on a CPU that reports bf16 units, in
    fp32 on one that does not (the capability check patched); the Q-values, targets and loss stay fp32, and the
    choice reaches ``icrl_config.json`` and the card."""
    monkeypatch.setattr(trl_icrl.precision, "cpu_bf16_units", lambda: units)
    trainer = DQNTrainer(str(tiny_dir), small_config(tmp_path, max_steps=1, eval_maps=0))
    assert trainer.precision == ("bf16" if units else "fp32") == trainer.agent_config.precision
    seen = []
    linear = trainer.q_network.causal_lm.get_decoder().layers[0].self_attn.q_proj
    linear.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    rows, _ = trainer.collector.collect()
    assert seen and set(seen) == {expected}  # collection
    trainer.replay_store.append(rows)
    seen.clear()
    batch = collate_trials(rows[:2], trainer.pad_token_id)
    loss, q = trainer.compute_loss(trainer.q_network, batch, return_outputs=True)
    assert set(seen) == {expected} and q.dtype == loss.dtype == torch.float32  # the update
    trainer.save_model()
    assert json.loads((tmp_path / "out" / "icrl_config.json").read_text()).get("precision", "fp32") == trainer.precision
    assert f"| precision (matmuls) | {trainer.precision} |" in (tmp_path / "out" / "README.md").read_text()


def test_bad_precision_is_refused_in_one_sentence(monkeypatch):
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'bf16', 'fp32'\), got 'nonsense'"):
        DQNConfig(output_dir="x", precision="nonsense")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.raises(ValueError, match="precision='bf16' needs a CPU that runs bf16 matmuls"):
        DQNConfig(output_dir="x", precision="bf16")
    assert DQNConfig(output_dir="x", precision="auto").precision == "auto"  # auto falls back to fp32 there
def test_evaluate_plays_the_heldout_maps_in_context(tiny_dir, tmp_path):
    """``trainer.evaluate()`` returns the in-context evaluation's scalars as ``eval_*`` (and logs them); with
    ``eval_strategy="steps"`` and no ``eval_dataset``, training runs it every ``eval_steps``."""
    args = small_config(tmp_path, max_steps=4, eval_maps=2, eval_episodes=3, eval_strategy="steps", eval_steps=2,
                        trials_per_rollout=2, per_device_train_batch_size=2, episodes_per_trial=2)
    trainer = DQNTrainer(str(tiny_dir), args)
    metrics = trainer.evaluate()
    assert {"eval_final10_success", "eval_mean_success", "eval_episodes_to_first_success", "eval_n_maps",
            "eval_runtime"} <= set(metrics)
    assert metrics["eval_n_maps"] == 2 and metrics["eval_final10_success"] == trainer.evaluate_in_context()[
        "final10_success"]
    trainer.train()
    steps = [log["step"] for log in trainer.state.log_history if "eval_final10_success" in log]
    assert steps == [2, 4]
    with pytest.raises(ValueError, match="eval_strategy='steps' plays validation maps, and this run has none"):
        DQNTrainer(str(tiny_dir), small_config(tmp_path, eval_maps=0, eval_strategy="steps", eval_steps=2))


def test_optimizers_reach_the_trainer(tiny_dir, tmp_path):
    """``optimizers=(optimizer, None)`` as ``Trainer`` takes it: the trainer keeps the optimizer given."""
    args = small_config(tmp_path, max_steps=2, eval_maps=0, trials_per_rollout=2, per_device_train_batch_size=2)
    probe = DQNTrainer(str(tiny_dir), args)
    optimizer = torch.optim.SGD([p for p in probe.q_network.parameters() if p.requires_grad], lr=0.1)
    trainer = DQNTrainer(str(tiny_dir), args, optimizers=(optimizer, None))
    assert trainer.optimizer is optimizer


def test_a_cpu_trainer_takes_a_thread_per_usable_core_where_the_os_tells_them(tiny_dir, tmp_path, monkeypatch):
    """One torch thread per core this process may use (its affinity), split among local processes; macOS has no
    affinity call, so there it is every core; ``cpu_threads`` overrides both."""
    args = small_config(tmp_path, max_steps=2, eval_maps=0, trials_per_rollout=2, per_device_train_batch_size=2)
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        DQNTrainer(str(tiny_dir), args)
        assert torch.get_num_threads() == 3
        monkeypatch.delattr("os.sched_getaffinity", raising=False)
        monkeypatch.setattr("os.cpu_count", lambda: 8)
        DQNTrainer(str(tiny_dir), args)
        assert torch.get_num_threads() == 4
        args.cpu_threads = 1
        DQNTrainer(str(tiny_dir), args)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_dataset_of_histories_trains(tiny_dir, tmp_path, monkeypatch):
    """``train_dataset=`` (a ``datasets.Dataset`` of trials) seeds the replay store as offline data does; saved with
    its card, ``--dataset_name`` loads it back with ``load_dataset``; a dataset that does not fit the protocol is
    refused in one sentence; ``push_histories`` uploads the folder as a dataset repo."""
    import datasets
    from huggingface_hub import HfApi, RepoUrl

    from trl_icrl.offline_data import histories_card, push_histories, save_histories

    args = small_config(tmp_path, offline_data="high", offline_trials=6, max_steps=2, max_context_tokens=128,
                        eval_maps=0)
    maker = DQNTrainer(str(tiny_dir), args)
    made = maker.replay_store.dataset
    histories = made.remove_columns(["env_map", "seed", "policy"])  # provenance is optional with one env
    learner_args = small_config(tmp_path, online_collection=False, max_steps=2, max_context_tokens=128, eval_maps=0)
    trainer = DQNTrainer(str(tiny_dir), learner_args, train_dataset=histories)
    assert trainer.replay_store.dataset["input_ids"] == made["input_ids"]
    assert set(trainer.replay_store.dataset["policy"]) == {"dataset"}
    trainer.train()
    assert trainer.state.global_step == 2 and len(trainer.replay_store) == 6  # learned from them, collected nothing

    card = histories_card(made, maker.replay_store.protocol_signature, maker.base_model_name, maker.env_specs,
                          args.seed, 128, args.episodes_per_trial)
    folder = save_histories(made, tmp_path / "histories", card)
    text = (folder / "README.md").read_text()
    assert "`epsilon_optimal_0.9` (6 trials)" in text and "generated maps of the `id` family" in text
    assert f"the {len(maker.env_specs[ENV_ID].training_exclusions)} maps of `{ENV_ID}`" in text
    by_name = DQNConfig(**{**learner_args.to_dict(), "online_collection": None, "dataset_name": str(folder)})
    assert not by_name.online_collection
    trainer = DQNTrainer(str(tiny_dir), by_name)
    assert trainer.replay_store.dataset["policy"] == made["policy"]

    with pytest.raises(ValueError, match=r"^train_dataset lacks the columns \['rewards'\]: a dataset of histories"):
        DQNTrainer(str(tiny_dir), learner_args, train_dataset=histories.remove_columns("rewards"))
    shifted = histories.map(lambda row: {"input_ids": [i + 1 for i in row["input_ids"]]})
    with pytest.raises(ValueError, match=f"^train_dataset row 0 is no trial of {ENV_ID} in the 'step' format"):
        DQNTrainer(str(tiny_dir), learner_args, train_dataset=shifted)
    assert isinstance(shifted, datasets.Dataset)

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(kw) or RepoUrl(
        f"https://huggingface.co/datasets/{repo_id}"))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(kw))
    assert push_histories(folder, "someone/histories", token="hf_fake").endswith("datasets/someone/histories")
    assert calls[0]["repo_type"] == calls[1]["repo_type"] == "dataset"
    assert calls[1]["allow_patterns"] == ["data/train-00000-of-00001.parquet", "README.md"]


def test_a_saved_agent_trains_on_from_its_weights(tiny_dir, tmp_path):
    """``DQNTrainer(<dir save_model wrote>, args)``: the saved adapter and Q head are the online and target networks'
    starting weights, and they train on; a config in another protocol is refused in one sentence. The base travels
    in ``base/`` without the checkpoints of its own pretraining."""
    args = small_config(tmp_path, max_steps=3, eval_maps=0, trials_per_rollout=2, per_device_train_batch_size=2)
    base = shutil.copytree(tiny_dir, tmp_path / "pretrained")
    (base / "checkpoint-150").mkdir()
    (base / "checkpoint-150" / "optimizer.pt").write_bytes(b"0" * 1024)
    first = DQNTrainer(str(base), args)
    first.train()
    first.save_model()
    assert (Path(args.output_dir) / "base" / "config.json").is_file()
    assert not (Path(args.output_dir) / "base" / "checkpoint-150").exists()
    saved = {n: p.detach().clone() for n, p in first.q_network.weights().items()}
    again = DQNTrainer(args.output_dir, small_config(tmp_path / "again", max_steps=2, eval_maps=0,
                                                     trials_per_rollout=2, per_device_train_batch_size=2))
    assert again.base_model_name == str(Path(args.output_dir) / "base")  # tiny_dir has no Hub name
    for which in (ONLINE, TARGET):
        loaded = again.q_network.weights(which)
        assert loaded.keys() == saved.keys()
        assert all(torch.equal(loaded[n].float(), saved[n]) for n in saved), which
    assert all(p.requires_grad for p in again.q_network.weights().values())
    again.train()
    assert any(not torch.equal(p, saved[n]) for n, p in again.q_network.weights().items())
    with pytest.raises(ValueError, match="was trained with protocol_format='step'"):
        DQNTrainer(args.output_dir, small_config(tmp_path / "compact", protocol_format="compact"))
