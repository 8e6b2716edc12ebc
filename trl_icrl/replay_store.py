"""A replay store of whole trials, backed by ``datasets``: one row per trial, FIFO capacity."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import torch

from .protocol import TRIAL_SCHEMA

FEATURES = datasets.Features({
    **{f.name: datasets.Sequence(datasets.Value(f.storage)) for f in TRIAL_SCHEMA},
    "env_id": datasets.Value("string"),
    "env_map": datasets.Value("string"),
    "seed": datasets.Value("int64"),
    "policy": datasets.Value("string"),
})
"""Columns: the ``Trial`` fields, then where the trial came from (env id, map, seed, behaviour policy)."""

META_FILE = "replay_store.json"


class ReplayStoreError(ValueError):
    """A replay store directory that is missing, corrupted or from another protocol."""


class ReplayStore:
    """Whole trials for off-policy training.

    Args:
        capacity: the most trials kept; the oldest are evicted first (FIFO).
        protocol_signature: identifies the token protocol; a saved store only loads into the same one.
    """

    def __init__(self, capacity: int, protocol_signature: str):
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity, self.protocol_signature = capacity, protocol_signature
        self.dataset = datasets.Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES)
        self.total_appended = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def append(self, rows: Sequence[dict]) -> None:
        """Add trials (dicts with every column), evicting the oldest beyond capacity."""
        if not rows:
            return
        missing = set(FEATURES) - set(rows[0])
        if missing:
            raise ValueError(f"replay rows lack columns {sorted(missing)}")
        new = datasets.Dataset.from_list(list(rows), features=FEATURES)
        combined = datasets.concatenate_datasets([self.dataset, new]) if len(self.dataset) else new
        if len(combined) > self.capacity:
            combined = combined.select(range(len(combined) - self.capacity, len(combined))).flatten_indices()
        self.dataset = combined
        self.total_appended += len(rows)

    def sample_indices(self, n: int, rng: np.random.Generator, recency: float = 0.0) -> np.ndarray:
        """``n`` row indices drawn with replacement; ``recency`` r makes the newest row e^r times likelier
        than the oldest (0 is uniform)."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay store")
        if recency == 0.0:
            return rng.integers(len(self), size=n)
        weights = np.exp(recency * np.linspace(0.0, 1.0, len(self)))
        return rng.choice(len(self), size=n, p=weights / weights.sum())

    def rows(self, indices: Sequence[int]) -> list[dict]:
        batch = self.dataset[list(map(int, indices))]
        return [dict(zip(batch, values)) for values in zip(*batch.values())]

    def save_to_disk(self, path: str | os.PathLike) -> None:
        """Write atomically: into a sibling temp dir, then rename over ``path``."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.dataset.save_to_disk(str(tmp))
        meta = {"capacity": self.capacity, "protocol_signature": self.protocol_signature,
                "total_appended": self.total_appended, "rows": len(self)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        if path.exists():
            old = path.with_name(path.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)

    @classmethod
    def load_from_disk(cls, path: str | os.PathLike, protocol_signature: str | None = None) -> ReplayStore:
        """Load a saved store; raises ``ReplayStoreError`` if missing, corrupted or of another protocol."""
        path = Path(path)
        if not (path / META_FILE).is_file():
            raise ReplayStoreError(f"no replay store at {path} ({META_FILE} missing)")
        try:
            meta = json.loads((path / META_FILE).read_text())
            dataset = datasets.load_from_disk(str(path))
        except Exception as err:
            raise ReplayStoreError(f"replay store at {path} is corrupted: {err}") from err
        if protocol_signature is not None and meta["protocol_signature"] != protocol_signature:
            raise ReplayStoreError(f"replay store at {path} was written for protocol {meta['protocol_signature']!r}, "
                                   f"not {protocol_signature!r}")
        if dataset.features != FEATURES or len(dataset) != meta["rows"]:
            raise ReplayStoreError(f"replay store at {path} is corrupted: columns or row count do not match "
                                   f"{META_FILE}")
        store = cls(meta["capacity"], meta["protocol_signature"])
        store.dataset, store.total_appended = dataset, meta["total_appended"]
        return store


def collate_trials(rows: Sequence[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of trials into tensors: ``input_ids`` (B, L); per-decision fields (B, D) with
    ``decision_mask`` marking real decisions (padding needs no attention mask: attention is causal)."""
    batch = len(rows)
    length = max(len(r["input_ids"]) for r in rows)
    decisions = max(len(r["actions"]) for r in rows)
    out = {"input_ids": torch.full((batch, length), pad_token_id, dtype=torch.long),
           "decision_mask": torch.zeros((batch, decisions), dtype=torch.bool)}
    per_decision = [f for f in TRIAL_SCHEMA if f.batch_pad is not None]
    for f in per_decision:
        dtype = torch.float32 if f.storage.startswith("float") else torch.long
        out[f.name] = torch.full((batch, decisions), f.batch_pad, dtype=dtype)
    for b, row in enumerate(rows):
        out["input_ids"][b, :len(row["input_ids"])] = torch.as_tensor(row["input_ids"])
        n = len(row["actions"])
        out["decision_mask"][b, :n] = True
        for f in per_decision:
            out[f.name][b, :n] = torch.as_tensor(row[f.name])
    return out

