import importlib.util
import json
import re
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import huggingface_hub.constants
import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.commands.launch import launch_command_parser
from huggingface_hub import HfApi, ModelCard, RepoUrl
from huggingface_hub.utils import filter_repo_objects
from trl import TrlParser

import trl_icrl.model_card as model_card
from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.agent.config import AgentConfig
from trl_icrl.model_card import build_model_card, files_to_upload, push_folder_to_hub, write_model_card

REPO = Path(__file__).resolve().parent.parent
ENV_ID = "trl_icrl/ParametricFrozenLake-v0"
MDP_ENV_ID = "trl_icrl/RandomMDP-v0"
SHIPPED = {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
           "icrl_config.json", "README.md", "in_distribution.png", "training_curve.png", "results.json",
           "short_eval.json"}
NOT_SHIPPED = {"training_args.bin", "target/adapter_config.json", "target/adapter_model.safetensors",
               "replay_store/replay_store.json", "checkpoint-3/adapter_model.safetensors", "notes.txt"}
ICRL_CONFIG = {"base_model": "tiny", "q_parameterisation": "value_head", "adapter_type": "lora", "env_id": ENV_ID,
               "map_family": "id", "is_slippery": False, "protocol_format": "compact",
               "observation_format": "coords", "action_words": ["left", "down", "right", "up"],
               "reward_values": [1.0], "n_actions": 4, "n_observations": 49, "episodes_per_trial": 30,
               "max_context_tokens": 1024, "gamma": 0.9, "reward_scale": 1.0}
RESULTS = {"conditions": {
    "in_distribution": {"condition": "in_distribution", "agents": {
        "icrl": {"final10_success": 0.82, "mean_success": 0.61}, "untrained": {"final10_success": 0.1},
        "random": {"final10_success": 0.05}}},
    "out_of_distribution": {"condition": "out_of_distribution", "agents": {
        "icrl": {"final10_success": 0.44}, "random": {"final10_success": 0.02}}},
    "stitching": {"condition": "stitching", "agents": {
        "icrl": {"final10_success": 0.8, "paper_map_successes": 3}, "random": {"paper_map_successes": 1,
                                                                              "final10_success": 0.1}}},
}}
SHORT_EVAL = {"log_history": [], **{name: {"mean_success": mean, "final10_success": final10,
                                           "episodes_to_first_success": 3.5, "n_maps": 50}
                                    for name, mean, final10 in (("trained", 0.6, 0.75), ("untrained", 0.1, 0.12))}}


@pytest.fixture
def output_dir(tmp_path):
    """A directory shaped like DQNTrainer + recipe + evaluator output, with stand-in weights."""
    out = tmp_path / "agent"
    for name in (SHIPPED - {"README.md"}) | NOT_SHIPPED:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"\x89PNG\r\n\x1a\n" if name.endswith(".png") else b"{}")
    (out / "icrl_config.json").write_text(json.dumps(ICRL_CONFIG))
    (out / "results.json").write_text(json.dumps(RESULTS))
    (out / "short_eval.json").write_text(json.dumps(SHORT_EVAL))
    return out


@pytest.fixture
def training_args(tmp_path):
    return DQNConfig(output_dir=str(tmp_path / "args"), report_to="none").to_dict()


def _config(**changes) -> AgentConfig:
    return AgentConfig.from_dict({**ICRL_CONFIG, **changes})


def _write(output_dir, training_args, **kwargs) -> ModelCard:
    return ModelCard.load(write_model_card(output_dir, _config(), training_args, 123, tags=DQNTrainer._tag_names,
                                           **kwargs))


