"""The embedded pretrained base: its name resolves offline, adapters on it load through plain peft, training never
sees a map an evaluation plays, and bad input fails before any work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fresh_python import fresh_process
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from trl import TrlParser

from trl_icrl import TINY_BASE_NAME, DQNConfig, DQNTrainer, ExplorationSchedule
from trl_icrl.agent.play import RolloutResult
from trl_icrl.evaluation import CONDITIONS, make_condition
from trl_icrl.pretraining import random_play_corpus
from trl_icrl.replay_store import collate_trials
from trl_icrl.tiny_model import TINY_BASE_DIR, ICRLLlamaForCausalLM

ROOT = Path(__file__).parent.parent


def small_config(tmp_path, **overrides) -> DQNConfig:
    kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=2, trials_per_rollout=2, episodes_per_trial=3,
                  learning_starts=2, rollout_interval=100, per_device_train_batch_size=2, eval_maps=0,
                  logging_steps=1, max_context_tokens=256, disable_tqdm=True, report_to="none")
    kwargs.update(overrides)
    return DQNConfig(**kwargs)


def test_tiny_base_loads_offline_by_name_from_an_empty_cache(tmp_path):
    out = fresh_process(f"""
import torch, trl_icrl
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
trl_icrl.install_tiny_base()
model = AutoModelForCausalLM.from_pretrained({TINY_BASE_NAME!r})
shipped = load_file({str(TINY_BASE_DIR / "model.safetensors")!r})
state = model.state_dict()
print(type(model).__name__, all(torch.equal(state[k], v) for k, v in shipped.items()), len(shipped))
""", tmp_path)
    name, equal, n = out.split()
    assert name == ICRLLlamaForCausalLM.__name__ and equal == "True" and int(n) > 30
    card = (TINY_BASE_DIR / "README.md").read_text()
    assert "random play" in card and "Corpus" in card
    assert json.loads((TINY_BASE_DIR / "pretraining.json").read_text())["eval_loss_after"] < 2.0


def test_trained_adapter_reloads_through_plain_peft_with_every_tensor(tmp_path):
    """Default adapter (LoRA + Q head) on the default base; in a fresh process, offline, empty caches: plain
    ``PeftModel.from_pretrained`` on the base ``adapter_config.json`` names uses every saved tensor, and its agent
    gives ``ICRLAgent.from_pretrained``'s Q-values; a base without a ``q_head`` module makes ``from_model`` refuse."""
    args = small_config(tmp_path)
    assert args.adapter_type == "lora"
    trainer = DQNTrainer("tiny", args)
    trainer.train()
    trainer.save_model()
    out_dir = Path(args.output_dir)
    assert not (out_dir / "base").exists() and not (out_dir / "model.safetensors").exists()
    adapter_config = json.loads((out_dir / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == TINY_BASE_NAME
    out = fresh_process(f"""
import json, torch, trl_icrl
from peft import AutoPeftModelForCausalLM, PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, LlamaForCausalLM
from trl_icrl import ICRLAgent
path = {str(out_dir)!r}
trl_icrl.install_tiny_base()
name = json.load(open(path + "/adapter_config.json"))["base_model_name_or_path"]
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(name), path)
saved = load_file(path + "/adapter_model.safetensors")
loaded = get_peft_model_state_dict(model, save_embedding_layers=False)
print("every_tensor", set(saved) == set(loaded) and all(torch.equal(saved[k], loaded[k]) for k in saved))
ids = torch.tensor([[5, 9, 13, 17, 21, 25, 29, 33]])
positions = torch.tensor([[0, 3, 7]])
q_plain = ICRLAgent.from_model(model, path).network(ids, positions)[0]
q_agent = ICRLAgent.from_pretrained(path).network(ids, positions)[0]
auto = AutoPeftModelForCausalLM.from_pretrained(path)
q_auto = ICRLAgent.from_model(auto, path).network(ids, positions)[0]
print("same_q", torch.equal(q_plain, q_agent) and torch.equal(q_auto, q_agent), float(q_agent.abs().sum()) > 0)
headless = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(trl_icrl.tiny_model.TINY_BASE_DIR), path)
try:
    ICRLAgent.from_model(headless, path)
    print("dropped_head_refused False")
except ValueError as err:
    print("dropped_head_refused", "dropped" in str(err))
""", tmp_path)
    assert "every_tensor True" in out
    assert "same_q True True" in out
    assert "dropped_head_refused True" in out


def test_trl_style_peft_config_trains_saves_and_reloads_through_plain_peft(tmp_path):
    """``DQNTrainer("tiny", args, peft_config=LoraConfig(...))`` as any TRL trainer takes an adapter: the Q head joins
    the adapter (``modules_to_save``), the caller's config stays as given, and a fresh process gets the same
    Q-values from plain ``PeftModel.from_pretrained``."""
    peft_config = LoraConfig(r=8, target_modules="all-linear")
    trainer = DQNTrainer("tiny", small_config(tmp_path), peft_config=peft_config)
    assert peft_config.modules_to_save is None
    adapter = trainer.q_network.model.peft_config["default"]
    assert adapter.r == 8 and adapter.modules_to_save == ["q_head"] and not adapter.use_rslora
    trainer.train()
    trainer.save_model()
    out_dir = trainer.args.output_dir
    batch = collate_trials(trainer.replay_store.rows([0, 1]), trainer.pad_token_id)
    torch.save(batch, Path(out_dir) / "batch.pt")
    with torch.no_grad():
        expected = trainer.q_network.eval()(batch["input_ids"], batch["decision_positions"])[0]
    assert "a LoRA (r=8, alpha=8, on every linear layer) adapter" in (Path(out_dir) / "README.md").read_text()
    out = fresh_process(f"""
import json, torch, trl_icrl
from peft import PeftModel
from transformers import AutoModelForCausalLM
path = {out_dir!r}
trl_icrl.install_tiny_base()
base = AutoModelForCausalLM.from_pretrained(json.load(open(path + "/adapter_config.json"))["base_model_name_or_path"])
agent = trl_icrl.ICRLAgent.from_model(PeftModel.from_pretrained(base, path), path)
batch = torch.load(path + "/batch.pt")
print(json.dumps(agent.network(batch["input_ids"], batch["decision_positions"])[0].tolist()))
""", tmp_path)
    assert torch.equal(torch.tensor(json.loads(out.splitlines()[-1])), expected)


def test_the_lora_fields_build_the_peft_config_a_caller_would_pass(tmp_path):
    """The command line's route (``lora_*``) and ``peft_config=`` give the same adapter, initialised alike; a
    ``PeftModel`` with the Q head in its ``modules_to_save`` trains as given."""
    by_fields = DQNTrainer("tiny", small_config(tmp_path, lora_r=4, lora_alpha=8, use_rslora=True))
    given = LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, use_rslora=True, target_modules="all-linear")
    by_config = DQNTrainer("tiny", small_config(tmp_path), peft_config=given)
    assert by_fields.q_network.model.peft_config["default"] == by_config.q_network.model.peft_config["default"]
    online = [trainer.q_network.weights() for trainer in (by_fields, by_config)]
    assert online[0].keys() == online[1].keys() and all(torch.equal(online[0][k], online[1][k]) for k in online[0])
    base = AutoModelForCausalLM.from_pretrained(TINY_BASE_DIR)
    base.name_or_path = TINY_BASE_NAME
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["q_head"]))
    trainer = DQNTrainer(peft_model, small_config(tmp_path))
    assert trainer.agent_config.adapter_type == "lora" and trainer.agent_config.base_model == TINY_BASE_NAME
    trainer.train()
    assert trainer.state.global_step == 2
    with pytest.raises(ValueError, match="got a PeftModel and a peft_config"):
        DQNTrainer(peft_model, small_config(tmp_path), peft_config=given)
    headless = get_peft_model(AutoModelForCausalLM.from_pretrained(TINY_BASE_DIR), LoraConfig(r=4))
    with pytest.raises(ValueError, match="the PeftModel has no trainable q_head"):
        DQNTrainer(headless, small_config(tmp_path))


