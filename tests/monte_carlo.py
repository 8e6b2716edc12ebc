"""Independent Monte-Carlo reference: uniform random actions on gymnasium's own FrozenLake-v1."""

import gymnasium as gym
import numpy as np


def random_walk_success(desc, episodes: int, rng: np.random.Generator, max_episode_steps: int) -> float:
    """Fraction of ``episodes`` (reset seeds 0..episodes-1) in which uniform random actions reach a goal."""
    env = gym.make("FrozenLake-v1", desc=list(desc), is_slippery=False, max_episode_steps=max_episode_steps)
    wins = 0
    for k in range(episodes):
        env.reset(seed=k)
        while True:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(4)))
            if terminated or truncated:
                wins += bool(terminated and reward > 0)
                break
    return wins / episodes
