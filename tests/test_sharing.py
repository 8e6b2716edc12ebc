"""The 8B recipe configs through the same code path on a tiny model, and fresh-process reloads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from trl import TrlParser

from trl_icrl import DQNConfig, DQNTrainer, ICRLAgent, build_tiny_model
from trl_icrl.agent.config import AgentConfig
from trl_icrl.replay_store import collate_trials
from trl_icrl.tiny_model import llama3_tokenizer

CONFIGS = Path(__file__).parent.parent / "recipes" / "configs"
SMALL = ["--max_steps", "2", "--trials_per_rollout", "2", "--episodes_per_trial", "3", "--learning_starts", "2",
         "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1", "--max_context_tokens", "512",
         "--eval_maps", "0", "--bf16", "false", "--dtype", "float32", "--save_strategy", "no",
         "--disable_tqdm", "true", "--logging_steps", "1"]


@pytest.fixture(scope="module")
def llama3_tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_llama3"), tokenizer=llama3_tokenizer())


@pytest.mark.parametrize("config", ["llama31_8b_paper_ia3.yaml", "llama31_8b_lora.yaml"])
def test_8b_config_runs_on_a_tiny_model(llama3_tiny, tmp_path, config):
    """Same settings (format, adapter, Q parameterisation, loss, checkpointing), tiny base, a few steps."""
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config(
        ["--config", str(CONFIGS / config), "--model_name_or_path", str(llama3_tiny),
         "--output_dir", str(tmp_path / "out"), *SMALL])
    trainer = DQNTrainer(args.model_name_or_path, args)
    trainer.train()
    assert trainer.state.global_step == 2 and trainer.args.activation_checkpointing
    assert any("td_loss" in log for log in trainer.state.log_history)
    if args.protocol_format == "llama3":
        episodes = trainer.env_spec.protocol.parse(trainer.replay_store.rows([0])[0]["input_ids"])
        assert len(episodes) == 3


RELOAD = """
import json, sys, torch
from trl_icrl import ICRLAgent
out = {}
for path in sys.argv[1:]:
    agent = ICRLAgent.from_pretrained(path)
    batch = torch.load(path + "/batch.pt")
    out[path] = agent.network(batch["input_ids"], batch["decision_positions"])[0].tolist()
print(json.dumps(out))
"""


def test_fresh_process_reload_gives_identical_q(tiny_dir, tmp_path):
    expected, paths = {}, []
    for adapter_type in ("none", "lora", "ia3"):
        for q in ("value_head", "action_logits"):
            path = str(tmp_path / f"{adapter_type}_{q}")
            args = DQNConfig(output_dir=path, adapter_type=adapter_type, q_parameterisation=q, max_steps=2,
                             trials_per_rollout=2, episodes_per_trial=3, learning_starts=2,
                             per_device_train_batch_size=2, eval_maps=0, max_context_tokens=512,
                             learning_rate=1e-2, disable_tqdm=True)
            trainer = DQNTrainer(str(tiny_dir), args)
            trainer.train()
            trainer.save_model()
            saved = json.loads((Path(path) / "icrl_config.json").read_text())
            assert saved["base_model"] == (str(tiny_dir) if adapter_type == "none" else "base")  # base/ travels
            batch = collate_trials(trainer.replay_store.rows([0, 1]), trainer.pad_token_id)
            torch.save(batch, Path(path) / "batch.pt")
            with torch.no_grad():
                expected[path] = trainer.q_network.eval()(batch["input_ids"], batch["decision_positions"])[0]
            paths.append(path)
    # a fresh process with empty model caches: every saved folder carries the weights it needs
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TRL_ICRL_HOME": str(tmp_path / "empty"),
           "HF_HOME": str(tmp_path / "empty_hf")}
    done = subprocess.run([sys.executable, "-c", RELOAD, *paths], env=env, capture_output=True,
                          text=True, check=True)
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    for path in paths:
        assert torch.equal(torch.tensor(reloaded[path]), expected[path]), path
    # base_model= names the base: an adapter is loaded onto it, a full fine-tune plays untrained from it
    lora = ICRLAgent.from_pretrained(paths[2], base_model=str(tiny_dir))
    full = ICRLAgent.from_pretrained(paths[0], base_model=str(tmp_path / "no_such_base"))
    batch = torch.load(Path(paths[0]) / "batch.pt")
    with torch.no_grad():
        assert torch.equal(lora.network.eval()(batch["input_ids"], batch["decision_positions"])[0],
                           expected[paths[2]])
        assert torch.equal(full.network.eval()(batch["input_ids"], batch["decision_positions"])[0],
                           expected[paths[0]])  # its weights are its own
        with pytest.raises(Exception, match="no_such_base"), full.network.untrained():
            pass
        untrained = ICRLAgent.from_pretrained(paths[0], base_model=str(tiny_dir)).network
        with untrained.untrained():
            q_untrained = untrained(batch["input_ids"], batch["decision_positions"])[0]
    assert not torch.allclose(q_untrained, expected[paths[0]])  # the tiny base with a fresh head, not the trained


RESULTS_MODEL = Path(__file__).parent.parent / "results" / "tiny_full_finetune_online"
PLAY_HELDOUT = """
import json, sys
import numpy as np
from trl_icrl import ICRLAgent
from trl_icrl.envs import heldout_maps
from trl_icrl.evaluation import evaluate_model
agent = ICRLAgent.from_pretrained(sys.argv[1])
result = evaluate_model(agent.engine(), heldout_maps("id", 20), 30, "paper_ramp", seed=0)
print(json.dumps({"first10": float(np.nanmean(result.successes[:, :10])),
                  "final10": float(np.nanmean(result.successes[:, 20:]))}))
"""


def test_committed_results_model_improves_in_context_in_a_fresh_process(tmp_path):
    """The committed model loads with nothing cached and improves within one context on held-out maps."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_ICRL_HOME": str(tmp_path / "empty"),
           "HF_HOME": str(tmp_path / "empty_hf")}
    done = subprocess.run([sys.executable, "-c", PLAY_HELDOUT, str(RESULTS_MODEL)], env=env, capture_output=True,
                          text=True, check=True)
    success = json.loads(done.stdout.strip().splitlines()[-1])
    assert success["final10"] >= 0.8 and success["final10"] > success["first10"] + 0.3, success


def test_agent_config_reads_and_writes_the_committed_keys(tmp_path):
    """A folder saved before ``AgentConfig`` existed loads, and saves back the same JSON."""
    saved = json.loads((RESULTS_MODEL / "icrl_config.json").read_text())
    config = AgentConfig.load(RESULTS_MODEL)
    assert config.action_words == ("left", "down", "right", "up") and config.eval_context_tokens == 1280
    assert json.loads(config.save(tmp_path).read_text()) == saved
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\], missing keys \['gamma'\]"):
        AgentConfig.from_dict({**{k: v for k, v in saved.items() if k != "gamma"}, "colour": "blue"})
