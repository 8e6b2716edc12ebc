"""Run under ``accelerate launch --multi_gpu --num_processes 2``: trains a few steps, then every rank
writes what the multi-process test checks (weight fingerprints, its replay rows, its metrics, its step count).
With ``clock``, the run is bounded by wall time and evaluates the held-out maps every second instead, while rank 1's
clock runs at half speed: the ranks must still stop and evaluate on the same steps."""

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.agent.q_network import ONLINE, TARGET
from trl_icrl.trainer import callbacks


def fingerprint(network, which: str) -> float:
    params = network.weights(which).values()
    return float(sum(p.detach().double().abs().sum() + p.detach().double().sum() for p in params))


def main(tiny_dir: str, output_dir: str, adapter_type: str, mode: str = "steps") -> None:
    budget = {"steps": dict(max_steps=4, eval_maps=0, save_strategy="steps", save_steps=4),
              "clock": dict(max_steps=100_000, max_train_minutes=0.1, eval_every_minutes=1 / 60, eval_maps=2,
                            eval_episodes=2, save_strategy="no")}[mode]
    if mode == "clock" and os.environ["RANK"] == "1":
        callbacks.time = SimpleNamespace(monotonic=lambda: time.monotonic() / 2)
    args = DQNConfig(output_dir=output_dir, adapter_type=adapter_type, trials_per_rollout=2, episodes_per_trial=3,
                     learning_starts=2, rollout_interval=2, per_device_train_batch_size=2, max_context_tokens=256,
                     logging_steps=2, disable_tqdm=True, ddp_find_unused_parameters=False, **budget)
    trainer = DQNTrainer(tiny_dir, args)
    trainer.train()
    trainer.save_model()
    rank = trainer.args.process_index
    report = {"rank": rank, "world_size": trainer.args.world_size,
              "online": fingerprint(trainer.q_network, ONLINE),
              "target": fingerprint(trainer.q_network, TARGET),
              "seeds": [int(s) for s in trainer.replay_store.dataset["seed"]],
              "logs": [log for log in trainer.state.log_history if "td_loss" in log],
              "steps": trainer.state.global_step,
              "heldout_steps": [log["step"] for log in trainer.state.log_history if "validation_final10" in log]}
    Path(output_dir, f"rank{rank}.json").write_text(json.dumps(report))
    torch.distributed.barrier()


if __name__ == "__main__":
    main(*sys.argv[1:])
