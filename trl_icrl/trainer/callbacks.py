"""Trainer callbacks of in-context DQN: environment interaction, the target network update, a wall-clock limit and
held-out evaluation while training. Each receives the objects it uses, never the trainer."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from accelerate.utils import broadcast
from tqdm.auto import tqdm
from transformers import ProgressCallback, TrainerCallback

from ..agent.play import RolloutResult
from ..agent.q_network import QNetwork
from ..replay_store import ReplayStore
from .collector import TrialCollector

__all__ = ["EnvInteractionCallback", "InRunEvalCallback", "MinutesProgressCallback", "TargetNetworkCallback",
           "WallClockLimitCallback"]


class EnvInteractionCallback(TrainerCallback):
    """Plays trials with the online network and appends them to the replay store.

    Before the first update it fills the store up to ``learning_starts`` trials (skipped when a resumed store
    already holds them); afterwards it collects ``trials_per_rollout`` trials every ``rollout_interval``
    optimizer steps.

    Args:
        collector: plays one batch of trials per ``collect()``.
        replay_store: returns the store to fill (a resumed run swaps in its checkpoint's store).
        record: called with each collection's result and the store's size after it (metrics).
        online: collect while training; ``False``: learn from the store as given (it must hold trials).
    """

    def __init__(self, collector: TrialCollector, replay_store: Callable[[], ReplayStore],
                 record: Callable[[RolloutResult, int], None], online: bool = True):
        self.collector, self.replay_store, self.record, self.online = collector, replay_store, record, online

    def collect(self) -> None:
        store = self.replay_store()
        rows, result = self.collector.collect()
        store.append(rows)
        self.record(result, len(store))

    def on_train_begin(self, args, state, control, **kwargs):
        store = self.replay_store()
        if not self.online:
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
        if self.online and state.global_step % args.rollout_interval == 0:
            self.collect()


def as_process_zero_has_it(value: float, args) -> float:
    """``value`` as process 0 has it, on every process: a decision taken by the clock (stop, evaluate now, the
    learning rate) must fall on the same step on every DDP rank, or one rank waits forever in a collective the
    others never join."""
    if args.world_size == 1:
        return value
    return broadcast(torch.tensor([value], dtype=torch.float32, device=args.device), from_process=0).item()


class WallClockLimitCallback(TrainerCallback):
    """Stops training after ``args.max_train_minutes`` of wall time from the start of training (filling the replay
    store included, when this callback comes before ``EnvInteractionCallback``), with a final checkpoint when
    the run saves checkpoints. With ``args.lr_decay_minutes``, ``lr_factor`` falls from 1 to
    ``args.lr_decay_min_ratio`` (cosine) over the budget's last minutes: the trainer's scheduler multiplies by it."""

    def __init__(self):
        self.started = time.monotonic()
        self.lr_factor = 1.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if args.max_train_minutes is None:
            return
        seconds_left = 60 * args.max_train_minutes - as_process_zero_has_it(time.monotonic() - self.started, args)
        if args.lr_decay_minutes:
            window = 60 * min(args.lr_decay_minutes, args.max_train_minutes)  # a shorter budget decays all along
            decayed = min(max(1 - seconds_left / window, 0.0), 1.0)
            low = args.lr_decay_min_ratio
            self.lr_factor = low + (1 - low) * (1 + math.cos(math.pi * decayed)) / 2
        if seconds_left < 0:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"


class MinutesProgressCallback(ProgressCallback):
    """The training bar of a run bounded by ``max_train_minutes``: minutes of that budget, with the step count
    beside them, instead of steps out of ``max_steps`` (which a time-bounded run sets far out of reach). Its minutes
    are ``wall_clock``'s, the ones the limit counts (filling the replay store included)."""

    def __init__(self, wall_clock: WallClockLimitCallback):
        super().__init__()
        self.wall_clock = wall_clock

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar = tqdm(total=args.max_train_minutes, unit="min", dynamic_ncols=True,
                                     bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} min{postfix}")

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar.n = min((time.monotonic() - self.wall_clock.started) / 60, args.max_train_minutes)
            self.training_bar.set_postfix_str(f"step {state.global_step}")


class TargetNetworkCallback(TrainerCallback):
    """After every optimizer step: Polyak-average the target adapter, or copy it every N steps."""

    def __init__(self, network: QNetwork):
        self.network = network

    def on_step_end(self, args, state, control, **kwargs):
        if args.target_update == "polyak":
            self.network.polyak_update(args.tau)
        elif state.global_step % args.target_update_interval == 0:
            self.network.polyak_update(1.0)


class InRunEvalCallback(TrainerCallback):
    """Every ``eval_every_minutes`` of training, plays ``eval_split``'s maps in context and logs
    ``{eval_split}_final10`` (``validation_final10`` or ``heldout_final10``: final-10 success, paper's ramp) against
    ``train_minutes``: the learning curve. Its clock starts after the
    replay store is filled (it comes after ``EnvInteractionCallback``), unlike ``WallClockLimitCallback``'s.

    Args:
        evaluate: plays ``eval_split``'s maps; returns ``summarize``'s dict.
        log: logs a dict of metrics (``Trainer.log``).
    """

    def __init__(self, evaluate: Callable[[], dict], log: Callable[[dict[str, float]], None]):
        self.evaluate, self.log = evaluate, log
        self.started = self.last = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        every = args.eval_every_minutes
        if every is None or as_process_zero_has_it(time.monotonic() - self.last, args) < 60 * every:
            return
        minutes = (time.monotonic() - self.started) / 60
        summary = self.evaluate()
        self.last = time.monotonic()
        split = args.eval_split
        by_env = {f"{split}_final10/{env_id}": value for env_id, value in summary.get("final10_by_env", {}).items()}
        self.log({f"{split}_final10": summary["final10_success"], f"{split}_success": summary["mean_success"],
                  "train_minutes": minutes, **by_env})