def _python_block(text: str) -> str:
    """The card's first Python block (``ICRLAgent.from_pretrained``; an adapter's card adds the plain-peft one)."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]


def test_card_metadata_and_sections(output_dir, training_args):
    card = _write(output_dir, training_args, repo_id="someone/icrl-agent")
    data = card.data
    assert {"trl", "trl-icrl", "dqn", "in-context-rl", "reinforcement-learning", ENV_ID} <= set(data.tags)
    assert data.base_model is None and data.library_name == "peft" and data.license is None  # "tiny": no hub id
    scores = [(r.dataset_name, r.metric_type, r.metric_value) for r in data.eval_results]
    assert all(r.dataset_config == r.dataset_name for r in data.eval_results)
    assert scores == [*((name, "final10_success", c["agents"]["icrl"]["final10_success"])
                        for name, c in RESULTS["conditions"].items()), ("stitching", "paper_map_successes", 3)]
    assert {(r.task_type, r.dataset_type) for r in data.eval_results} == {("reinforcement-learning", ENV_ID)}
    code = _python_block(card.text)
    assert 'ICRLAgent.from_pretrained("someone/icrl-agent")' in code
    assert f'gym.make("{ENV_ID}", family="id", seed=1234)' in code
    assert "![in_distribution.png](in_distribution.png)" in card.text
    assert "![training curve](training_curve.png)" in card.text
    assert "out_of_distribution.png" not in card.text  # no such file
    for row in ("| gamma | 0.9 |", "| loss_type | huber |", "| tau | 0.05 |", "| steps trained | 123 |"):
        assert row in card.text
    assert "| icrl | 0.82 | 0.44 | 0.80 |" in card.text and "| untrained | 0.10 | - | - |" in card.text
    assert "@inproceedings{rentschler-roberts-2025-rl" in card.text and "Limitations" in card.text


def test_card_falls_back_to_short_eval(output_dir, training_args):
    (output_dir / "results.json").unlink()
    card = _write(output_dir, training_args)
    (result,) = card.data.eval_results
    assert (result.dataset_name, result.metric_value) == ("in_distribution_short_eval", 0.75)
    assert "| trained | 0.60 | 0.75 | 3.5 | 50 |" in card.text
    assert f"ICRLAgent.from_pretrained({json.dumps(str(output_dir))})" in card.text


def test_card_without_evaluation(output_dir, training_args):
    (output_dir / "results.json").unlink()
    (output_dir / "short_eval.json").unlink()
    card = _write(output_dir, training_args)
    assert card.data.eval_results is None and "No evaluation was recorded" in card.text


def test_card_names_the_offline_data_it_learned_from(output_dir, tmp_path):
    offline = DQNConfig(output_dir=str(tmp_path / "args"), report_to="none", offline_data="low",
                        offline_trials=300).to_dict()
    text = " ".join(_write(output_dir, offline).text.split())
    assert "offline DQN" in text and "Data: 300 trials played by the scripted `low`-quality" in text
    assert "switching" not in text and "frame" not in text
    framed = DQNConfig(output_dir=str(tmp_path / "args"), report_to="none", offline_data="q_learning",
                       offline_map_switches=0.5, coordinate_frame=7).to_dict()
    text = " ".join(_write(output_dir, framed).text.split())
    assert "a share of 0.5 switching to a second map mid-trial" in text and "Each training map sat" in text
    framed["coordinate_frame_share"] = 0.5
    text = " ".join(_write(output_dir, framed).text.split())
    assert "A share of 0.5 of the training trials placed their map at a random offset in a 7 x 7 frame" in text
    online = DQNConfig(output_dir=str(tmp_path / "args"), report_to="none").to_dict()
    assert "online DQN" in _write(output_dir, online).text and "Data:" not in _write(output_dir, online).text
    seeded = DQNConfig(output_dir=str(tmp_path / "args"), report_to="none", offline_data="low",
                       online_collection=True).to_dict()
    text = " ".join(_write(output_dir, seeded).text.split())
    assert "online DQN" in text and "`low`-quality behaviour policy" in text
    assert "then the trials the model played itself" in text


def test_card_bf16_snippet_and_missing_template(output_dir, training_args, monkeypatch):
    card = build_model_card(output_dir, _config(adapter_type="ia3"),
                            {**training_args, "dtype": "bfloat16"}, 1)
    assert "dtype=torch.bfloat16" in _python_block(card.text) and "IA3" in card.text
    monkeypatch.setattr(model_card, "TEMPLATE_PATH", output_dir / "missing.md")
    with pytest.raises(FileNotFoundError, match="model_cards/"):
        build_model_card(output_dir, _config(), training_args, 1)


def test_card_names_a_hub_base_and_a_fully_fine_tuned_model(output_dir, training_args):
    hub = build_model_card(output_dir, _config(base_model="meta-llama/Llama-3.1-8B-Instruct"),
                           training_args, 1)
    assert hub.data.base_model == "meta-llama/Llama-3.1-8B-Instruct"
    full = build_model_card(output_dir, _config(adapter_type="none"), training_args, 1)
    assert full.data.library_name == "transformers" and "all its weights fine-tuned" in full.text


@pytest.mark.parametrize("adapter_type,weights", [("none", {"model.safetensors", "config.json"}),
                                                  ("lora", {"adapter_model.safetensors", "adapter_config.json",
                                                            "base/model.safetensors", "base/config.json"})])
def test_usage_snippet_runs_on_a_trained_folder(tiny_dir, tmp_path, adapter_type, weights):
    """The card's snippet plays; what ships is everything ``ICRLAgent.from_pretrained`` needs (the base of an
    adapter on the embedded model too), never the target network."""
    out = tmp_path / "trained"
    args = DQNConfig(output_dir=str(out), adapter_type=adapter_type, max_steps=1, trials_per_rollout=2,
                     episodes_per_trial=2,
                     learning_starts=2, per_device_train_batch_size=2, eval_maps=0, max_context_tokens=256,
                     disable_tqdm=True, report_to="none")
    trainer = DQNTrainer(str(tiny_dir), args)
    trainer.train()
    trainer.save_model()
    path = write_model_card(out, trainer.agent_config, trainer.args.to_dict(), trainer.state.global_step)
    namespace = {}
    exec(_python_block(path.read_text()), namespace)
    assert namespace["result"].successes.shape == (1, 30)  # the paper's 30 episodes in one context
    shipped = set(files_to_upload(out))
    assert weights | {"icrl_config.json", "README.md", "tokenizer_config.json"} <= shipped
    assert "training_args.bin" not in shipped and not any(name.startswith("target") for name in shipped)


def test_card_names_the_coordinate_frame_only_where_an_env_is_written_in_coordinates(tmp_path):
    """A config's coordinate frame shapes only envs written in coordinates: a model of random MDPs (state ids)
    trained with the general recipe's ``coordinate_frame=8`` says nothing of one; a Frozen Lake model does."""
    for env_ids, said in (([MDP_ENV_ID], False), ([ENV_ID, MDP_ENV_ID], True)):
        args = DQNConfig(output_dir=str(tmp_path / str(said)), train_env_ids=env_ids, coordinate_frame=8,
                         map_family=None, eval_maps=0, report_to="none")
        trainer = DQNTrainer("tiny", args)
        trainer.create_model_card()
        card = (tmp_path / str(said) / "README.md").read_text()
        assert ("at a random offset in a 8 x 8 frame of coordinates" in card) == said


