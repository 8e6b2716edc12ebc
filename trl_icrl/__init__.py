"""trl_icrl: in-context reinforcement learning for causal language models, in the TRL family."""

import warnings

from . import envs  # noqa: F401  (registers trl_icrl/ParametricFrozenLake-v0 with gymnasium)
from .agent import ICRLAgent
from .agent_config import AgentConfig
from .env_codec import EnvCodec, codec_for, frozen_lake_codec
from .exploration import PAPER_RAMP, ExplorationSchedule
from .lm_agent import RolloutEngine
from .play import RolloutResult
from .protocol import COMPACT, LLAMA3, Episode, ProtocolError, ProtocolFormat, TokenProtocol, Trial
from .q_network import QNetwork, add_q_head, build_q_network, make_peft_config
from .replay_store import ReplayStore, ReplayStoreError
from .tiny_model import TINY_BASE_NAME, build_tiny_model, build_tokenizer, install_tiny_base
from .trainer import DQNConfig, DQNTrainer
from .vocabulary import restore_vocabulary

__version__ = "0.1.0"

_RENAMED = {"DiscreteEnvAdapter": "EnvCodec", "adapter_for": "codec_for", "frozen_lake_adapter": "frozen_lake_codec"}
"""Old export -> new name: the env's text codec was called an adapter, the word peft uses for its weights."""


def __getattr__(name: str):
    """Old names of renamed exports resolve to the new ones, with a ``DeprecationWarning``."""
    if name in _RENAMED:
        warnings.warn(f"trl_icrl.{name} is deprecated: use trl_icrl.{_RENAMED[name]} (same object); the old name "
                      f"will be removed in 0.2", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'trl_icrl' has no attribute {name!r}")


__all__ = [
    "COMPACT", "AgentConfig", "DQNConfig", "DQNTrainer", "EnvCodec", "Episode", "ExplorationSchedule", "ICRLAgent",
    "LLAMA3", "PAPER_RAMP", "ProtocolError", "ProtocolFormat", "QNetwork", "ReplayStore", "ReplayStoreError",
    "RolloutEngine", "RolloutResult", "TINY_BASE_NAME", "TokenProtocol", "Trial", "add_q_head", "build_q_network",
    "build_tiny_model", "build_tokenizer", "codec_for", "frozen_lake_codec", "install_tiny_base",
    "make_peft_config", "restore_vocabulary",
]
