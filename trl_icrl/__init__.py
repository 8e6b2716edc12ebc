"""trl_icrl: in-context reinforcement learning for causal language models, in the TRL family."""

from . import envs  # noqa: F401  (registers trl_icrl/ParametricFrozenLake-v0 with gymnasium)
from .env_adapter import DiscreteEnvAdapter, adapter_for, frozen_lake_adapter
from .protocol import COMPACT, LLAMA3, Episode, ProtocolError, ProtocolFormat, TokenProtocol, Trial
from .tiny_model import build_tiny_model, build_tokenizer

__version__ = "0.1.0"