def test_dtype_and_model_init_kwargs_reach_from_pretrained(tmp_path):
    """``dtype`` (``torch_dtype`` its alias, with a warning) and ``model_init_kwargs`` (a JSON dict on the command
    line) are what loading the base by name uses."""
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config(
        ["--output_dir", str(tmp_path / "out"), "--model_init_kwargs", '{"attn_implementation": "eager"}',
         "--dtype", "bfloat16", "--eval_maps", "0"])
    assert args.model_init_kwargs == {"attn_implementation": "eager"} and args.dtype == "bfloat16"
    with pytest.warns(FutureWarning, match="torch_dtype is deprecated: use dtype"):
        assert DQNConfig(output_dir=str(tmp_path), torch_dtype="float16").dtype == "float16"
    trainer = DQNTrainer("tiny", small_config(tmp_path, dtype="bfloat16",
                                              model_init_kwargs={"attn_implementation": "eager"}))
    base = trainer.q_network.causal_lm
    assert base.config._attn_implementation == "eager" and base.model.embed_tokens.weight.dtype == torch.bfloat16


class RecordingEngine:
    """Stands in for the rollout engine: records the maps a collector draws, plays nothing."""

    def __init__(self):
        self.maps = []

    def play(self, envs, n_episodes, schedule, rng, reset_seeds, reset_options):
        self.maps += [reset_options(i, 0)["desc"] for i in range(len(envs))]
        return RolloutResult([], np.zeros((len(envs), 0)), np.zeros((len(envs), 0)), np.zeros((len(envs), 0)), 0)


