"""Moved to ``trl_icrl.trainer.callbacks`` (it serves the trainer only); this path keeps working with a warning."""

import warnings

from .trainer.callbacks import *  # noqa: F403
from .trainer.callbacks import __all__  # noqa: F401

warnings.warn("trl_icrl.callbacks moved to trl_icrl.trainer.callbacks", DeprecationWarning, stacklevel=2)
