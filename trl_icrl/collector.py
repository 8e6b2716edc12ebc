"""Moved to ``trl_icrl.trainer.collector`` (it serves the trainer only); this path keeps working with a warning."""

import warnings

from .trainer.collector import *  # noqa: F403
from .trainer.collector import __all__  # noqa: F401

warnings.warn("trl_icrl.collector moved to trl_icrl.trainer.collector", DeprecationWarning, stacklevel=2)
