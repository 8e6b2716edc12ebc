"""Side-by-side throughput on the embedded tiny model (one process, this machine).

1. Rollouts: the batched KV-cached engine vs. re-encoding the whole context at every step (the
   authors' way), on the same 30-episode trials: env-steps per second and their ratio.
2. Updates: one DQN update (online forward + backward, target forward) vs. a plain causal-LM
   forward + backward on the same tokens: tokens per second and their ratio.

    python benchmarks/throughput.py [--envs 8] [--episodes 30] [--batch 8] [--schedule uniform]
"""

import argparse
import time

import numpy as np
import torch

from trl_icrl import DQNConfig, DQNTrainer, ExplorationSchedule
from trl_icrl.collector import heldout_maps
from trl_icrl.evaluation import frozen_lake_envs
from trl_icrl.replay_store import collate_trials


@torch.no_grad()
def reencode_steps_per_second(trainer: DQNTrainer, trials) -> float:
    """Replay the same decisions, each with a full forward over its whole context (batched across envs)."""
    network, pad = trainer.q_network.eval(), trainer.pad_token_id
    steps = max(len(t.decision_positions) for t in trials)
    start = time.perf_counter()
    for d in range(steps):
        contexts = [t.input_ids[: t.decision_positions[d] + 1] for t in trials if d < len(t.decision_positions)]
        width = max(map(len, contexts))
        ids = torch.full((len(contexts), width), pad)
        mask = torch.zeros_like(ids)
        for i, c in enumerate(contexts):
            ids[i, width - len(c):], mask[i, width - len(c):] = torch.tensor(c), 1
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        network(ids, torch.full((len(contexts), 1), width - 1), attention_mask=mask, position_ids=position_ids)
    return sum(len(t.decision_positions) for t in trials) / (time.perf_counter() - start)


def update_tokens_per_second(trainer: DQNTrainer, batch: dict, repeats: int = 3) -> tuple[float, float]:
    network = trainer.q_network.train()
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    tokens = batch["input_ids"].numel()

    def dqn_step():
        trainer.compute_loss(network, batch).backward()

    def lm_step():
        network.model(input_ids=batch["input_ids"], labels=batch["input_ids"]).loss.backward()

    rates = []
    for step in (dqn_step, lm_step):
        step()  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            step()
            optimizer.step()
            optimizer.zero_grad()
        rates.append(repeats * tokens / (time.perf_counter() - start))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max_context_tokens", type=int, default=4096)
    parser.add_argument("--schedule", default="uniform",
                        help="exploration schedule of the played trials; 'uniform' gives ID episodes of typical length")
    cli = parser.parse_args()
    args = DQNConfig(output_dir="outputs/benchmark", eval_maps=0, max_context_tokens=cli.max_context_tokens,
                     report_to="none")
    trainer = DQNTrainer("tiny", args)
    envs = frozen_lake_envs(heldout_maps("id", cli.envs, seed=123))
    schedule = ExplorationSchedule.parse(cli.schedule)
    start = time.perf_counter()
    result = trainer.engine.play(envs, cli.episodes, schedule, np.random.default_rng(0),
                                 reset_seeds=list(range(cli.envs)))
    cached = result.env_steps / (time.perf_counter() - start)
    reencode = reencode_steps_per_second(trainer, result.trials)
    tokens = np.mean([len(t.input_ids) for t in result.trials])
    print(f"rollout, {cli.envs} envs x {cli.episodes} episodes (mean context {tokens:.0f} tokens):")
    print(f"  KV-cached engine   {cached:8.1f} env-steps/s")
    print(f"  re-encode per step {reencode:8.1f} env-steps/s")
    print(f"  speed-up           {cached / reencode:8.1f}x   (target >= 10x)")
    batch = collate_trials([t.to_row() for t in result.trials[: cli.batch]], trainer.pad_token_id)
    dqn, lm = update_tokens_per_second(trainer, batch)
    print(f"update, batch {tuple(batch['input_ids'].shape)} tokens:")
    print(f"  DQN update         {dqn:8.0f} tokens/s")
    print(f"  causal-LM step     {lm:8.0f} tokens/s")
    print(f"  DQN cost / LM cost {lm / dqn:8.2f}x   (target <= 1.6x)")


if __name__ == "__main__":
    main()