def test_create_model_card_takes_trls_arguments_and_cites_the_paper_and_trl(tmp_path):
    """``create_model_card(model_name=, dataset_name=, tags=)`` as TRL's trainers take them; the card's tags are the
    trainer's ``_tag_names`` then these, its citations the paper's and TRL's, with the framework versions."""
    args = DQNConfig(output_dir=str(tmp_path / "out"), eval_maps=0, report_to="none")
    trainer = DQNTrainer("tiny", args)
    trainer.create_model_card(model_name="lake-agent", dataset_name="someone/lake-histories", tags="my-tag")
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.tags[:len(DQNTrainer._tag_names) + 1] == [*DQNTrainer._tag_names, "my-tag"]
    assert card.data.model_name == "lake-agent" and card.text.startswith("\n# lake-agent: an in-context RL agent")
    assert card.data.datasets == ["someone/lake-histories"] and "dataset `someone/lake-histories`" in card.text
    assert "@inproceedings{rentschler-roberts-2025-rl" in card.text and "arXiv:2501.14176" in card.text
    assert "@software{vonwerra2020trl" in card.text and "title   = {{TRL: Transformers Reinforcement" in card.text
    for name, version in model_card.framework_versions().items():
        assert f"- {name}: {version}\n" in card.text
    assert model_card.framework_versions()["TRL"] != "unknown"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _refuse(*args, **kwargs):
    raise AssertionError("the network was touched")


