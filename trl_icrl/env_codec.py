"""The env codec: how any gymnasium env with Discrete observation and action spaces is written as text, so
that it speaks the token protocol (not to be confused with a peft adapter, which holds trained weights)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym

FROZEN_LAKE_ACTIONS = ("left", "down", "right", "up")
MAX_GRID_SIDE = 10
"""Largest grid side the coordinate vocabulary covers (matches the map generator's limit)."""


@dataclass(frozen=True)
class EnvCodec:
    """How observations, actions and rewards of one env family are written as text.

    Args:
        action_words: one word per action, in action-index order.
        reward_values: every non-zero reward the env can give.
        n_observations: an upper bound on the observation index (for the vocabulary).
        observation_format: ``"index"`` writes the observation index (``"13"``, the paper's tile
            index); ``"coords"`` writes grid coordinates (``"r2 c3"``) of ``index = row * ncol + col``
            and needs an env with an ``ncol`` attribute; an env wrapped in ``RandomCoordinateOffset`` has its
            ``coordinate_offset`` added.
    """

    action_words: tuple[str, ...]
    reward_values: tuple[float, ...]
    n_observations: int
    observation_format: str = "index"
    grid_side: int = MAX_GRID_SIDE

    def __post_init__(self):
        if self.observation_format not in ("index", "coords"):
            raise ValueError(f"observation_format must be 'index' or 'coords', got {self.observation_format!r}")

    @property
    def n_actions(self) -> int:
        return len(self.action_words)

    def observation_text(self, env: gym.Env, observation: int) -> str:
        if self.observation_format == "index":
            return str(int(observation))
        ncol = getattr(env.unwrapped, "ncol", None)
        if ncol is None:
            raise ValueError(f"observation_format='coords' needs an env with an `ncol` attribute; "
                             f"{env.unwrapped.spec.id if env.unwrapped.spec else env} has none")
        row, col = divmod(int(observation), int(ncol))
        if env.has_wrapper_attr("coordinate_offset"):
            row_offset, col_offset = env.get_wrapper_attr("coordinate_offset")
            row, col = row + row_offset, col + col_offset
        return f"r{row} c{col}"

    def observation_texts(self) -> list[str]:
        """Every text ``observation_text`` can return."""
        if self.observation_format == "index":
            return [str(i) for i in range(self.n_observations)]
        return [f"r{r} c{c}" for r in range(self.grid_side) for c in range(self.grid_side)]

    def check_env(self, env: gym.Env) -> None:
        """Raise ``ValueError`` unless ``env`` has Discrete spaces that fit this codec."""
        if not isinstance(env.action_space, gym.spaces.Discrete) or not isinstance(
                env.observation_space, gym.spaces.Discrete):
            raise ValueError(f"the token protocol needs Discrete observation and action spaces, got "
                             f"{env.observation_space} and {env.action_space}")
        if env.action_space.n != self.n_actions:
            raise ValueError(f"env has {env.action_space.n} actions but the codec (and Q head) has "
                             f"{self.n_actions}: {self.action_words}")
        if self.observation_format == "index" and env.observation_space.n > self.n_observations:
            raise ValueError(f"env has {env.observation_space.n} observations, the codec covers "
                             f"{self.n_observations}")


def frozen_lake_codec(observation_format: str = "coords") -> EnvCodec:
    """The codec of Frozen Lake maps up to ``MAX_GRID_SIDE`` on a side."""
    return EnvCodec(FROZEN_LAKE_ACTIONS, (1.0,), MAX_GRID_SIDE * MAX_GRID_SIDE, observation_format)


CODECS = {
    "trl_icrl/ParametricFrozenLake-v0": frozen_lake_codec,
    "FrozenLake-v1": frozen_lake_codec,
    "CliffWalking-v1": lambda fmt="index": EnvCodec(
        ("up", "right", "down", "left"), (-1.0, -100.0), 48, fmt),
    "Taxi-v4": lambda fmt="index": EnvCodec(
        ("south", "north", "east", "west", "pickup", "dropoff"), (-1.0, -10.0, 20.0), 500, fmt),
}


def codec_for(env_id: str, observation_format: str | None = None,
              reward_values: Sequence[float] | None = None) -> EnvCodec:
    """The codec of a known env id, or a generic one (``a0, a1, ...`` actions) for any Discrete env."""
    if env_id in CODECS:
        return CODECS[env_id](observation_format) if observation_format else CODECS[env_id]()
    env = gym.make(env_id)
    if not isinstance(env.action_space, gym.spaces.Discrete) or not isinstance(
            env.observation_space, gym.spaces.Discrete):
        raise ValueError(f"{env_id} has {env.observation_space} observations and {env.action_space} "
                         f"actions; the token protocol needs Discrete spaces")
    if reward_values is None:
        raise ValueError(f"{env_id} is not a known env: pass reward_values, the non-zero rewards it gives")
    words = tuple(f"a{i}" for i in range(int(env.action_space.n)))
    return EnvCodec(words, tuple(reward_values), int(env.observation_space.n), observation_format or "index")
