"""Trainer callbacks of in-context DQN: environment interaction and the target network update."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tqdm.auto import tqdm
from transformers import TrainerCallback

if TYPE_CHECKING:
    from .trainer.dqn_trainer import DQNTrainer


class EnvInteractionCallback(TrainerCallback):
    """Plays trials with the online adapter and appends them to the replay store.

    Before the first update it fills the store up to ``learning_starts`` trials (skipped when a resumed
    store already holds them); afterwards it collects ``trials_per_rollout`` trials every
    ``rollout_interval`` optimizer steps, and stops training after ``max_train_minutes``.
    """

    def __init__(self, trainer: DQNTrainer):
        self.trainer = trainer
        self.started = time.monotonic()

    def collect(self) -> None:
        trainer = self.trainer
        rows, result = trainer.collector.collect()
        trainer.replay_store.append(rows)
        trainer.record_rollout(result, len(trainer.replay_store))

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        store = self.trainer.replay_store
        if not args.online_collection:
            if len(store) == 0:
                raise ValueError("online_collection=False needs a non-empty replay store (offline data)")
            return
        with tqdm(total=args.learning_starts, initial=min(len(store), args.learning_starts), unit="trial",
                  desc="filling replay", disable=not state.is_local_process_zero) as bar:
            while len(store) < args.learning_starts:
                before = len(store)
                self.collect()
                bar.update(len(store) - before)

    def on_step_end(self, args, state, control, **kwargs):
        if args.online_collection and state.global_step % args.rollout_interval == 0:
            self.collect()
        if args.max_train_minutes is not None and time.monotonic() - self.started > 60 * args.max_train_minutes:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"


class TargetNetworkCallback(TrainerCallback):
    """After every optimizer step: Polyak-average the target adapter, or copy it every N steps."""

    def __init__(self, trainer: DQNTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        network = self.trainer.q_network
        if args.target_update == "polyak":
            network.polyak_update(args.tau)
        elif state.global_step % args.target_update_interval == 0:
            network.polyak_update(1.0)


class HeldoutEvalCallback(TrainerCallback):
    """Every ``eval_every_minutes`` of training, plays the held-out maps in context and logs ``heldout_final10``
    (final-10 success, paper's ramp) against ``train_minutes``: the learning curve."""

    def __init__(self, trainer: DQNTrainer):
        self.trainer = trainer
        self.started = self.last = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        every = args.eval_every_minutes
        if every is None or not self.trainer.heldout_maps or time.monotonic() - self.last < 60 * every:
            return
        minutes = (time.monotonic() - self.started) / 60
        summary = self.trainer.evaluate_in_context()
        self.last = time.monotonic()
        self.trainer.log({"heldout_final10": summary["final10_success"], "heldout_success": summary["mean_success"],
                          "train_minutes": minutes})
