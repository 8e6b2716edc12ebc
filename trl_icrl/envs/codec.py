"""The env codec: how any gymnasium env with Discrete observation and action spaces is written as text, so
that it speaks the token protocol (not to be confused with a peft adapter, which holds trained weights)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import gymnasium as gym
from gymnasium.envs.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv

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
            and needs a grid env (``grid_shape``); an env wrapped in ``RandomCoordinateOffset`` has its
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
        shape = grid_shape(env)
        if shape is None:
            raise ValueError(f"observation_format='coords' needs a grid env (`nrow` and `ncol`, or `shape`); "
                             f"{env.unwrapped.spec.id if env.unwrapped.spec else env} is none")
        row, col = divmod(int(observation), shape[1])
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
        if self.observation_format == "coords" and not fits_grid(env, self.grid_side):
            raise ValueError(f"observation_format='coords' writes grids up to {self.grid_side} x {self.grid_side}; "
                             f"this env's grid is {grid_shape(env) or 'none'}: use observation_format='index'")


def grid_shape(env: gym.Env) -> tuple[int, int] | None:
    """``(rows, columns)`` of a grid env (``nrow`` and ``ncol`` attributes, as Frozen Lake's, or ``shape``, as
    CliffWalking's), ``None`` for any other env."""
    unwrapped = env.unwrapped
    if getattr(unwrapped, "nrow", None) is not None and getattr(unwrapped, "ncol", None) is not None:
        return int(unwrapped.nrow), int(unwrapped.ncol)
    shape = getattr(unwrapped, "shape", None)
    if isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(side, int) for side in shape):
        return shape
    return None


def fits_grid(env: gym.Env, grid_side: int = MAX_GRID_SIDE) -> bool:
    """Whether ``env`` is a grid whose coordinates the ``coords`` vocabulary writes: both sides at most
    ``grid_side``."""
    shape = grid_shape(env)
    return shape is not None and max(shape) <= grid_side


def frozen_lake_codec(observation_format: str = "coords") -> EnvCodec:
    """The codec of Frozen Lake maps up to ``MAX_GRID_SIDE`` on a side."""
    return EnvCodec(FROZEN_LAKE_ACTIONS, (1.0,), MAX_GRID_SIDE * MAX_GRID_SIDE, observation_format)


def cliff_walking_codec(observation_format: str = "index") -> EnvCodec:
    """The codec of gymnasium's CliffWalking (4 x 12: ``index`` observations, the grid is wider than ``coords``
    writes)."""
    return EnvCodec(("up", "right", "down", "left"), (-1.0, -100.0), 48, observation_format)


def taxi_codec(observation_format: str = "index") -> EnvCodec:
    """The codec of gymnasium's Taxi (500 states)."""
    return EnvCodec(("south", "north", "east", "west", "pickup", "dropoff"), (-1.0, -10.0, 20.0), 500,
                    observation_format)


CODECS = {
    "trl_icrl/ParametricFrozenLake-v0": frozen_lake_codec,
    "FrozenLake-v1": frozen_lake_codec,
    "CliffWalking-v1": cliff_walking_codec,
    "Taxi-v4": taxi_codec,
}
_TOY_TEXT_CODECS = {FrozenLakeEnv: frozen_lake_codec, CliffWalkingEnv: cliff_walking_codec, TaxiEnv: taxi_codec}
"""Codecs of gymnasium's toy-text env classes, for envs registered under other ids (``FrozenLake-v1``'s class with
``map_name="8x8"`` under a new id)."""


def _toy_text_rewards(env: gym.Env) -> tuple[float, ...] | None:
    """Every non-zero reward of a toy-text env, read off its transition table ``P[s][a] = [(p, s', r, done)]``."""
    table = getattr(env.unwrapped, "P", None)
    if not isinstance(table, dict):
        return None
    rewards = {float(r) for actions in table.values() for outcomes in actions.values() for _, _, r, _ in outcomes}
    return tuple(sorted(r for r in rewards if r != 0))


def codec_for(env_id: str, observation_format: str | None = None,
              reward_values: Sequence[float] | None = None, action_words: Sequence[str] | None = None) -> EnvCodec:
    """The codec of an env id: a known id's; else the one its env declares (``action_words``, ``reward_values``
    and ``max_observations`` attributes of the unwrapped env, the toy-text env classes' words, rewards read off a
    toy-text ``P`` table, or ``reward_values`` given here), with the actions written ``0, 1, ...`` when the env
    names none. ``observation_format=None``: the env's own, coordinates for a grid that ``coords`` writes
    (``fits_grid``), state ids otherwise. ``action_words`` renames the env's actions (one word each, in
    action-index order), e.g. with the words of the envs a model trained on."""
    codec = _codec_for(env_id, observation_format, reward_values)
    if action_words is None:
        return codec
    if len(action_words) != codec.n_actions or len(set(action_words)) != len(action_words):
        raise ValueError(f"action_words must name {env_id}'s {codec.n_actions} actions with distinct words, got "
                         f"{list(action_words)}")
    return replace(codec, action_words=tuple(action_words))


def _codec_for(env_id: str, observation_format: str | None, reward_values: Sequence[float] | None) -> EnvCodec:
    if env_id in CODECS:
        return CODECS[env_id](observation_format) if observation_format else CODECS[env_id]()
    env = gym.make(env_id)
    if not isinstance(env.action_space, gym.spaces.Discrete) or not isinstance(
            env.observation_space, gym.spaces.Discrete):
        raise ValueError(f"{env_id} has {env.observation_space} observations and {env.action_space} "
                         f"actions; the token protocol needs Discrete spaces")
    unwrapped = env.unwrapped
    known = next((make for cls, make in _TOY_TEXT_CODECS.items() if isinstance(unwrapped, cls)), None)
    if known is not None and reward_values is None and not hasattr(unwrapped, "action_words"):
        return known(observation_format) if observation_format else known()
    words = getattr(unwrapped, "action_words", None) or tuple(str(i) for i in range(int(env.action_space.n)))
    rewards = reward_values if reward_values is not None else getattr(unwrapped, "reward_values", None)
    rewards = rewards if rewards is not None else _toy_text_rewards(env)
    if rewards is None:
        raise ValueError(f"{env_id} does not say which rewards it gives (no reward_values attribute, no toy-text P "
                         "table): pass reward_values, its non-zero rewards")
    n_observations = getattr(unwrapped, "max_observations", int(env.observation_space.n))  # over every map it plays
    return EnvCodec(tuple(words), tuple(float(r) for r in rewards), n_observations,
                    observation_format or ("coords" if fits_grid(env) else "index"))
