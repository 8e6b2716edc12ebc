"""Train a causal LM into an in-context RL agent with DQN: the main job.

    trl-icrl dqn --config tiny                                         # from a wheel
    trl-icrl dqn --config tiny --use_peft --lora_r 8 --num_processes 2 # two ranks, through accelerate
    accelerate launch -m trl_icrl.scripts.dqn --config tiny            # the same, launched by hand
    accelerate launch recipes/frozen_lake_dqn.py                       # from a checkout

Its flags are TRL's: ``DQNConfig``'s, TRL's ``ModelConfig``'s (``--use_peft``, ``--model_revision``,
``--load_in_4bit``, ``--lora_modules_to_save``, ``--use_rslora``, ...) and ``ScriptArguments``' (``--dataset_name``,
``--dataset_config``, ...), a name both define given once; without ``--config`` it runs ``configs/tiny.yaml``, and
``--config NAME`` names a config shipped with the package. Writes to ``output_dir`` what ``DQNTrainer.save_run``
writes; with ``--push_to_hub true`` it pushes once, after.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint
from trl import ModelConfig, ScriptArguments, TrlParser, get_peft_config, get_quantization_config

from ..precision import describe_precision
from ..trainer import DQNConfig, DQNTrainer

__all__ = ["CONFIGS_DIR", "DEFAULT_CONFIG", "DQNModelArguments", "DQNScriptArguments", "main", "make_parser",
           "parse_config", "run"]

CONFIGS_DIR = Path(__file__).parent.parent / "configs"
"""The YAML configs shipped with the package (``recipes/configs`` in a checkout points here)."""
DEFAULT_CONFIG = CONFIGS_DIR / "tiny.yaml"


def _fields_beyond(source: type, taken: type, name: str) -> type:
    """A dataclass of ``source``'s fields that ``taken`` lacks, with their defaults and help: TRL's flags that
    ``DQNConfig`` does not define itself (one flag, one field)."""
    hints, names = typing.get_type_hints(source), {f.name for f in dataclasses.fields(taken)}
    spec = []
    for f in dataclasses.fields(source):
        if f.name in names or not f.init:
            continue
        default = {"default": f.default} if f.default is not dataclasses.MISSING else \
            {"default_factory": f.default_factory}
        spec.append((f.name, hints[f.name], dataclasses.field(metadata=f.metadata, **default)))
    arguments = dataclasses.make_dataclass(name, spec)
    arguments.__module__ = __name__
    return arguments


DQNScriptArguments = _fields_beyond(ScriptArguments, DQNConfig, "DQNScriptArguments")
"""TRL's ``ScriptArguments`` beyond ``DQNConfig``'s ``dataset_name``, ``dataset_config``, ``dataset_train_split``."""
DQNModelArguments = _fields_beyond(ModelConfig, DQNConfig, "DQNModelArguments")
"""TRL's ``ModelConfig`` beyond ``DQNConfig``'s ``model_name_or_path``, ``dtype``, ``lora_*``, ``use_rslora``."""


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None) -> TrlParser:
    """The parser of ``(DQNScriptArguments, DQNConfig, DQNModelArguments)``, or its ``dqn`` sub-command."""
    dataclass_types = (DQNScriptArguments, DQNConfig, DQNModelArguments)
    if subparsers is not None:
        return subparsers.add_parser("dqn", help="Train an in-context RL agent with DQN",
                                     dataclass_types=dataclass_types)
    return TrlParser(dataclass_types, prog=prog)


def config_path(name: str) -> str:
    """A config file as it is, else the config shipped with the package of that name (``tiny`` or ``tiny.yaml``)."""
    if Path(name).is_file():
        return name
    shipped = CONFIGS_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not shipped.is_file():
        names = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no config file {name} and no shipped config of that name (shipped: {names})")
    return str(shipped)


def with_config(argv: Sequence[str]) -> list[str]:
    """``argv`` with its ``--config`` resolved by ``config_path`` (``DEFAULT_CONFIG`` when it names none)."""
    argv = list(argv)
    if "--config" not in argv:
        return ["--config", str(DEFAULT_CONFIG), *argv]
    index = argv.index("--config") + 1
    argv[index] = config_path(argv[index])
    return argv


def parse_args(argv: Sequence[str]) -> tuple:
    """``(script_args, training_args, model_args)`` of the command line ``argv`` (without the program name)."""
    return tuple(make_parser().parse_args_and_config(with_config(argv)))


def parse_config(argv: Sequence[str]) -> DQNConfig:
    """The ``DQNConfig`` of the command line ``argv``."""
    return parse_args(argv)[1]


def model_config(training_args: DQNConfig, model_args) -> ModelConfig:
    """TRL's ``ModelConfig`` of a command line: the fields ``DQNConfig`` defines from it, the others from
    ``model_args``."""
    values = {f.name: getattr(training_args, f.name) if hasattr(training_args, f.name) else getattr(model_args, f.name)
              for f in dataclasses.fields(ModelConfig) if f.init}
    return ModelConfig(**values)


def main(script_args, training_args: DQNConfig, model_args, prog: str = "trl-icrl dqn") -> DQNTrainer:
    """Train, save the run (``DQNTrainer.save_run``: agent, replay store, curves, short held-out evaluation, card),
    and, with ``push_to_hub``, push once. Bad input exits with one sentence starting with ``prog``, before any
    work."""
    model = model_config(training_args, model_args)
    init_kwargs = {"revision": model.model_revision, "quantization_config": get_quantization_config(model)}
    init_kwargs = {k: v for k, v in init_kwargs.items() if v not in (None, "main")}
    if init_kwargs:  # TRL's sft.py does the same: model_init_kwargs gathers what loads the model
        training_args.model_init_kwargs = {**init_kwargs, **(training_args.model_init_kwargs or {})}
    try:
        if model.use_peft and training_args.adapter_type != "lora":
            raise ValueError(f"--use_peft trains a LoRA adapter (TRL's get_peft_config), and adapter_type is "
                             f"{training_args.adapter_type!r}: leave one of them out")
        trainer = DQNTrainer(training_args.model_name_or_path, training_args, peft_config=get_peft_config(model))
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"{prog}: {err}")
    if trainer.is_world_process_zero():
        print(describe_precision(trainer.precision, training_args.precision, training_args.device.type), flush=True)
        formats = ", ".join(f"{e} as {spec.codec.observation_format}" for e, spec in trainer.env_specs.items())
        own = " (the env's own format)" if training_args.observation_format is None else ""
        print(f"observations written: {formats}{own}", flush=True)
    resume, output_dir = training_args.resume_from_checkpoint, Path(training_args.output_dir)
    if resume in ("true", "True", "last"):  # the newest complete checkpoint in output_dir, if any
        resume = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
        print(f"resuming from {resume}" if resume else f"no checkpoint in {output_dir}: starting fresh")
    trainer.train(resume_from_checkpoint=resume)
    report = trainer.save_run()
    if trainer.is_world_process_zero():
        if "trained" in report:
            trained, untrained = report["trained"], report["untrained"]
            print(f"short eval on {trained['n_maps']} held-out maps (success rate over played episodes): "
                  f"untrained {untrained['mean_success']:.3f}, trained {trained['mean_success']:.3f}; "
                  f"final-10 untrained {untrained['final10_success']:.3f}, trained {trained['final10_success']:.3f}")
            for env_id, final10 in trained.get("final10_by_env", {}).items():
                print(f"  {env_id}: final-10 trained {final10:.3f}, "
                      f"untrained {untrained['final10_by_env'][env_id]:.3f}")
        print(f"outputs written to {output_dir.resolve()}")
    if training_args.push_to_hub:  # once, with the card, curves and short eval in the folder
        url = trainer.push_to_hub(dataset_name=training_args.dataset_name)
        if trainer.is_world_process_zero():
            print(f"pushed to {url}")
    return trainer


def run(argv: Sequence[str], prog: str = "trl-icrl dqn") -> DQNTrainer:
    """Parse ``argv`` (bad input: one sentence starting with ``prog``, before any work) and run ``main``."""
    try:
        script_args, training_args, model_args = parse_args(argv)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"{prog}: {err}")
    return main(script_args, training_args, model_args, prog=prog)


if __name__ == "__main__":
    run(sys.argv[1:])
