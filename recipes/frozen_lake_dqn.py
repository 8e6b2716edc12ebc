"""Train a causal LM into an in-context RL agent on parametric Frozen Lake with DQN.

    accelerate launch recipes/frozen_lake_dqn.py                      # embedded tiny model: configs/tiny.yaml
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/llama31_8b_lora.yaml
    accelerate launch recipes/frozen_lake_dqn.py --resume_from_checkpoint true   # after a crash
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/tiny_online.yaml   # online only, any env
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/tiny_general.yaml  # three env families

Writes to ``output_dir``: the adapter with its Q head, the tokenizer, ``icrl_config.json``, the replay
store, ``training_curve.png`` and ``short_eval.json`` (trained vs. untrained on held-out maps). Without
``--config`` it runs ``configs/tiny.yaml``; flags override the config's keys.
"""

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint
from trl import TrlParser

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.plotting import plot_training_curve

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "tiny.yaml"


def parse_config(argv: Sequence[str]) -> DQNConfig:
    """The ``DQNConfig`` of the command line ``argv`` (without the program name); ``DEFAULT_CONFIG`` when it
    names no ``--config``."""
    argv = list(argv)
    if "--config" not in argv:
        argv = ["--config", str(DEFAULT_CONFIG), *argv]
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config(argv)
    return args


def main() -> None:
    try:  # bad input (config, base name, adapter, env) fails here, before any work: one sentence, no traceback
        args = parse_config(sys.argv[1:])
        trainer = DQNTrainer(args.model_name_or_path, args)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"{Path(__file__).name}: {err}")
    resume = args.resume_from_checkpoint
    if resume in ("true", "True", "last"):  # the newest complete checkpoint in output_dir, if any
        resume = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
        print(f"resuming from {resume}" if resume else f"no checkpoint in {args.output_dir}: starting fresh")
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    if not trainer.is_world_process_zero():
        return
    output_dir = Path(args.output_dir)
    trainer.replay_store.save_to_disk(output_dir / "replay_store")
    plot_training_curve(trainer.state.log_history, output_dir / "training_curve.png")
    online = trainer.q_network.weights()
    report = {"log_history": trainer.state.log_history,
              "trainable_share": sum(p.numel() for p in online.values() if p.requires_grad)
              / sum(p.numel() for p in trainer.q_network.causal_lm.parameters())}
    if trainer.heldout_maps:
        report["untrained"] = trainer.evaluate_in_context(use_adapter=False)
        report["trained"] = trainer.evaluate_in_context()
        print(f"short eval on {len(trainer.heldout_maps)} held-out maps (success rate over played episodes): "
              f"untrained {report['untrained']['mean_success']:.3f}, trained {report['trained']['mean_success']:.3f}; "
              f"final-10 untrained {report['untrained']['final10_success']:.3f}, "
              f"trained {report['trained']['final10_success']:.3f}")
        for env_id, final10 in report["trained"].get("final10_by_env", {}).items():
            print(f"  {env_id}: final-10 trained {final10:.3f}, "
                  f"untrained {report['untrained']['final10_by_env'][env_id]:.3f}")
    (output_dir / "short_eval.json").write_text(json.dumps(report, indent=2))
    trainer.create_model_card()  # again, now with the curve and the short eval
    print(f"outputs written to {output_dir.resolve()}")
    if args.push_to_hub:  # once, with the card, curve and short eval in the folder
        print(f"pushed to {trainer.push_to_hub()}")


if __name__ == "__main__":
    main()
