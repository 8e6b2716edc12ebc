"""Train a causal LM into an in-context RL agent on parametric Frozen Lake with DQN.

    accelerate launch recipes/frozen_lake_dqn.py                      # embedded tiny model: configs/tiny.yaml
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/llama31_8b_lora.yaml
    accelerate launch recipes/frozen_lake_dqn.py --resume_from_checkpoint true   # after a crash
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/tiny_online.yaml   # online only, any env
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/tiny_general.yaml  # three env families
    accelerate launch recipes/frozen_lake_dqn.py --use_peft --lora_r 8                       # TRL's flags

Writes to ``output_dir`` what ``DQNTrainer.save_run`` writes: the adapter with its Q head, the tokenizer,
``icrl_config.json``, the replay store, ``training_curve.png``, ``short_eval.json`` and ``heldout_in_context.png``
(trained vs. untrained on held-out maps) and the card. Without ``--config`` it runs ``configs/tiny.yaml``; flags
override the config's keys; ``--config tiny_online`` names a config shipped with the package. The job is the
package's script ``trl_icrl.scripts.dqn``: an installed wheel runs it as ``trl-icrl dqn``.
"""

import sys
from pathlib import Path

from trl_icrl.scripts.dqn import DEFAULT_CONFIG, parse_config, run

__all__ = ["DEFAULT_CONFIG", "main", "parse_config"]


def main() -> None:
    run(sys.argv[1:], prog=Path(__file__).name)


if __name__ == "__main__":
    main()
