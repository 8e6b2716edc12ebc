"""The main job's script (``trl_icrl.scripts.dqn``): TRL's flags, the run's folder written by the library, and the
``trl-icrl dqn`` launch through accelerate."""

import dataclasses
import inspect
import json
import math
import sys
from pathlib import Path

import pytest
from peft import LoraConfig
from trl import get_peft_config

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.agent.config import ICRL_CONFIG, AgentConfig
from trl_icrl.baselines import play_agents
from trl_icrl.cli import launch_command
from trl_icrl.model_card import IN_CONTEXT_PLOT, SHORT_EVAL, training_command
from trl_icrl.offline_data import offline_trials
from trl_icrl.scripts import dqn
from trl_icrl.trainer.dqn_config import parameter_docs

REPO = Path(__file__).parent.parent
RUN_FLAGS = {"max_steps": 2, "offline_trials": 4, "trials_per_rollout": 2, "episodes_per_trial": 2,
             "learning_starts": 2, "per_device_train_batch_size": 2, "eval_maps": 2, "eval_episodes": 3,
             "max_context_tokens": 128, "save_strategy": "no", "logging_steps": 1, "report_to": "none",
             "disable_tqdm": "true", "max_train_minutes": 10}


def flags(**values) -> list[str]:
    return [word for key, value in values.items() for word in (f"--{key}", str(value))]


def test_trls_model_and_script_flags_are_taken_and_build_trls_peft_config():
    script_args, args, model_args = dqn.parse_args([
        "--use_peft", "--lora_r", "8", "--lora_alpha", "32", "--model_revision", "v1", "--trust_remote_code", "true",
        "--load_in_4bit", "false", "--lora_modules_to_save", "embed_tokens", "--use_rslora", "true",
        "--dataset_config", "mdp", "--dataset_test_split", "test"])
    assert isinstance(args, DQNConfig) and args.trust_remote_code and args.dataset_config == "mdp"
    assert script_args.dataset_test_split == "test" and model_args.model_revision == "v1"
    model = dqn.model_config(args, model_args)
    peft_config = get_peft_config(model)
    assert isinstance(peft_config, LoraConfig) and peft_config.r == 8 and peft_config.lora_alpha == 32
    assert peft_config.use_rslora and peft_config.modules_to_save == ["embed_tokens"]
    assert get_peft_config(dqn.model_config(*dqn.parse_args([])[1:])) is None  # without --use_peft: DQNConfig's


@pytest.mark.parametrize("use_rslora", [False, True])
def test_lora_scaling_is_peft_s_unless_use_rslora(tiny_dir, tmp_path, use_rslora):
    args = DQNConfig(output_dir=str(tmp_path), lora_r=4, lora_alpha=8, use_rslora=use_rslora, eval_maps=0,
                     report_to="none")
    trainer = DQNTrainer(str(tiny_dir), args)
    scaling = {m.scaling["default"] for m in trainer.q_network.model.modules()
               if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling}
    assert scaling == {8 / math.sqrt(4) if use_rslora else 8 / 4}


def test_the_shipped_lora_recipes_keep_rslora():
    """Every shipped config that trains LoRA was run with rank-stabilised scaling, and says so."""
    for path in sorted(dqn.CONFIGS_DIR.glob("*.yaml")):
        args = dqn.parse_config(["--config", str(path)]) if "base" not in path.stem else None
        if args is not None and args.adapter_type == "lora":
            assert args.use_rslora, path.name


def test_python_and_the_command_leave_the_same_folder(tiny_dir, tmp_path, capsys):
    """``DQNTrainer.save_run`` after ``train``: the agent, replay store, curves, the short evaluation on held-out
    maps (trained vs untrained, with its in-context figure) and the card embedding it; the command does the same."""
    args = dqn.parse_config(["--config", "tiny", *flags(**RUN_FLAGS, output_dir=tmp_path / "python")])
    trainer = DQNTrainer(str(tiny_dir), args)
    trainer.train()
    report = trainer.save_run()
    assert report["trained"]["n_maps"] == 2 and len(report["untrained"]["success_per_episode"]) == 3
    python = {p.name for p in (tmp_path / "python").iterdir()}
    assert {"adapter_model.safetensors", "replay_store", "training_curve.png", SHORT_EVAL, IN_CONTEXT_PLOT,
            "README.md"} <= python
    assert f"![{IN_CONTEXT_PLOT}]({IN_CONTEXT_PLOT})" in (tmp_path / "python" / "README.md").read_text()
    assert json.loads((tmp_path / "python" / SHORT_EVAL).read_text())["trained"] == report["trained"]
    dqn.run(["--config", "tiny", *flags(**RUN_FLAGS, output_dir=tmp_path / "command",
                                        model_name_or_path=tiny_dir)])
    assert "short eval on 2 held-out maps" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "command").iterdir()} == python


def test_trl_icrl_dqn_launches_the_script_through_accelerate():
    two = launch_command(["--num_processes", "2", "--config", "tiny", "--use_peft", "--lora_r", "8"])
    assert two[:3] == [sys.executable, "-m", "accelerate.commands.launch"] and "--multi_gpu" in two
    assert two[two.index("--num_processes") + 1] == "2"
    assert two[two.index("-m", 3):] == ["-m", "trl_icrl.scripts.dqn", "--config", "tiny", "--use_peft", "--lora_r",
                                        "8"]
    assert training_command([dqn.__file__, "--config", "tiny"]) == "trl-icrl dqn --config tiny"  # the card's
    configured = launch_command(["--accelerate_config", "ddp.yaml"])
    assert configured[configured.index("--config_file") + 1] == "ddp.yaml" and "--multi_gpu" not in configured
    assert "--num_processes" not in configured  # the accelerate config's own


def test_each_fields_help_is_its_docstring_entry():
    """One text per field: ``DQNConfig``'s docstring entry is its ``--help`` (no field without an entry, no entry
    without a field, no help written apart that could drift)."""
    docs = parameter_docs(DQNConfig.__doc__)
    own = [name for name in DQNConfig.__annotations__ if not name.startswith("_")]
    assert [name for name in own if name not in docs] == []
    assert set(docs) <= {f.name for f in dataclasses.fields(DQNConfig)}
    actions = dqn.make_parser()._option_string_actions
    for name in own:
        assert actions[f"--{name}"].help == docs[name], name
    assert "dataset_name" in docs["online_collection"] and '`"random"`' in docs["offline_data"]


def test_the_training_and_playing_contexts_have_dqnconfigs_names_everywhere(tmp_path):
    """``max_context_tokens`` is the training context and ``eval_context_tokens`` the playing one, in DQNConfig,
    AgentConfig, offline data and the tabular baselines; icrl_config.json keeps its published keys."""
    old = json.loads((REPO / "results" / "tiny_adapter_offline" / ICRL_CONFIG).read_text())
    config = AgentConfig.load(REPO / "results" / "tiny_adapter_offline")
    assert (config.eval_context_tokens, config.max_context_tokens) == (old["max_context_tokens"],
                                                                        old["training_context_tokens"])
    config.save(tmp_path)
    assert AgentConfig.load(tmp_path) == config and config.to_dict()["training_context_tokens"] == 576
    for function in (offline_trials, play_agents):
        assert "max_context_tokens" in inspect.signature(function).parameters, function.__name__