def test_push_offline_raises_before_the_network(output_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(HfApi, "create_repo", _refuse)
    monkeypatch.setattr(HfApi, "upload_folder", _refuse)
    before = _snapshot(output_dir)
    with pytest.raises(RuntimeError, match=r"^Cannot push to the Hub because offline mode is on \(HF_HUB_OFFLINE"):
        push_folder_to_hub(output_dir, "someone/icrl-agent", token="hf_fake")
    assert _snapshot(output_dir) == before


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_push_without_token_raises(output_dir, online, monkeypatch):
    monkeypatch.setattr(model_card, "get_token", lambda: None)
    monkeypatch.setattr(HfApi, "create_repo", _refuse)
    with pytest.raises(RuntimeError, match="no Hugging Face token was found; run `hf auth login`"):
        push_folder_to_hub(output_dir, "someone/icrl-agent")


def test_push_refuses_a_folder_without_an_agent(output_dir, online, monkeypatch):
    monkeypatch.setattr(HfApi, "create_repo", _refuse)
    (output_dir / "adapter_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="not a directory written by DQNTrainer"):
        push_folder_to_hub(output_dir, "someone/icrl-agent", token="hf_fake")


def test_push_uploads_exactly_the_shipped_files(output_dir, training_args, online, monkeypatch):
    write_model_card(output_dir, _config(), training_args, 123, repo_id="someone/icrl-agent")
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = (self.token, repo_id, kwargs)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs):
        calls["upload_folder"] = kwargs

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = push_folder_to_hub(output_dir, "someone/icrl-agent", token="hf_fake", private=True)
    assert url == "https://huggingface.co/someone/icrl-agent"
    assert calls["create_repo"] == ("hf_fake", "someone/icrl-agent", {"exist_ok": True, "private": True})
    upload = calls["upload_folder"]
    assert upload["allow_patterns"] == files_to_upload(output_dir)
    assert (upload["folder_path"], upload["repo_id"]) == (output_dir, "someone/icrl-agent")
    every_file = sorted(_snapshot(output_dir))
    matched = set(filter_repo_objects(every_file, allow_patterns=upload["allow_patterns"],
                                      ignore_patterns=upload.get("ignore_patterns")))
    assert matched == SHIPPED


@pytest.mark.parametrize("name", ["llama31_8b_paper_ia3.yaml", "llama31_8b_lora.yaml"])
def test_recipe_configs_parse_into_dqn_config(name, monkeypatch):
    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda: True)  # CPU-only CI
    path = REPO / "recipes" / "configs" / name
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config(["--config", str(path)])
    assert args.model_name_or_path == "meta-llama/Llama-3.1-8B-Instruct" and args.bf16
    assert args.dtype == "bfloat16" and args.max_context_tokens == 4096 and args.activation_checkpointing
    for key, value in yaml.safe_load(path.read_text()).items():
        assert getattr(args, key) == value, key


def test_smollm2_recipe_config_parses_with_every_key(monkeypatch):
    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda: True)  # CPU-only CI
    path = REPO / "recipes" / "configs" / "smollm2_lora.yaml"
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config(["--config", str(path)])
    for key, value in yaml.safe_load(path.read_text()).items():
        assert getattr(args, key) == value, key
    assert args.protocol_format == "chat" and args.adapter_type == "lora" and not args.online_collection


@pytest.mark.parametrize("name", ["tiny.yaml", "tiny_online.yaml", "tiny_results.yaml", "tiny_offline.yaml",
                                  "tiny_results_offline.yaml", "tiny_adapter_offline.yaml"])
def test_tiny_recipe_configs_parse_with_every_key(name):
    path = REPO / "recipes" / "configs" / name
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config(["--config", str(path)])
    config = yaml.safe_load(path.read_text())
    for key, value in config.items():
        assert getattr(args, key) == value, key
    assert args.online_collection == config.get("online_collection", args.offline_data is None)


