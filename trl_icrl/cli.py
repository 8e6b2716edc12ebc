"""The ``trl-icrl`` command (``[project.scripts]``), so that an installed wheel runs the main job:

    trl-icrl dqn                                  # the embedded tiny model, configs/tiny.yaml
    trl-icrl dqn --config llama31_8b_lora         # a config shipped with the package, by name
    trl-icrl dqn --config my.yaml --max_steps 50  # a config file; flags override its keys

``accelerate launch recipes/frozen_lake_dqn.py`` runs the same main job (``run_dqn``) from a checkout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint
from trl import TrlParser

from .plotting import plot_training_curve
from .precision import describe_precision
from .trainer import DQNConfig, DQNTrainer

CONFIGS_DIR = Path(__file__).parent / "configs"
"""The YAML configs shipped with the package (``recipes/configs`` in a checkout points here)."""
DEFAULT_CONFIG = CONFIGS_DIR / "tiny.yaml"
COMMANDS = {"dqn": "train a causal LM into an in-context RL agent with DQN (the main job)"}


def config_path(name: str) -> str:
    """A config file as it is, else the config shipped with the package of that name (``tiny`` or ``tiny.yaml``)."""
    if Path(name).is_file():
        return name
    shipped = CONFIGS_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not shipped.is_file():
        names = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no config file {name} and no shipped config of that name (shipped: {names})")
    return str(shipped)


def parse_config(argv: Sequence[str]) -> DQNConfig:
    """The ``DQNConfig`` of the command line ``argv`` (without the program name); ``DEFAULT_CONFIG`` when it
    names no ``--config``."""
    argv = list(argv)
    if "--config" in argv:
        index = argv.index("--config") + 1
        argv[index] = config_path(argv[index])
    else:
        argv = ["--config", str(DEFAULT_CONFIG), *argv]
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config(argv)
    return args


def run_dqn(argv: Sequence[str], prog: str) -> None:
    """The main job: train, save, plot the training curve, evaluate on held-out maps (``short_eval.json``, trained
    vs. untrained), write the card and, with ``--push_to_hub true``, push once. Bad input exits with one sentence
    starting with ``prog``, before any work."""
    try:
        args = parse_config(argv)
        trainer = DQNTrainer(args.model_name_or_path, args)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"{prog}: {err}")
    if trainer.is_world_process_zero():
        print(describe_precision(trainer.precision, args.precision, args.device.type), flush=True)
        formats = ", ".join(f"{e} as {spec.codec.observation_format}" for e, spec in trainer.env_specs.items())
        own = " (the env's own format)" if args.observation_format is None else ""
        print(f"observations written: {formats}{own}", flush=True)
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
    report = {"log_history": trainer.state.log_history, "precision": trainer.precision,
              "trainable_share": sum(p.numel() for p in online.values() if p.requires_grad)
              / sum(p.numel() for p in trainer.q_network.causal_lm.parameters())}
    if trainer.heldout_maps:
        report["untrained"] = trainer.evaluate_in_context(use_adapter=False, split="heldout")
        report["trained"] = trainer.evaluate_in_context(split="heldout")
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


def main(argv: Sequence[str] | None = None) -> None:
    """``trl-icrl COMMAND [flags]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        usage = "\n".join(f"  {name:<6}{text}" for name, text in COMMANDS.items())
        configs = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
        sys.exit(f"usage: trl-icrl COMMAND [--config NAME_OR_FILE] [flags]\ncommands:\n{usage}\n"
                 f"shipped configs: {configs}")
    run_dqn(argv[1:], prog="trl-icrl dqn")
