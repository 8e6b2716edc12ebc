"""Backends that shard parameters across processes, which ``DQNTrainer`` refuses before any work."""

from __future__ import annotations

import json
import os
from pathlib import Path

from accelerate.utils import DistributedType
from transformers import TrainingArguments

__all__ = ["parameter_sharding", "refuse_sharding", "requested_sharding"]


def parameter_sharding(distributed_type: DistributedType, zero_stage: int | None = None) -> str | None:
    """The name of the backend when it shards parameters across processes (FSDP, DeepSpeed ZeRO-3), else ``None``.

    ``DQNTrainer`` refuses those: its target update (``QNetwork.polyak_update``) reads whole parameters.
    """
    if distributed_type == DistributedType.FSDP:
        return "FSDP"
    if distributed_type == DistributedType.DEEPSPEED and zero_stage == 3:
        return "DeepSpeed ZeRO-3"
    return None


def requested_sharding(args: TrainingArguments) -> str | None:
    """``parameter_sharding`` of what the launch asks for, read before any work: ``accelerate launch``'s
    environment (``ACCELERATE_USE_FSDP``, ``ACCELERATE_DEEPSPEED_ZERO_STAGE``) and the ``fsdp`` / ``deepspeed``
    arguments."""
    if args.fsdp or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return parameter_sharding(DistributedType.FSDP)
    stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") \
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" else None
    if isinstance(args.deepspeed, dict):
        stage = args.deepspeed.get("zero_optimization", {}).get("stage", stage)
    elif isinstance(args.deepspeed, str) and Path(args.deepspeed).is_file():
        stage = json.loads(Path(args.deepspeed).read_text()).get("zero_optimization", {}).get("stage", stage)
    return parameter_sharding(DistributedType.DEEPSPEED, int(stage)) if stage not in (None, "") else None


def refuse_sharding(sharding: str | None) -> None:
    """Raise one sentence for a backend that shards parameters (``None``: nothing to refuse)."""
    if sharding is not None:
        raise ValueError(f"DQNTrainer does not support {sharding}: it shards parameters across processes, and the "
                         "target update (Polyak or hard copy) reads whole parameters; use one GPU, DDP "
                         "(recipes/accelerate/multi_gpu_ddp.yaml) or DeepSpeed ZeRO-2")
