"""Train a causal LM into an in-context RL agent on parametric Frozen Lake with DQN.

    accelerate launch recipes/frozen_lake_dqn.py                      # embedded tiny model: configs/tiny.yaml
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/llama31_8b_lora.yaml
    accelerate launch recipes/frozen_lake_dqn.py --resume_from_checkpoint true   # after a crash
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/tiny_online.yaml   # online only, any env
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/tiny_general.yaml  # three env families

Writes to ``output_dir``: the adapter with its Q head, the tokenizer, ``icrl_config.json``, the replay
store, ``training_curve.png`` and ``short_eval.json`` (trained vs. untrained on held-out maps). Without
``--config`` it runs ``configs/tiny.yaml``; flags override the config's keys; ``--config tiny_online`` names a
config shipped with the package. The job lives in the package (``trl_icrl.cli.run_dqn``): an installed wheel runs it
as ``trl-icrl dqn``.
"""

import sys
from pathlib import Path

from trl_icrl.cli import DEFAULT_CONFIG, parse_config, run_dqn

__all__ = ["DEFAULT_CONFIG", "main", "parse_config"]


def main() -> None:
    run_dqn(sys.argv[1:], prog=Path(__file__).name)


if __name__ == "__main__":
    main()
