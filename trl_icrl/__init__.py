"""trl_icrl: in-context reinforcement learning for causal language models, in the TRL family."""

from . import envs  # noqa: F401  (registers trl_icrl/ParametricFrozenLake-v0 with gymnasium)
from .agent import ICRLAgent
from .agent_config import AgentConfig
from .env_adapter import DiscreteEnvAdapter, adapter_for, frozen_lake_adapter
from .exploration import PAPER_RAMP, ExplorationSchedule
from .protocol import COMPACT, LLAMA3, Episode, ProtocolError, ProtocolFormat, TokenProtocol, Trial
from .q_network import QNetwork, add_q_head, build_q_network, make_peft_config
from .replay_store import ReplayStore, ReplayStoreError
from .rollout import RolloutEngine, RolloutResult
from .tiny_model import build_tiny_model, build_tokenizer
from .trainer import DQNConfig, DQNTrainer

__version__ = "0.1.0"

__all__ = [
    "COMPACT", "LLAMA3", "PAPER_RAMP", "AgentConfig", "DQNConfig", "DQNTrainer", "ICRLAgent", "DiscreteEnvAdapter",
    "Episode",
    "ExplorationSchedule", "ProtocolError", "ProtocolFormat", "QNetwork", "ReplayStore", "ReplayStoreError",
    "RolloutEngine", "RolloutResult", "TokenProtocol", "Trial", "adapter_for", "add_q_head", "build_q_network",
    "build_tiny_model", "build_tokenizer", "frozen_lake_adapter", "make_peft_config",
]
