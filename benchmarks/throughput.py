"""Side-by-side throughput of the embedded tiny model (one process, this machine), every ratio measured in one run.

1. Update: one DQN update (online forward + backward, target forward, optimizer, Polyak) per decision, as a
   multiple of one causal-LM forward + backward position of the same model on the same trials.
2. Trainer: decisions per second inside ``DQNTrainer.train()`` (offline, so no collection) vs. a bare loop
   doing the same updates on batches from the same replay store.
3. Collection: env-steps per second of ``TrialCollector.collect()`` (32 trials, KV cache, env, protocol) vs. a
   bare loop feeding the same model one token per step with a KV cache over 32 rows (no env, no protocol).
4. Rollout: the KV-cached engine vs. re-encoding the whole context at every step (the authors' way).
5. Evaluation: seconds for one model on 50 held-out maps x 30 episodes, the paper's ramp, one seed; with
   ``--reference_eval CMD``, also the seconds another implementation's evaluation of its 50 maps x 30 episodes
   takes, run right after in a subprocess that prints ``eval_seconds=<s>`` on its last line, and the ratio.

The last line is ``SUMMARY update_lm_positions_per_decision=... trainer_efficiency=... collect_vs_bare=...
collect_env_steps_per_s=... eval_seconds_50_maps=...``.

    python benchmarks/throughput.py [--model results/tiny_full_finetune_online] [--updates 20] [--reference_eval CMD]
"""

import argparse
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import TrainerCallback

from trl_icrl import DQNConfig, DQNTrainer, ExplorationSchedule, ICRLAgent
from trl_icrl.agent.kv_cache import buffered_cache
from trl_icrl.envs import frozen_lake_envs, heldout_maps
from trl_icrl.evaluation import evaluate_model
from trl_icrl.replay_store import collate_trials

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "results" / "tiny_full_finetune_online"


def update_step(trainer: DQNTrainer, optimizer: torch.optim.Optimizer, batch: dict) -> None:
    """What ``DQNTrainer`` does per optimizer step: TD loss, backward, clip, step, Polyak."""
    network = trainer.q_network
    trainer.compute_loss(network, batch).backward()
    nn.utils.clip_grad_norm_([p for p in network.parameters() if p.requires_grad], trainer.args.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()
    network.polyak_update(trainer.args.tau)


def lm_step(trainer: DQNTrainer, optimizer: torch.optim.Optimizer, batch: dict) -> None:
    """One causal-LM step of the same model on the same tokens: forward, next-token loss, backward, step."""
    trainer.q_network.causal_lm(input_ids=batch["input_ids"], labels=batch["input_ids"]).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def timed(step, repeats: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def update_cost(trainer: DQNTrainer, batch: dict, repeats: int) -> tuple[float, float, float]:
    """Seconds per DQN decision, seconds per LM position, and their ratio."""
    network = trainer.q_network.train()
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-5)
    decisions, positions = int(batch["decision_mask"].sum()), batch["input_ids"].numel()
    per_decision = timed(lambda: update_step(trainer, optimizer, batch), repeats) / decisions
    per_position = timed(lambda: lm_step(trainer, optimizer, batch), repeats) / positions
    return per_decision, per_position, per_decision / per_position


class StepClock(TrainerCallback):
    """Wall time from the end of step ``skip`` to the end of training, and the decisions trained meanwhile."""

    def __init__(self, skip: int):
        self.skip, self.start, self.end = skip, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.skip:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def trainer_efficiency(trainer: DQNTrainer, store, updates: int, output_dir: str) -> tuple[float, float]:
    """Decisions/s inside ``DQNTrainer.train()`` and in the bare loop, on batches of the same store."""
    args = DQNConfig(output_dir=output_dir, online_collection=False, max_steps=updates + 2, eval_maps=0,
                     logging_steps=updates, disable_tqdm=True, report_to="none", max_train_minutes=None,
                     per_device_train_batch_size=trainer.args.per_device_train_batch_size)
    clock = StepClock(skip=2)
    inside = DQNTrainer("tiny", args, replay_store=store, callbacks=[clock])
    counted = []
    compute_loss = inside.compute_loss

    def counting_loss(model, inputs, **kwargs):
        if inside.state.global_step >= 2:
            counted.append(int(inputs["decision_mask"].sum()))
        return compute_loss(model, inputs, **kwargs)

    inside.compute_loss = counting_loss
    inside.train()
    in_trainer = sum(counted) / (clock.end - clock.start)

    network = trainer.q_network.train()
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=args.learning_rate)
    rng = np.random.default_rng(0)
    batches = [collate_trials(store.rows(store.sample_indices(args.per_device_train_batch_size, rng)),
                              trainer.pad_token_id) for _ in range(updates + 1)]
    update_step(trainer, optimizer, batches[0])
    start = time.perf_counter()
    for batch in batches[1:]:
        update_step(trainer, optimizer, batch)
    bare = sum(int(b["decision_mask"].sum()) for b in batches[1:]) / (time.perf_counter() - start)
    return in_trainer, bare


