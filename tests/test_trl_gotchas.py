"""What a TRL user meets: a dataset given is what the model learns from, the card names it, options the trainer cannot
honour are refused in one sentence, a sharded base ships whole, a bf16-stored base runs outside autocast."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

import trl_icrl.trainer.dqn_trainer
from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.agent.q_network import store_frozen_base_in_bf16
from trl_icrl.model_card import files_to_upload
from trl_icrl.offline_data import histories_card, save_histories


def small_config(tmp_path, **overrides) -> DQNConfig:
    kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=2, trials_per_rollout=2, episodes_per_trial=2,
                  learning_starts=2, rollout_interval=1, per_device_train_batch_size=2, eval_maps=0, logging_steps=1,
                  max_context_tokens=128, disable_tqdm=True, report_to="none")
    return DQNConfig(**{**kwargs, **overrides})


@pytest.fixture(scope="module")
def histories(tiny_dir, tmp_path_factory):
    """Six offline trials as a dataset of histories, saved with their card (a folder ``dataset_name`` loads)."""
    args = small_config(tmp_path_factory.mktemp("maker"), offline_data="high", offline_trials=6)
    maker = DQNTrainer(str(tiny_dir), args)
    card = histories_card(maker.replay_store.dataset, maker.replay_store.protocol_signature, maker.base_model_name,
                          maker.env_specs, args.seed, 128, args.episodes_per_trial)
    folder = save_histories(maker.replay_store.dataset, tmp_path_factory.mktemp("histories"), card)
    return maker.replay_store.dataset, folder


@pytest.mark.parametrize("streamed", [False, True], ids=["dataset", "iterable_dataset"])
def test_a_train_dataset_alone_is_what_the_model_learns_from(tiny_dir, tmp_path, histories, streamed):
    """Online collection (rollout every step here) stays off unless asked for; the store holds the six trials."""
    made, _ = histories
    given = made.to_iterable_dataset() if streamed else made
    trainer = DQNTrainer(str(tiny_dir), small_config(tmp_path), train_dataset=given)
    assert trainer.train_dataset is given and not trainer.collects_online
    trainer.train()
    assert trainer.state.global_step == 2 and len(trainer.replay_store) == 6
    assert trainer.replay_store.dataset["input_ids"] == made["input_ids"]
    asked = DQNTrainer(str(tiny_dir), small_config(tmp_path, online_collection=True), train_dataset=given)
    asked.train()
    assert asked.collects_online and len(asked.replay_store) > 6


def test_the_card_names_the_dataset_trained_on(tiny_dir, tmp_path, histories, monkeypatch):
    _, folder = histories
    trainer = DQNTrainer(str(tiny_dir), small_config(tmp_path, dataset_name=str(folder)))
    trainer.create_model_card()
    assert f"datasets:\n- {folder}" in (tmp_path / "out" / "README.md").read_text()
    monkeypatch.setattr(trl_icrl.trainer.dqn_trainer, "push_folder_to_hub", lambda *args, **kwargs: "pushed")
    assert trainer.push_to_hub(dataset_name="someone/histories") == "pushed"
    assert "datasets:\n- someone/histories" in (tmp_path / "out" / "README.md").read_text()


def test_eval_dataset_is_refused_in_one_sentence(tiny_dir, tmp_path, histories):
    with pytest.raises(ValueError, match="^DQNTrainer evaluates by playing maps of args.eval_split in context"):
        DQNTrainer(str(tiny_dir), small_config(tmp_path), eval_dataset=histories[0])


@pytest.mark.parametrize("options,message", [
    ({"push_to_hub": True, "hub_strategy": "checkpoint"}, "hub_strategy='checkpoint' pushes the last checkpoint"),
    ({"save_strategy": "best", "metric_for_best_model": "eval_final10_success", "eval_strategy": "steps"},
     "load_best_model_at_end and save_strategy='best' pick a checkpoint"),
    ({"load_best_model_at_end": True, "save_strategy": "steps", "eval_strategy": "steps"},
     "load_best_model_at_end and save_strategy='best' pick a checkpoint")])
def test_options_the_trainer_cannot_honour_are_refused_at_parse_time(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        small_config(tmp_path, **options)


def test_a_sharded_base_and_model_are_pushed_whole(tmp_path):
    names = ["base/config.json", "base/model-00001-of-00002.safetensors", "base/model-00002-of-00002.safetensors",
             "base/model.safetensors.index.json", "model-00001-of-00002.safetensors",
             "model-00002-of-00002.safetensors", "model.safetensors.index.json", "adapter_config.json"]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert files_to_upload(tmp_path) == sorted(names)


def test_a_base_stored_in_bf16_runs_outside_autocast(tiny_dir):
    """The trainer stores the frozen base's linear weights in bf16 on a CPU with bf16 units: a forward or
    ``generate`` of the user's own, outside the Q network's autocast, still runs, close to fp32."""
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_dir), LoraConfig(r=4, target_modules="all-linear"))
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
        assert store_frozen_base_in_bf16(model) > 0
        after = model(input_ids=ids).logits
        model.generate(input_ids=ids, max_new_tokens=2, do_sample=False)
    assert after.dtype == torch.float32 and torch.allclose(after, before, atol=0.1)
