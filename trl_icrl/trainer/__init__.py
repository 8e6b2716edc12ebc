from .dqn_config import DQNConfig
from .dqn_trainer import DQNTrainer, td_targets

__all__ = ["DQNConfig", "DQNTrainer", "td_targets"]
