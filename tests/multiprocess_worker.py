"""Run under ``accelerate launch --multi_gpu --num_processes 2``: trains a few steps, then every rank
writes what the multi-process test checks (weight fingerprints, its replay rows, its metrics)."""

import json
import sys
from pathlib import Path

import torch

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.q_network import ONLINE, TARGET


def fingerprint(network, which: str) -> float:
    params = network.weights(which).values()
    return float(sum(p.detach().double().abs().sum() + p.detach().double().sum() for p in params))


def main(tiny_dir: str, output_dir: str, adapter_type: str) -> None:
    args = DQNConfig(output_dir=output_dir, adapter_type=adapter_type, max_steps=4, trials_per_rollout=2,
                     episodes_per_trial=3,
                     learning_starts=2, rollout_interval=2, per_device_train_batch_size=2, eval_maps=0,
                     max_context_tokens=256, logging_steps=2, save_strategy="steps", save_steps=4,
                     disable_tqdm=True, ddp_find_unused_parameters=False)
    trainer = DQNTrainer(tiny_dir, args)
    trainer.train()
    trainer.save_model()
    rank = trainer.args.process_index
    report = {"rank": rank, "world_size": trainer.args.world_size,
              "online": fingerprint(trainer.q_network, ONLINE),
              "target": fingerprint(trainer.q_network, TARGET),
              "seeds": [int(s) for s in trainer.replay_store.dataset["seed"]],
              "logs": [log for log in trainer.state.log_history if "td_loss" in log]}
    Path(output_dir, f"rank{rank}.json").write_text(json.dumps(report))
    torch.distributed.barrier()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
