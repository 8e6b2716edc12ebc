"""What fills a ``DQNTrainer``'s replay store (offline data, a dataset of histories) and how batches leave it."""

from __future__ import annotations

from collections.abc import Mapping

import datasets
import numpy as np
from torch.utils.data import IterableDataset

from ..agent.layer_cache import LowerStateCache
from ..envs.spec import EnvSpec
from ..offline_data import spec_offline_trials
from ..protocol import TRIAL_FIELDS, TRIAL_SCHEMA, ProtocolError
from ..replay_store import FEATURES, ReplayStore, collate_trials
from .dqn_config import DQNConfig
from .rewards import RewardPath

__all__ = ["ReplayBatches", "dataset_histories", "offline_store"]


class ReplayBatches(IterableDataset):
    """An endless stream of collated batches of trials sampled from a (growing) replay store; with ``reward_path``,
    each batch also holds ``env_index`` (B,), each trial's env as ``RewardPath.env_index`` numbers it (a trial of an
    env not trained on is refused). With ``lower_states`` (a ``LowerStateCache`` of the store's rows), each batch
    also holds its trials' ``lower_states``, (B, L, hidden), right-padded like ``input_ids``."""

    def __init__(self, store: ReplayStore, batch_size: int, pad_token_id: int, seed: int, recency: float = 0.0,
                 reward_path: RewardPath | None = None, lower_states: LowerStateCache | None = None):
        self.store, self.batch_size, self.pad_token_id, self.recency = store, batch_size, pad_token_id, recency
        self.reward_path, self.lower_states = reward_path, lower_states
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        while True:
            indices = self.store.sample_indices(self.batch_size, self.rng, self.recency)
            rows = self.store.rows(indices)
            batch = collate_trials(rows, self.pad_token_id)
            if self.lower_states is not None:
                batch["lower_states"] = self.lower_states.batch(indices, [row["input_ids"] for row in rows])
            if self.reward_path is not None:
                batch["env_index"] = self.reward_path.env_index([r["env_id"] for r in rows])
            yield batch


def offline_store(args: DQNConfig, specs: Mapping[str, EnvSpec], signature: str) -> ReplayStore | None:
    """The replay store seeded with ``args.offline_data`` (``None`` without): the trials split evenly among the envs,
    the first taking the rest."""
    if args.offline_data is None:
        return None
    store = ReplayStore(capacity=max(args.offline_trials, args.replay_capacity), protocol_signature=signature)
    for share, spec in enumerate(specs.values()):
        n_trials = args.offline_trials // len(specs) + (args.offline_trials % len(specs) if share == 0 else 0)
        store.append(spec_offline_trials(
            spec, args.offline_data, n_trials, seed=args.seed * 1000 + args.process_index + share,
            max_context_tokens=args.max_context_tokens, episodes_per_trial=args.episodes_per_trial,
            map_switches=args.offline_map_switches, progress=args.process_index == 0))
    return store


def dataset_histories(dataset: datasets.Dataset | datasets.IterableDataset, specs: Mapping[str, EnvSpec],
                      protocol_format: str) -> list[dict]:
    """The trials of a dataset of histories as replay rows, each checked against its env's protocol (the ids
    parse, one entry per decision, decision positions inside the trial); one sentence when they do not fit."""
    env_ids = list(specs)
    columns = dataset.column_names or list(next(iter(dataset), {}))  # a streamed dataset may not know its columns
    missing = [name for name in (*TRIAL_FIELDS, *([] if len(env_ids) == 1 else ["env_id"])) if name not in columns]
    if missing:
        raise ValueError(f"train_dataset lacks the columns {missing}: a dataset of histories has the replay "
                         f"store's columns {list(FEATURES)} (trl_icrl.offline_data.save_histories writes them)")
    defaults = {"env_id": env_ids[0], "env_map": "", "seed": -1, "policy": "dataset"}
    rows = []
    for index, row in enumerate(dataset.select_columns([c for c in FEATURES if c in columns])):
        row = {**defaults, **row}
        spec = specs.get(row["env_id"])
        if spec is None:
            raise ValueError(f"train_dataset row {index} is a trial of {row['env_id']}, an env this trainer does "
                             f"not train on ({env_ids})")
        decisions = {len(row[f.name]) for f in TRIAL_SCHEMA if f.batch_pad is not None}
        try:
            spec.protocol.parse(row["input_ids"])
            if len(decisions) != 1 or not all(0 <= p < len(row["input_ids"]) for p in row["decision_positions"]):
                raise ProtocolError("the per-decision columns differ in length or point outside the trial")
        except ProtocolError as err:
            raise ValueError(f"train_dataset row {index} is no trial of {row['env_id']} in the "
                             f"{protocol_format!r} format over this tokenizer: {err}") from None
        rows.append(row)
    return rows
