"""Training only the top decoder layers, with the frozen lower layers' states computed once per replay trial."""

import pytest
import torch

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.agent.q_network import ONLINE, TARGET
from trl_icrl.replay_store import collate_trials


def config(tmp_path, **overrides) -> DQNConfig:
    kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=3, max_train_minutes=None, offline_data="high",
                  offline_trials=8, episodes_per_trial=4, per_device_train_batch_size=4, max_context_tokens=192,
                  eval_maps=0, learning_rate=3e-3, seed=0, precision="fp32", disable_tqdm=True, report_to="none",
                  lora_target_modules=["q_proj", "v_proj", "down_proj", "embed_tokens"], trainable_layers=2)
    kwargs.update(overrides)
    return DQNConfig(**kwargs)


def test_q_values_from_cached_lower_states_equal_the_whole_forward(tiny_dir, tmp_path):
    trainer = DQNTrainer(str(tiny_dir), config(tmp_path))
    network = trainer.q_network
    with torch.no_grad():  # an adapter that changes every layer, lower ones included
        for name, p in network.model.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                p.normal_(std=0.05)
        network.polyak_update(tau=1.0)  # the target's lower layers are the online's, as in training
        for name, p in network.weights(TARGET).items():
            if "lora_B" in name and ".layers.3." in name:
                p.normal_(std=0.05)  # its top layers differ
    assert network.frozen_layers == 2
    batch = collate_trials(trainer.replay_store.rows(range(4)), trainer.pad_token_id)
    positions = batch["decision_positions"].clamp(min=0)
    with torch.no_grad():
        lower = network.forward_lower(batch["input_ids"])
        for adapter in (ONLINE, TARGET):
            with network.using_adapter(adapter):
                whole, _ = network(batch["input_ids"], positions)
                cached, _ = network(batch["input_ids"], positions, lower_states=lower)
            torch.testing.assert_close(cached, whole, atol=1e-5, rtol=1e-5)
    assert len(network.causal_lm.get_decoder().layers) == 4  # the decoder is whole again


def test_cached_training_matches_uncached_and_leaves_the_lower_layers_as_they_were(tiny_dir, tmp_path):
    runs = {}
    for cache in (False, True):
        trainer = DQNTrainer(str(tiny_dir), config(tmp_path / str(cache), cache_frozen_states=cache))
        before = {n: p.detach().clone() for n, p in trainer.q_network.model.named_parameters()}
        trainer.train()
        runs[cache] = trainer
        after = dict(trainer.q_network.model.named_parameters())
        lora = [n for n in before if ".default." in n and "lora" in n]
        changed = {n for n in lora if not torch.equal(before[n], after[n])}
        assert changed and all(".layers.2." in n or ".layers.3." in n for n in changed), sorted(changed)
        assert not any(after[n].requires_grad for n in lora if ".layers.0." in n or "embed_tokens" in n)
    assert 4 <= len(runs[True].lower_states) <= 8  # the rows sampled in 3 batches of 4, of the 8
    assert runs[False].lower_states is None
    uncached, cached = (dict(runs[c].q_network.model.named_parameters()) for c in (False, True))
    for name, p in uncached.items():
        torch.testing.assert_close(cached[name], p, atol=1e-5, rtol=1e-4)


def test_the_lower_layers_stay_frozen_in_a_resumed_run(tiny_dir, tmp_path):
    first = DQNTrainer(str(tiny_dir), config(tmp_path, max_steps=2, save_strategy="steps", save_steps=2))
    first.train()
    trainer = DQNTrainer(str(tiny_dir), config(tmp_path, max_steps=3, cache_frozen_states=True))
    trainer.train(resume_from_checkpoint=True)
    assert trainer.state.global_step == 3
    assert not any(p.requires_grad for n, p in trainer.q_network.model.named_parameters() if ".layers.1." in n)


def test_bad_layer_settings_are_refused_in_one_sentence(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match=r"trainable_layers must be in \[1, 4\]"):
        DQNTrainer(str(tiny_dir), config(tmp_path, trainable_layers=5))
    with pytest.raises(ValueError, match="trainable_layers must be >= 1"):
        config(tmp_path, trainable_layers=0)
    with pytest.raises(ValueError, match="cache_frozen_states computes"):
        config(tmp_path, cache_frozen_states=True, offline_data=None)  # collected online
    with pytest.raises(ValueError, match="cache_frozen_states computes"):
        config(tmp_path, cache_frozen_states=True, trainable_layers=None)