def load_main_job():
    """``recipes/frozen_lake_dqn.py`` as a module."""
    spec = importlib.util.spec_from_file_location("frozen_lake_dqn", REPO / "recipes" / "frozen_lake_dqn.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe


def test_main_job_runs_the_tiny_config_unless_given_one(tmp_path):
    recipe = load_main_job()
    default = recipe.parse_config(["--max_train_minutes", "3"])
    assert default.offline_data == "q_learning" and not default.online_collection and default.max_train_minutes == 3
    assert default.output_dir == "outputs/frozen_lake_dqn" and default.model_name_or_path == "tiny"
    assert default.save_strategy == "steps" and default.save_steps == 100  # a crash loses at most 100 updates
    assert recipe.parse_config(["--offline_data", "null"]).offline_data is None  # the command line unsets it
    general = ["--config", str(Path(recipe.__file__).parent / "configs" / "tiny_general.yaml")]
    assert recipe.parse_config(general).map_family == "up_to_8"
    assert recipe.parse_config([*general, "--map_family", "null"]).map_family == "id"  # unset: the env's first
    own = tmp_path / "own.yaml"
    own.write_text(f"output_dir: {tmp_path}\n")
    args = recipe.parse_config(["--config", str(own)])
    assert args.offline_data is None and args.online_collection and args.output_dir == str(tmp_path)


def test_accelerate_configs_are_valid():
    dests = {action.dest for action in launch_command_parser()._actions}
    paths = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))
    assert {p.name for p in paths} == {"single_gpu.yaml", "multi_gpu_ddp.yaml", "fsdp.yaml",
                                       "deepspeed_zero2.yaml", "deepspeed_zero3.yaml"}
    for path in paths:
        config = ClusterConfig.from_yaml_file(str(path))  # unknown top-level keys raise
        assert config.mixed_precision == "bf16"
        assert set(config.fsdp_config) | set(config.deepspeed_config) <= dests, path.name


def test_main_job_pushes_once_after_its_short_eval_to_the_trainers_repo(tmp_path, online, monkeypatch):
    """``--push_to_hub true`` with no ``hub_model_id``: one upload, to the repo the Trainer created, after the short
    evaluation and the curve are in the folder; the card's snippet names that repo and carries license and links."""
    main_job = load_main_job()
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id))
        return RepoUrl(f"https://huggingface.co/someone/{repo_id.split('/')[-1]}")

    def upload_folder(self, folder_path, repo_id, allow_patterns, **kwargs):
        calls.append(("upload_folder", repo_id, sorted(allow_patterns), Path(folder_path, "README.md").read_text()))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(model_card, "get_token", lambda: "hf_fake")
    out = tmp_path / "pushed_run"
    config = str(main_job.DEFAULT_CONFIG.parent / "tiny_online.yaml")
    monkeypatch.setattr(sys, "argv", ["frozen_lake_dqn.py", "--config", config, "--output_dir", str(out),
                                      "--max_steps", "2", "--trials_per_rollout", "2",
                                      "--episodes_per_trial", "2", "--learning_starts", "2", "--eval_maps", "2",
                                      "--eval_episodes", "2", "--max_context_tokens", "256", "--logging_steps", "1",
                                      "--per_device_train_batch_size", "2", "--push_to_hub", "true", "--report_to",
                                      "none", "--disable_tqdm", "true"])
    main_job.main()
    uploads = [c for c in calls if c[0] == "upload_folder"]
    assert len(uploads) == 1
    _, repo_id, files, card = uploads[0]
    assert repo_id == "someone/pushed_run"
    assert {"short_eval.json", "training_curve.png", "adapter_model.safetensors", "README.md"} <= set(files)
    assert 'ICRLAgent.from_pretrained("someone/pushed_run")' in card
    data = ModelCard(card).data
    assert data.license == "apache-2.0" and "deep-reinforcement-learning" in data.tags
    assert data.base_model == "trl-icrl/tiny-llama"
    assert "arxiv.org/abs/2501.14176" in card and "pip install trl_icrl" in card


FORBIDDEN = ("replay_store", "optimizer", "scheduler", "rng_state", "target/", "dqn_state", "training_args.bin",
             ".staging", "checkpoint-", "last-checkpoint")
"""Parts of a path a push must never upload: training state, the target network, checkpoints."""


