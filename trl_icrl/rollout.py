"""Moved to ``trl_icrl.lm_agent`` (the language-model agent; the play loop and ``RolloutResult`` are in
``trl_icrl.play``); this path keeps working with a warning."""

import warnings

from .lm_agent import RolloutEngine
from .play import RolloutResult

__all__ = ["RolloutEngine", "RolloutResult"]

warnings.warn("trl_icrl.rollout moved to trl_icrl.lm_agent (RolloutResult: trl_icrl.play)", DeprecationWarning,
              stacklevel=2)
