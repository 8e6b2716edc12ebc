"""The names a ``DQNConfig`` chooses among, in a module that imports nothing (so the config validates them without
importing peft, gymnasium or datasets)."""

ADAPTER_TYPES = ("none", "lora", "ia3")
"""``none`` is full fine-tuning (TRL's convention: no peft config)."""
Q_PARAMETERISATIONS = ("value_head", "action_logits")
QUALITIES = {"low": (0.3,), "high": (0.9,), "mixed": (0.3, 0.9), "q_learning": (), "random": ()}
"""Offline data's behaviour policies: the epsilon-optimal qualities each cycles through (P(oracle action)), or
tabular Q-learning (optimistic), or uniform random play."""
