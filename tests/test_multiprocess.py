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
    run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
         "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(WORKER), str(tiny_dir), str(out), *worker_args])
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def run(cmd: list[str]) -> str:
    """Runs a launch on the CPU, offline, killing the ranks too after 300 s; returns its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as launched:
        try:
            stdout, stderr = launched.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(launched.pid, signal.SIGKILL)  # the ranks too, not only the launcher
            raise
    assert launched.returncode == 0, stderr[-3000:]
    return stdout


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


def test_trl_icrl_dqn_runs_two_ranks_with_trls_peft_flags(tmp_path):
    """``trl-icrl dqn --config tiny --use_peft --lora_r 8 --num_processes 2``: accelerate launches two gloo ranks,
    each with its replay store in the checkpoint; rank 0 writes the run's folder."""
    out = tmp_path / "out"
    flags = {"output_dir": out, "max_steps": 2, "save_strategy": "steps", "save_steps": 2, "offline_trials": 4,
             "per_device_train_batch_size": 2, "eval_maps": 2, "eval_episodes": 2, "max_context_tokens": 128,
             "logging_steps": 1, "report_to": "none", "disable_tqdm": "true"}
    cmd = [sys.executable, "-c", "from trl_icrl.cli import main; main()", "dqn", "--config", "tiny", "--use_peft",
           "--lora_r", "8", "--num_processes", "2", *(w for k, v in flags.items() for w in (f"--{k}", str(v)))]
    stdout = run(cmd)
    assert all((out / "checkpoint-2" / f"replay_store_rank{rank}").is_dir() for rank in (0, 1))
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["peft_type"] == "LORA"  # TRL's get_peft_config, the flags' rank
    assert (out / "short_eval.json").is_file() and "short eval on 2 held-out maps" in stdout
