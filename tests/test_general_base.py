"""The general embedded base (trl-icrl/tiny-llama-general): its corpus mixes every family in equal shares and never
an evaluation map, its recipe continues the shipped base, and the shipped general base writes every family's words,
loads offline by name and carries adapters that reload through plain peft."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fresh_python import fresh_process
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.envs import CLIFF_ENV_ID, ENV_ID, MDP_ENV_ID, evaluation_maps
from trl_icrl.envs.codec import codec_for
from trl_icrl.pretraining import corpus_families, mixture_corpus
from trl_icrl.tiny_model import GENERAL_BASE_NAME, SHIPPED_BASES, canonical_model_name, resolve_model_path
from trl_icrl.vocabulary import words_to_add

ROOT = Path(__file__).parent.parent
FAMILIES = {ENV_ID: "up_to_8", CLIFF_ENV_ID: "cliff", MDP_ENV_ID: "mdp"}
GENERAL_BASE_DIR = SHIPPED_BASES[GENERAL_BASE_NAME]


def recipe(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "pretrain_tiny_base.py"), "--config",
         str(ROOT / "recipes" / "configs" / "tiny_general_base.yaml"), "--output_dir", str(tmp_path / "base"),
         "--disable_tqdm", "true", *args],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))


def test_the_general_base_writes_every_family_as_known_words():
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("tiny-general"))
    for env_id in FAMILIES:
        assert words_to_add(tokenizer, "step", codec_for(env_id)) == [], env_id
    base = AutoTokenizer.from_pretrained(resolve_model_path("tiny"))
    assert len(tokenizer) > len(base)  # the cliff's and the MDPs' words were added
    assert all(tokenizer.convert_tokens_to_ids(w) == i for w, i in base.get_vocab().items())  # the old ids kept
    assert canonical_model_name("tiny-general") == GENERAL_BASE_NAME


def test_a_mixture_corpus_plays_every_family_in_equal_shares_and_never_an_evaluation_map():
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("tiny-general"))
    corpus = mixture_corpus(tokenizer, 7, FAMILIES, context_tokens=192, coordinate_frame=8, map_switches=0.5)
    counts = {env_id: corpus["env_id"].count(env_id) for env_id in FAMILIES}
    assert counts == {ENV_ID: 3, CLIFF_ENV_ID: 2, MDP_ENV_ID: 2}
    for row in corpus:
        assert 0 < len(row["input_ids"]) <= 192 and tokenizer.unk_token_id not in row["input_ids"]
        maps = {tuple(m.split("/")) for m in row["env_map"].split(" from ")[0].split(" then ")}
        for seed in range(5):
            assert not maps & evaluation_maps(row["env_id"], seed)
    shuffled = mixture_corpus(tokenizer, 7, FAMILIES, context_tokens=192, coordinate_frame=8, seed=1)
    assert shuffled["env_id"] != corpus["env_id"] or shuffled["input_ids"] != corpus["input_ids"]


def test_the_general_recipe_continues_the_shipped_base_and_lowers_its_loss(tmp_path):
    done = recipe(tmp_path, "--corpus_trials", "24", "--eval_trials", "6", "--context_tokens", "192", "--num_proc",
                  "1", "--per_device_train_batch_size", "4", "--warmup_steps", "0", "--learning_rate", "0.003",
                  "--num_train_epochs", "2", "--eval_strategy", "no", "--save_strategy", "no")
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "base"
    stats = json.loads((out / "pretraining.json").read_text())
    assert stats["eval_loss_after"] < stats["eval_loss_before"] and stats["optimizer_steps"] == 12
    card = (out / "README.md").read_text()
    assert all(f"`{env_id}` (family `{family}`)" in card for env_id, family in FAMILIES.items())
    assert "started from `trl-icrl/tiny-llama`" in card
    tokenizer, shipped = AutoTokenizer.from_pretrained(out), AutoTokenizer.from_pretrained(resolve_model_path("tiny"))
    assert all(words_to_add(tokenizer, "step", codec_for(env_id)) == [] for env_id in FAMILIES)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) > len(shipped)
    assert torch.equal(model.q_head.bias, torch.zeros_like(model.q_head.bias))  # the head is untouched


@pytest.mark.parametrize("env_ids, families, message", [
    (list(FAMILIES), ["up_to_8", "cliff", "nonsense"], r"map_family must be one of \['mdp'\]"),
    (["CliffWalking-v1"], None, "needs envs with generated maps; CliffWalking-v1 has none"),
    (list(FAMILIES), ["up_to_8"], "map_families names 1 families for 3 env ids"),
])
def test_bad_corpus_input_fails_in_one_sentence(env_ids, families, message):
    with pytest.raises(ValueError, match=message):
        corpus_families(env_ids, families)
    assert corpus_families([ENV_ID, MDP_ENV_ID]) == {ENV_ID: "id", MDP_ENV_ID: "mdp"}  # each env's first family


def test_an_adapter_on_the_general_base_reloads_offline_through_plain_peft(tmp_path):
    """A general model (three families) on ``"tiny-general"``: the adapter names the general base, ships without it,
    and in a fresh process with empty caches its card's plain-peft snippet loads every tensor and gives the agent's
    Q-values on the words the general base added."""
    args = DQNConfig(output_dir=str(tmp_path / "out"), train_env_ids=list(FAMILIES), map_family="up_to_8",
                     offline_data="q_learning", offline_trials=6, max_steps=2, per_device_train_batch_size=2,
                     eval_maps=0, max_context_tokens=192, coordinate_frame=8, disable_tqdm=True, report_to="none")
    trainer = DQNTrainer("tiny-general", args)
    assert len(trainer.processing_class) == len(AutoTokenizer.from_pretrained(GENERAL_BASE_DIR))  # nothing added
    trainer.train()
    trainer.save_model()
    out = Path(args.output_dir)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == GENERAL_BASE_NAME
    assert not (out / "base").exists()  # the general base ships with the package, like the default one
    added = len(AutoTokenizer.from_pretrained(resolve_model_path("tiny"))) + 3  # a word of the cliff or the MDPs
    plain_peft = re.findall(r"```python\n(.*?)```", (out / "README.md").read_text(), flags=re.S)[1]
    printed = fresh_process(plain_peft + f"""
import torch
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
path = {str(out)!r}
saved = load_file(path + "/adapter_model.safetensors")
loaded = get_peft_model_state_dict(model, save_embedding_layers=False)
print("every_tensor", set(saved) == set(loaded) and all(torch.equal(saved[k], loaded[k]) for k in saved))
ids = torch.tensor([[5, 9, {added}, 17, {added + 40}, 25]])
positions = torch.tensor([[0, 2, 4]])
q_plain = agent.network(ids, positions)[0]
q_agent = trl_icrl.ICRLAgent.from_pretrained(path).network(ids, positions)[0]
print("same_q", torch.equal(q_plain, q_agent), float(q_agent.abs().sum()) > 0)
""", tmp_path)
    assert "every_tensor True" in printed and "same_q True True" in printed
