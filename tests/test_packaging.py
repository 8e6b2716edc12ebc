"""What an installed trl_icrl costs to import, and that a wheel installed without the source tree works."""

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

HEAVY = {"gymnasium", "datasets", "peft"}


def _module_imports(module: str) -> set[str]:
    """The modules ``module`` (a ``trl_icrl`` module) imports at its top level, relative imports resolved."""
    path = REPO / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            names.add(f"{base}.{node.module}" if node.level else node.module)
    return names


def test_the_config_imports_no_heavy_dependency():
    """``DQNConfig`` validates its choices without importing peft, gymnasium or datasets, even through the
    ``trl_icrl`` modules it imports (their package ``__init__`` aside)."""
    seen, todo = set(), ["trl_icrl.trainer.dqn_config"]
    while todo:
        module = todo.pop()
        seen.add(module)
        for name in _module_imports(module):
            assert name.split(".")[0] not in HEAVY, f"{module} imports {name}"
            if name.startswith("trl_icrl.") and name not in seen:
                todo.append(name)
    assert {"trl_icrl.choices", "trl_icrl.protocol"} <= seen


IMPORTED = """
import json, sys
import trl_icrl
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"
                        or m.startswith(("trl_icrl.evaluator", "trl_icrl.evaluation")))))
"""


def test_import_loads_no_plotting_and_no_evaluator():
    done = subprocess.run([sys.executable, "-c", IMPORTED], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


PLAY_FROM_WHEEL = """
import json, sys
from pathlib import Path
import gymnasium as gym
import trl_icrl
from trl_icrl import DQNConfig, DQNTrainer, ICRLAgent
args = DQNConfig(output_dir="out", max_steps=2, trials_per_rollout=2, episodes_per_trial=2, learning_starts=2,
                 per_device_train_batch_size=2, eval_maps=0, max_context_tokens=256, disable_tqdm=True,
                 report_to="none")
trainer = DQNTrainer("tiny", args)
trainer.train()
trainer.save_model()
agent = ICRLAgent.from_pretrained("out")
result = agent.play(gym.make("trl_icrl/ParametricFrozenLake-v0", seed=3), n_episodes=3, schedule="paper_ramp")
print(json.dumps({"file": trl_icrl.__file__, "step": trainer.state.global_step,
                  "card": Path("out/README.md").read_text(), "successes": list(result.successes.shape)}))
"""


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_trains_saves_and_plays(tmp_path):
    """``pip install .`` (not editable): the wheel alone carries what training, the model card and playing need, and
    its console command ``trl-icrl dqn --config tiny`` runs the main job with a config shipped inside it."""
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source)
    shutil.copytree(REPO / "trl_icrl", source / "trl_icrl", ignore=shutil.ignore_patterns("__pycache__"))
    run = dict(capture_output=True, text=True, check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                    "-w", str(tmp_path / "wheels")], **run)
    (wheel,) = (tmp_path / "wheels").glob("trl_icrl-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], **run)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], **run)
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               **run).stdout.strip()
    # the dependencies come from this interpreter's site-packages, after the venv's own (where the wheel went)
    here = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    Path(venv_site, "zz_dependencies.pth").write_text("".join(f"{path}\n" for path in here))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TRL_ICRL_HOME=str(tmp_path / "home"))
    (tmp_path / "elsewhere").mkdir()
    done = subprocess.run([str(python), "-c", PLAY_FROM_WHEEL], cwd=tmp_path / "elsewhere", env=env, **run)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).is_relative_to(venv)
    assert report["step"] == 2 and report["successes"] == [1, 3]
    assert 'ICRLAgent.from_pretrained("out")' in report["card"] and "## Training hyperparameters" in report["card"]
    # the console command launches the main job with a config shipped in the wheel on two ranks, with TRL's flags
    flags = {"output_dir": "cli_out", "max_steps": 2, "offline_trials": 4, "trials_per_rollout": 2,
             "episodes_per_trial": 2, "learning_starts": 2, "per_device_train_batch_size": 2, "eval_maps": 2,
             "eval_episodes": 2, "max_context_tokens": 256, "save_strategy": "steps", "save_steps": 2,
             "logging_steps": 1, "report_to": "none", "disable_tqdm": "true", "num_processes": 2, "lora_r": 8}
    done = subprocess.run([str(venv / "bin" / "trl-icrl"), "dqn", "--config", "tiny", "--use_peft",
                           *(f for k, v in flags.items() for f in (f"--{k}", str(v)))],
                          cwd=tmp_path / "elsewhere", env={**env, "CUDA_VISIBLE_DEVICES": ""}, **run)
    out = tmp_path / "elsewhere" / "cli_out"
    assert all((out / "checkpoint-2" / f"replay_store_rank{rank}").is_dir() for rank in (0, 1))
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 8
    assert "short eval on 2 held-out maps" in done.stdout and f"outputs written to {out}" in done.stdout
    assert {"adapter_model.safetensors", "icrl_config.json", "short_eval.json", "training_curve.png",
            "README.md"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "short_eval.json").read_text())["log_history"][-1]["step"] == 2
    refused = subprocess.run([str(venv / "bin" / "trl-icrl"), "dqn", "--config", "no_such"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.startswith("trl-icrl dqn: no config file no_such")


def test_import_writes_nothing_to_disk(tmp_path):
    """``import trl_icrl`` leaves a fresh ``HF_HOME`` (and ``TRL_ICRL_HOME``) empty; the embedded base enters the
    cache the first time its name is loaded."""
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "TRL_ICRL_HOME": str(tmp_path / "icrl_home"),
           "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    code = "import trl_icrl; import trl_icrl.trainer; print(trl_icrl.DQNTrainer.__name__)"
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert not any(tmp_path.rglob("*"))
    code = "import trl_icrl; from trl_icrl.tiny_model import resolve_model_path; resolve_model_path('tiny')"
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert (tmp_path / "hf_home" / "hub" / "models--trl-icrl--tiny-llama" / "refs" / "main").is_file()
