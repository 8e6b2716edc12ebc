"""Two gloo processes on the CPU (DistributedType.MULTI_CPU) through accelerate launch."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "multiprocess_worker.py"


def launch(tiny_dir, out, *worker_args: str) -> list[dict]:
    """Runs the worker on two gloo ranks; returns each rank's report."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(WORKER), str(tiny_dir),
           str(out), *worker_args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as launched:
        try:
            _, stderr = launched.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(launched.pid, signal.SIGKILL)  # the ranks too, not only the launcher
            raise
    assert launched.returncode == 0, stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize("adapter_type,weights", [("none", "model.safetensors"), ("lora", "adapter_model.safetensors")])
def test_two_process_training(tiny_dir, tmp_path, adapter_type, weights):
    out = tmp_path / "out"
    reports = launch(tiny_dir, out, adapter_type)
    assert all(r["world_size"] == 2 for r in reports)
    assert reports[0]["online"] == reports[1]["online"]  # DDP keeps the trained weights identical
    assert reports[0]["target"] == reports[1]["target"]
    assert reports[0]["seeds"] != reports[1]["seeds"]  # each rank collects its own trials
    assert reports[0]["logs"] == reports[1]["logs"] and reports[0]["logs"]  # metrics reduced across ranks
    checkpoint = out / "checkpoint-4"
    assert (checkpoint / "replay_store_rank0").is_dir() and (checkpoint / "replay_store_rank1").is_dir()
    assert (out / weights).is_file() and not (out / ".staging" / "checkpoint-4").exists()


def test_ranks_stop_and_evaluate_on_the_same_steps_when_the_clock_decides(tiny_dir, tmp_path):
    """A run bounded by max_train_minutes and evaluated every eval_every_minutes, rank 1's clock at half speed:
    each rank deciding by its own clock would leave one waiting forever in a collective the other never joins."""
    reports = launch(tiny_dir, tmp_path / "out", "none", "clock")
    assert reports[0]["steps"] == reports[1]["steps"] > 4
    assert reports[0]["heldout_steps"] == reports[1]["heldout_steps"] and len(reports[0]["heldout_steps"]) >= 2
    assert reports[0]["online"] == reports[1]["online"]
