"""Make the offline histories a config trains on (scripted behaviour, training maps only) and write them as a dataset
with its card; `--push_to_hub true --hub_model_id NAME` publishes it as a Hub dataset.

    python recipes/offline_histories.py --config recipes/configs/tiny.yaml --output_dir data/q_learning_histories
    python recipes/offline_histories.py --config recipes/configs/tiny_offline.yaml --offline_data high \\
        --output_dir data/high_histories --push_to_hub true --hub_model_id NAME

Train on them with `--dataset_name data/q_learning_histories` (or `NAME`) and `--offline_data null`.
"""

import sys
from pathlib import Path

from trl import TrlParser

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.offline_data import histories_card, push_histories, save_histories


def main() -> None:
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config()
    if args.offline_data is None:
        sys.exit(f"{Path(__file__).name}: set --offline_data (which behaviour plays the histories)")
    push, args.push_to_hub = args.push_to_hub, False  # the trainer only makes the trials: it pushes no model
    trainer = DQNTrainer(args.model_name_or_path, args)
    store = trainer.replay_store
    card = histories_card(store.dataset, store.protocol_signature, trainer.base_model_name, trainer.env_specs,
                          args.seed, args.max_context_tokens, args.episodes_per_trial)
    print(f"{len(store)} trials written to {save_histories(store.dataset, args.output_dir, card).resolve()}")
    if push:
        print(f"pushed to {push_histories(args.output_dir, args.hub_model_id, args.hub_token, args.hub_private_repo)}")


if __name__ == "__main__":
    main()
