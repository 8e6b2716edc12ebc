"""Trainer callbacks of in-context DQN: environment interaction and the target network update."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tqdm.auto import tqdm
from transformers import TrainerCallback

if TYPE_CHECKING:
    from .trainer.dqn_trainer import DQNTrainer


class EnvInteractionCallback(TrainerCallback):
    """Plays trials with the online adapter and appends them to the replay store.

    Before the first update it fills the store up to ``learning_starts`` trials (skipped when a resumed
    store already holds them); afterwards it collects ``trials_per_rollout`` trials every
    ``rollout_interval`` optimizer steps.
    """

    def __init__(self, trainer: DQNTrainer):
        self.trainer = trainer

    def collect(self) -> None:
        trainer = self.trainer
        rows, result = trainer.collector.collect()
        trainer.replay_store.append(rows)
        trainer.record_rollout(result, len(trainer.replay_store))

    def on_train_begin(self, args, state, control, **kwargs):
        store = self.trainer.replay_store
        with tqdm(total=args.learning_starts, initial=min(len(store), args.learning_starts), unit="trial",
                  desc="filling replay", disable=not state.is_local_process_zero) as bar:
            while len(store) < args.learning_starts:
                before = len(store)
                self.collect()
                bar.update(len(store) - before)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % args.rollout_interval == 0:
            self.collect()


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
