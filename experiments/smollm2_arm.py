"""One arm of a SmolLM2 recipe comparison: train from a config (flags override its keys) with the in-run evaluation on
validation maps, then one more validation evaluation at the end; save the agent and ``arm.json`` (log history,
seconds per update, minutes of set-up and of training). No held-out evaluation: arms are compared on validation maps,
the chosen recipe is reported on held-out maps (``recipes/evaluate_icrl.py``). ``--max_steps 0`` only evaluates the
model given (the arms' common start).

    HF_HUB_OFFLINE=1 python experiments/smollm2_arm.py --config recipes/configs/smollm2_cpu.yaml \\
        --model_name_or_path results/smollm2_adapter --trainable_layers 10 --cache_frozen_states true \\
        --max_train_minutes 40 --lr_decay_minutes 10 --eval_every_minutes 13 --output_dir outputs/arm_top10
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from trl_icrl import DQNTrainer
from trl_icrl.cli import parse_config


class StepClock(TrainerCallback):
    """Seconds of each optimizer step (the in-run evaluations fall between steps and are not counted)."""

    def __init__(self):
        self.seconds: list[float] = []
        self.last: float | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.monotonic() - self.last)


def main() -> None:
    started = time.monotonic()
    args = parse_config(sys.argv[1:])
    clock = StepClock()
    trainer = DQNTrainer(args.model_name_or_path, args, callbacks=[clock])
    set_up = time.monotonic() - started
    if args.max_steps > 0:
        trainer.train()
    trained = time.monotonic() - started - set_up
    final = trainer.evaluate_in_context(split="validation")
    trainer.save_model()
    report = {"argv": sys.argv[1:], "precision": trainer.precision, "updates": trainer.state.global_step,
              "seconds_per_update": float(np.median(clock.seconds)) if clock.seconds else None,
              "set_up_minutes": set_up / 60, "train_minutes": trained / 60,
              "validation_final10_at_end": final["final10_success"], "validation_mean_at_end": final["mean_success"],
              "log_history": trainer.state.log_history}
    Path(args.output_dir, "arm.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "log_history"}, indent=2))


if __name__ == "__main__":
    main()