@torch.no_grad()
def bare_collection_steps_per_second(trainer: DQNTrainer, rows: int, steps: int) -> float:
    """One token per row per step through the same network with a KV cache: the floor of a rollout."""
    network = trainer.q_network.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the rollout engine does on a CPU
    tokens = torch.randint(2, len(trainer.processing_class), (steps, rows, 1))
    last = torch.zeros((rows, 1), dtype=torch.long)
    cache = buffered_cache(network.config)
    start = time.perf_counter()
    for t in range(steps):
        q, cache = network(tokens[t], last, position_ids=torch.full((rows, 1), t), cache=cache, use_cache=True)
        q.argmax(-1).tolist()
    elapsed = time.perf_counter() - start
    torch.set_num_threads(threads)
    network.train()
    return rows * steps / elapsed


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
    network.train()
    return sum(len(t.decision_positions) for t in trials) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL) if DEFAULT_MODEL.is_dir() else None,
                        help="the model whose evaluation is timed (default: the committed results model)")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--output_dir", default="outputs/benchmark")
    parser.add_argument("--reference_eval", help="shell command timing another evaluation of 50 maps x 30 episodes; "
                        "its last line is eval_seconds=<s>")
    cli = parser.parse_args()
    args = DQNConfig(output_dir=cli.output_dir, eval_maps=0, report_to="none")
    trainer = DQNTrainer("tiny", args)
    print(f"machine: {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"model {sum(p.numel() for p in trainer.q_network.model.parameters()) / 1e6:.2f}M parameters")

    start = time.perf_counter()
    rows, result = trainer.collector.collect()
    collect = result.env_steps / (time.perf_counter() - start)
    trainer.replay_store.append(rows)
    rows, _ = trainer.collector.collect()
    trainer.replay_store.append(rows)
    steps = int(np.mean([len(r["actions"]) for r in rows]))
    bare_collect = bare_collection_steps_per_second(trainer, args.trials_per_rollout, steps)
    print(f"collection, {args.trials_per_rollout} trials of {args.max_context_tokens} tokens ({steps} steps):")
    print(f"  TrialCollector.collect()     {collect:8.0f} env-steps/s")
    print(f"  bare one-token KV loop       {bare_collect:8.0f} steps/s")
    print(f"  collect / bare               {collect / bare_collect:8.2f}   (target >= 0.5)")

    batch = collate_trials(trainer.replay_store.rows(range(args.per_device_train_batch_size)), trainer.pad_token_id)
    per_decision, per_position, ratio = update_cost(trainer, batch, repeats=5)
    decisions = int(batch["decision_mask"].sum())
    print(f"update, batch {tuple(batch['input_ids'].shape)} tokens, {decisions} decisions:")
    print(f"  DQN update                   {per_decision * 1e6:8.1f} us/decision ({1 / per_decision:.0f} decisions/s)")
    print(f"  causal-LM forward+backward   {per_position * 1e6:8.1f} us/position")
    print(f"  DQN decision / LM position   {ratio:8.2f}   (target <= 1.6)")

    in_trainer, bare = trainer_efficiency(trainer, trainer.replay_store, cli.updates, cli.output_dir + "/trainer")
    print(f"updates, {cli.updates} steps of batch {args.per_device_train_batch_size}:")
    print(f"  inside DQNTrainer.train()    {in_trainer:8.0f} decisions/s")
    print(f"  bare update loop             {bare:8.0f} decisions/s")
    print(f"  trainer / bare               {in_trainer / bare:8.2f}   (target >= 0.85)")

    envs = frozen_lake_envs(heldout_maps("id", 8, seed=123))
    start = time.perf_counter()
    played = trainer.collector.engine.play(envs, 30, ExplorationSchedule.parse("uniform"), np.random.default_rng(0),
                                 reset_seeds=list(range(8)))
    cached = played.env_steps / (time.perf_counter() - start)
    reencode = reencode_steps_per_second(trainer, played.trials)
    print("rollout, 8 envs x 30 uniform episodes:")
    print(f"  KV-cached engine             {cached:8.1f} env-steps/s")
    print(f"  re-encode per step           {reencode:8.1f} env-steps/s")
    print(f"  speed-up                     {cached / reencode:8.1f}x")

    if cli.model:
        agent = ICRLAgent.from_pretrained(cli.model)
        engine, name = agent.engine(), cli.model
    else:
        engine, name = trainer.collector.engine, "the untrained default"
    start = time.perf_counter()
    evaluate_model(engine, heldout_maps("id", 50), 30, "paper_ramp", seed=0)
    eval_seconds = time.perf_counter() - start
    print(f"evaluation of {name}: 50 held-out maps x 30 episodes, paper's ramp: {eval_seconds:.1f} s")
    summary = ""
    if cli.reference_eval:
        out = subprocess.run(cli.reference_eval, shell=True, check=True, capture_output=True, text=True).stdout
        reference_seconds = float(re.findall(r"eval_seconds=([0-9.]+)", out)[-1])
        print(f"  the reference evaluation       {reference_seconds:8.1f} s")
        print(f"  reference / ours               {reference_seconds / eval_seconds:8.2f}   (target >= 1)")
        summary = f" eval_reference_over_ours={reference_seconds / eval_seconds:.2f}"
    print(f"SUMMARY update_lm_positions_per_decision={ratio:.2f} trainer_efficiency={in_trainer / bare:.2f} "
          f"collect_vs_bare={collect / bare_collect:.2f} collect_env_steps_per_s={collect:.0f} "
          f"eval_seconds_50_maps={eval_seconds:.1f}{summary}")


if __name__ == "__main__":
    main()
