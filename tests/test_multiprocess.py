"""Two gloo processes on the CPU (DistributedType.MULTI_CPU) through accelerate launch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "multiprocess_worker.py"


@pytest.mark.parametrize("adapter_type,weights", [("none", "model.safetensors"), ("lora", "adapter_model.safetensors")])
def test_two_process_training(tiny_dir, tmp_path, adapter_type, weights):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(WORKER), str(tiny_dir),
           str(out), adapter_type]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in reports)
    assert reports[0]["online"] == reports[1]["online"]  # DDP keeps the trained weights identical
    assert reports[0]["target"] == reports[1]["target"]
    assert reports[0]["seeds"] != reports[1]["seeds"]  # each rank collects its own trials
    assert reports[0]["logs"] == reports[1]["logs"] and reports[0]["logs"]  # metrics reduced across ranks
    checkpoint = out / "checkpoint-4"
    assert (checkpoint / "replay_store_rank0").is_dir() and (checkpoint / "replay_store_rank1").is_dir()
    assert (out / weights).is_file() and not (out / ".staging" / "checkpoint-4").exists()
