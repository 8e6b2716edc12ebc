from .dqn_config import DQNConfig
from .dqn_trainer import DQNTrainer
from .rewards import RewardPath, td_targets

__all__ = ["DQNConfig", "DQNTrainer", "RewardPath", "td_targets"]