@pytest.mark.parametrize("hub_strategy", ["every_save", "all_checkpoints"])
def test_main_job_with_checkpoints_pushes_the_agent_once_and_nothing_else(tmp_path, online, monkeypatch,
                                                                          hub_strategy):
    """Checkpoints every 2 of 6 steps with ``--push_to_hub true``: every path any Hub call would upload is listed;
    one upload, of the agent, its card and its evaluation, none of the training state."""
    main_job = load_main_job()
    uploads = []

    def create_repo(self, repo_id, **kwargs):
        return RepoUrl(f"https://huggingface.co/someone/{repo_id.split('/')[-1]}")

    def upload_folder(self, folder_path, repo_id, allow_patterns=None, ignore_patterns=None, path_in_repo=None,
                      **kwargs):
        names = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
        uploads.append([f"{path_in_repo}/{name}" if path_in_repo else name for name in filter_repo_objects(
            names, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)])
        if kwargs.get("run_as_future"):  # Trainer's background pushes wait on it
            done = Future()
            done.set_result(None)
            return done

    def other_upload(self, *args, **kwargs):
        uploads.append([f"{kwargs.get('path_in_repo') or kwargs.get('operations') or args}"])

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    for name in ("upload_file", "create_commit"):
        monkeypatch.setattr(HfApi, name, other_upload)
    monkeypatch.setattr(model_card, "get_token", lambda: "hf_fake")
    out = tmp_path / "checkpointed_run"
    flags = {"config": str(REPO / "recipes/configs/tiny_online.yaml"), "output_dir": str(out), "max_steps": 6,
             "save_strategy": "steps", "save_steps": 2, "save_total_limit": 2, "hub_strategy": hub_strategy,
             "logging_steps": 1, "trials_per_rollout": 2, "episodes_per_trial": 2, "learning_starts": 2,
             "eval_maps": 2, "eval_episodes": 2, "max_context_tokens": 256, "per_device_train_batch_size": 2,
             "push_to_hub": "true", "report_to": "none", "disable_tqdm": "true"}
    monkeypatch.setattr(sys, "argv", ["frozen_lake_dqn.py", *(f for k, v in flags.items() for f in (f"--{k}", str(v)))])
    main_job.main()
    assert (out / "checkpoint-6" / "optimizer.pt").is_file() and (out / "replay_store").is_dir()  # all there to leak
    assert len(uploads) == 1, uploads
    (paths,) = uploads
    assert {"adapter_model.safetensors", "adapter_config.json", "icrl_config.json", "README.md",
            "short_eval.json", "training_curve.png"} <= set(paths)
    assert not [path for path in paths if any(part in path for part in FORBIDDEN)], paths


def test_main_job_answers_bad_input_in_one_sentence(tmp_path):
    """A bad flag stops the main job before any work with one line naming it, not a traceback."""
    done = subprocess.run([sys.executable, str(REPO / "recipes" / "frozen_lake_dqn.py"), "--learning_rate", "-1",
                           "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "frozen_lake_dqn.py: learning_rate must be > 0, got -1.0"
    assert not (tmp_path / "out").exists()


def test_a_card_repeats_the_main_jobs_command_line_and_its_machine(tmp_path):
    assert model_card.training_command(["recipes/frozen_lake_dqn.py", "--config", "my config.yaml"]) == (
        "accelerate launch recipes/frozen_lake_dqn.py --config 'my config.yaml'")
    assert model_card.training_command(["/usr/bin/trl-icrl", "dqn", "--seed", "1"]) == "trl-icrl dqn --seed 1"
    assert model_card.training_command(["-c"]) is None  # trained from Python
    card = build_model_card(tmp_path, AgentConfig.from_dict(ICRL_CONFIG), {"max_train_minutes": 7}, 12)
    assert "## Reproduce" in card.text and "12 updates, within 7 minutes" in card.text
    assert model_card.machine_description() in card.text
    (tmp_path / "short_eval.json").write_text(json.dumps({"log_history": [{"step": 12, "train_runtime": 421.0}]}))
    card = build_model_card(tmp_path, AgentConfig.from_dict(ICRL_CONFIG), {"max_train_minutes": 7}, 12)
    assert "12 updates, 7.0 minutes of training" in card.text
