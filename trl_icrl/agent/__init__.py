"""The acting side: a trained model that plays (``ICRLAgent``, its ``AgentConfig``), the language-model agent of the
play loop (``RolloutEngine``) with its KV cache, the loop itself (``play``), exploration schedules and the Q network.

The loop function stays ``trl_icrl.agent.play.play``: exported here, it would hide its module."""

from .config import ICRL_CONFIG, AgentConfig
from .exploration import PAPER_RAMP, ExplorationSchedule, exploration_streams, parse_schedules
from .icrl_agent import ICRLAgent, local_dir
from .kv_cache import (
    DECODING_ATTENTION,
    DECODING_QUERY_TOKENS,
    BufferedLayer,
    buffered_cache,
    decoding_attention_forward,
    select_cache_rows,
)
from .play import Agent, RolloutResult, Transition, play_seeds, reached_goal, trial_full
from .q_network import (
    FULL_WEIGHTS,
    ONLINE,
    Q_HEAD,
    TARGET,
    QNetwork,
    adapter_parameters,
    add_q_head,
    build_q_network,
    load_q_head,
    make_peft_config,
    store_frozen_base_in_bf16,
)
from .rollout_engine import RolloutEngine

__all__ = [
    "DECODING_ATTENTION", "DECODING_QUERY_TOKENS", "FULL_WEIGHTS", "ICRL_CONFIG", "ONLINE", "PAPER_RAMP", "Q_HEAD",
    "TARGET", "Agent", "AgentConfig", "BufferedLayer", "ExplorationSchedule", "ICRLAgent", "QNetwork", "RolloutEngine",
    "RolloutResult", "Transition", "adapter_parameters", "add_q_head", "buffered_cache", "build_q_network",
    "decoding_attention_forward", "exploration_streams", "load_q_head", "local_dir", "make_peft_config",
    "parse_schedules", "play_seeds", "reached_goal", "select_cache_rows", "store_frozen_base_in_bf16", "trial_full",
]
