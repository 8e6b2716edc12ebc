"""trl_icrl: in-context reinforcement learning for causal language models, in the TRL family."""

from . import envs  # noqa: F401  (registers trl_icrl/ParametricFrozenLake-v0 with gymnasium)
from .agent import (
    PAPER_RAMP,
    AgentConfig,
    ExplorationSchedule,
    ICRLAgent,
    QNetwork,
    RolloutEngine,
    RolloutResult,
    add_q_head,
    build_q_network,
    make_peft_config,
)
from .envs.codec import EnvCodec, codec_for, frozen_lake_codec
from .protocol import COMPACT, LLAMA3, Episode, ProtocolError, ProtocolFormat, TokenProtocol, Trial
from .replay_store import ReplayStore, ReplayStoreError
from .tiny_model import TINY_BASE_NAME, build_tiny_model, build_tokenizer, install_tiny_base
from .trainer import DQNConfig, DQNTrainer
from .vocabulary import restore_vocabulary

__version__ = "0.1.0"

__all__ = [
    "COMPACT", "AgentConfig", "DQNConfig", "DQNTrainer", "EnvCodec", "Episode", "ExplorationSchedule", "ICRLAgent",
    "LLAMA3", "PAPER_RAMP", "ProtocolError", "ProtocolFormat", "QNetwork", "ReplayStore", "ReplayStoreError",
    "RolloutEngine", "RolloutResult", "TINY_BASE_NAME", "TokenProtocol", "Trial", "add_q_head", "build_q_network",
    "build_tiny_model", "build_tokenizer", "codec_for", "frozen_lake_codec", "install_tiny_base",
    "make_peft_config", "restore_vocabulary",
]