def evaluation_maps(seed: int, n_maps: int = 50) -> set[str]:
    """Every map the evaluation conditions play with ``seed`` (non-stationary maps A and B, stitching family)."""
    maps = set()
    for condition in CONDITIONS:
        made = make_condition(condition, n_maps, 30, ExplorationSchedule.parse("paper_ramp"), seed)
        maps |= {"/".join(m) for m in made.maps}
        maps |= set(made.info.get("maps", [])) | set(made.info.get("maps_b", []))
    return maps


def test_no_map_an_evaluation_plays_is_ever_trained_on(tmp_path):
    """The trainer's own training maps (20,000 draws), its offline data and the pretraining corpus against every
    map of every condition; before the fix the non-stationary condition's maps B appeared in training draws."""
    trainer = DQNTrainer("tiny", small_config(tmp_path, offline_data="q_learning", offline_trials=64,
                                              offline_map_switches=0.5, trials_per_rollout=500, seed=0))
    reserved = evaluation_maps(seed=0)
    assert len(reserved) > 150  # ID, map B and OOD maps are 50 distinct each; the stitching family adds more
    trainer.collector.engine = engine = RecordingEngine()
    for _ in range(40):
        trainer.collector.collect()
    assert len(engine.maps) == 20_000
    assert not {"/".join(m) for m in engine.maps} & reserved
    offline = {part for env_map in trainer.replay_store.dataset["env_map"]
               for part in env_map.split(" from ")[0].split(" then ")}
    assert len(offline) >= 64 and not offline & reserved
    corpus = random_play_corpus(trainer.processing_class, 64, context_tokens=256)
    corpus_maps = {part for env_map in corpus["env_map"] for part in env_map.split(" from ")[0].split(" then ")}
    assert len(corpus_maps) >= 64 and not corpus_maps & reserved
    for seed in range(1, 5):  # the corpus excludes the maps of evaluations under seeds 0-4
        assert not corpus_maps & evaluation_maps(seed)
    with pytest.raises(ValueError, match="beyond the first 400"):
        make_condition("non_stationary", 201, 30, ExplorationSchedule.parse("paper_ramp"), 0)


def test_bad_base_name_and_adapter_fail_in_one_sentence_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"'no-such-org/no-such-model' could not be loaded.*Hugging Face cache"):
        DQNTrainer("no-such-org/no-such-model", small_config(tmp_path, offline_data="q_learning"))
    with pytest.raises(ValueError, match=r"adapter_type='lora' cannot be put on 'trl-icrl/tiny-llama'"):
        DQNTrainer("tiny", small_config(tmp_path, lora_target_modules=["no_such_proj"], offline_data="q_learning"))


def test_pretraining_recipe_lowers_the_corpus_loss(tmp_path):
    out = tmp_path / "base"
    done = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "pretrain_tiny_base.py"), "--config",
         str(ROOT / "recipes" / "configs" / "tiny_base.yaml"), "--corpus_trials", "24", "--eval_trials", "8",
         "--context_tokens", "256", "--num_proc", "1", "--num_train_epochs", "2", "--per_device_train_batch_size",
         "4", "--eval_strategy", "no", "--output_dir", str(out), "--disable_tqdm", "true"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads((out / "pretraining.json").read_text())
    assert stats["eval_loss_after"] < stats["eval_loss_before"] - 1.0 and stats["optimizer_steps"] == 12
    assert "24 trials" in (out / "README.md").read_text()
    model = ICRLLlamaForCausalLM.from_pretrained(out)
    assert torch.equal(model.q_head.bias, torch.zeros_like(model.q_head.bias))  # the head is untouched by pretraining
    assert set(load_file(out / "model.safetensors")) >= {"q_head.weight", "q_head.bias"}
