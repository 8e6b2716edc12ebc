"""The ``trl-icrl`` command (``[project.scripts]``), so that an installed wheel runs the main job:

    trl-icrl dqn                                  # the embedded tiny model, configs/tiny.yaml
    trl-icrl dqn --config llama31_8b_lora         # a config shipped with the package, by name
    trl-icrl dqn --config my.yaml --max_steps 50  # a config file; flags override its keys
    trl-icrl dqn --num_processes 2                # two ranks (DDP; gloo on a CPU)
    trl-icrl dqn --accelerate_config recipes/accelerate/multi_gpu_ddp.yaml

``dqn`` launches ``trl_icrl.scripts.dqn`` through ``accelerate launch``, as ``trl sft`` launches TRL's script; its
flags are checked here first, so bad input stops in one sentence before any process starts.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from .scripts import dqn
from .scripts.dqn import parse_config

__all__ = ["launch_command", "main", "parse_config"]  # parse_config: the main job's DQNConfig of a command line

COMMANDS = {"dqn": "train a causal LM into an in-context RL agent with DQN (the main job)"}
LAUNCH_FLAGS = {"--num_processes": "--num_processes", "--accelerate_config": "--config_file"}
"""The command's own flags and the ``accelerate launch`` flags they become."""


def launch_command(argv: Sequence[str]) -> list[str]:
    """The ``accelerate launch`` command line of ``trl-icrl dqn ARGV``: ``--num_processes N`` (more than one without
    ``--accelerate_config``: ``--multi_gpu``, which gives gloo ranks on a CPU) and ``--accelerate_config FILE``
    taken out of ``argv``, the rest passed to ``trl_icrl.scripts.dqn`` as given (a card repeats them)."""
    argv, launch = list(argv), {}
    for flag in LAUNCH_FLAGS:
        if flag in argv:
            index = argv.index(flag)
            launch[flag] = argv[index + 1]
            del argv[index:index + 2]
    processes = int(launch.get("--num_processes", 1))
    words = [sys.executable, "-m", "accelerate.commands.launch"]
    if "--accelerate_config" in launch:
        words += ["--config_file", launch["--accelerate_config"]]
    if "--num_processes" in launch or "--accelerate_config" not in launch:
        words += ["--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
                  "--dynamo_backend", "no"]
    if processes > 1 and "--accelerate_config" not in launch:
        words += ["--multi_gpu"]
    return [*words, "-m", dqn.__name__, *argv]


def main(argv: Sequence[str] | None = None) -> None:
    """``trl-icrl COMMAND [flags]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        usage = "\n".join(f"  {name:<6}{text}" for name, text in COMMANDS.items())
        configs = ", ".join(sorted(p.stem for p in dqn.CONFIGS_DIR.glob("*.yaml")))
        sys.exit(f"usage: trl-icrl COMMAND [--config NAME_OR_FILE] [--num_processes N] [--accelerate_config FILE] "
                 f"[flags]\ncommands:\n{usage}\nshipped configs: {configs}")
    prog = "trl-icrl dqn"
    try:
        command = launch_command(argv[1:])
        dqn.parse_args(command[command.index(dqn.__name__) + 1:])  # bad input: one sentence, before any launch
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"{prog}: {err}")
    sys.exit(subprocess.run(command).returncode)
