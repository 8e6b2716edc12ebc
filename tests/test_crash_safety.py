"""SIGKILL a tiny training run at three points (one inside a checkpoint save), resume each, compare."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from trl_icrl import ReplayStore

RECIPE = Path(__file__).parent.parent / "recipes" / "frozen_lake_dqn.py"
ONLINE_CONFIG = RECIPE.parent / "configs" / "tiny_online.yaml"  # DQNConfig's defaults: online from an empty store
STEPS = 8


def command(tiny_dir, output_dir, resume: bool = False) -> list[str]:
    cmd = [sys.executable, str(RECIPE), "--config", str(ONLINE_CONFIG), "--model_name_or_path", str(tiny_dir),
           "--adapter_type", "none",
           "--output_dir", str(output_dir),
           "--max_steps", str(STEPS), "--save_strategy", "steps", "--save_steps", "2", "--trials_per_rollout", "4",
           "--episodes_per_trial", "4", "--learning_starts", "4", "--rollout_interval", "2",
           "--per_device_train_batch_size", "4", "--max_context_tokens", "512", "--eval_maps", "0",
           "--logging_steps", "2", "--disable_tqdm", "true", "--seed", "0"]
    return cmd + (["--resume_from_checkpoint", "true"] if resume else [])


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def kill_when(cmd, condition, timeout: float = 240.0) -> None:
    process = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def final_weights(output_dir) -> dict[str, torch.Tensor]:
    """All trained weights (the default trains every weight of the tiny model)."""
    return load_file(Path(output_dir) / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tiny_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(command(tiny_dir, output_dir), env=env(), check=True, capture_output=True)
    return output_dir


def staging_has(output_dir, step: int):
    return lambda: (Path(output_dir) / ".staging" / f"checkpoint-{step}" / "model.safetensors").exists()


def has_checkpoint(output_dir, step: int):
    return lambda: (Path(output_dir) / f"checkpoint-{step}").is_dir()


@pytest.mark.parametrize("kill_point", ["after_first_checkpoint", "inside_a_save", "late"])
def test_sigkill_then_resume(tiny_dir, tmp_path, uninterrupted, kill_point):
    output_dir = tmp_path / "run"
    condition = {"after_first_checkpoint": has_checkpoint(output_dir, 2),
                 "inside_a_save": staging_has(output_dir, 4),
                 "late": has_checkpoint(output_dir, 6)}[kill_point]
    kill_when(command(tiny_dir, output_dir), condition)
    if kill_point == "inside_a_save":  # the kill landed between writing checkpoint-4 aside and renaming it in
        assert (output_dir / ".staging" / "checkpoint-4").is_dir() and not (output_dir / "checkpoint-4").exists()
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, "no complete checkpoint before the kill"
    last = checkpoints[-1]
    recorded = ReplayStore.load_from_disk(last / "replay_store")
    assert recorded.total_appended >= 4
    done = subprocess.run(command(tiny_dir, output_dir, resume=True), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming from {last}" in done.stdout
    final_store = ReplayStore.load_from_disk(output_dir / "replay_store")
    assert final_store.rows(range(len(recorded))) == recorded.rows(range(len(recorded)))
    expected, got = final_weights(uninterrupted), final_weights(output_dir)
    assert expected.keys() == got.keys()
    assert all(torch.allclose(expected[k], got[k], atol=1e-5) for k in expected)
