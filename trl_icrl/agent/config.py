"""``icrl_config.json``: what acting with saved weights needs besides them, written by ``DQNTrainer`` and read by
``ICRLAgent``, and the token protocol built from it."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..envs.codec import EnvCodec
from ..protocol import TokenProtocol

ICRL_CONFIG = "icrl_config.json"


FILE_KEYS = {"eval_context_tokens": "max_context_tokens", "max_context_tokens": "training_context_tokens"}
"""The fields ``icrl_config.json`` keeps under other keys: the contexts took ``DQNConfig``'s names after agents were
published, and the files keep theirs."""


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """The saved agent's settings; the fields are the keys of ``icrl_config.json``.

    Args:
        base_model: hub id or dir of the base (``"base"``: the folder saved beside an adapter).
        q_parameterisation, adapter_type: as in ``DQNConfig``.
        env_id, map_family, is_slippery: the env trained on (``map_family`` names a family of generated maps
            when the env has them).
        protocol_format, observation_format, action_words, reward_values, n_actions, n_observations: how the
            env is written as tokens.
        episodes_per_trial: most episodes in one training context.
        max_context_tokens: most tokens in one training context (``DQNConfig.max_context_tokens``; ``None`` in
            files older than the field).
        eval_context_tokens: most tokens in one context when playing (``DQNConfig.eval_context_tokens``).
        gamma, reward_scale: the TD settings the Q-values were trained with.
        base_dequantised_from: the GGUF file the base's weights were dequantised from, when they were
            (``trl_icrl.hub_cache.dequantise_gguf``); ``None`` for the base's own release.
        trained_env_ids: the envs trained on together (a general model; ``env_id`` is the first); empty for one.
        precision: what the model's matmuls ran in during training (``"bf16"`` autocast or ``"fp32"``).
    """

    base_model: str
    q_parameterisation: str
    adapter_type: str
    env_id: str
    map_family: str = "id"
    is_slippery: bool = False
    protocol_format: str
    observation_format: str
    action_words: tuple[str, ...]
    reward_values: tuple[float, ...]
    n_actions: int
    n_observations: int
    episodes_per_trial: int
    max_context_tokens: int | None = None
    eval_context_tokens: int
    gamma: float
    reward_scale: float
    base_dequantised_from: str | None = None
    trained_env_ids: tuple[str, ...] = ()
    precision: str = "fp32"

    @classmethod
    def from_dict(cls, values: Mapping) -> AgentConfig:
        """From the keys of ``icrl_config.json`` (``FILE_KEYS``); raises ``ValueError`` naming unknown or missing
        keys."""
        values = {name: values[key] for name, key in FILE_KEYS.items() if key in values} | \
            {key: value for key, value in values.items() if key not in FILE_KEYS.values()}
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        unknown, missing = set(values) - names, required - set(values)
        if unknown or missing:
            raise ValueError(f"{ICRL_CONFIG}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        return cls(**{**values, "action_words": tuple(values["action_words"]),
                      "reward_values": tuple(float(r) for r in values["reward_values"]),
                      "trained_env_ids": tuple(values.get("trained_env_ids", ()))})

    def to_dict(self) -> dict:
        """The keys of ``icrl_config.json``; ``base_dequantised_from`` and ``trained_env_ids`` only when set (older
        files lack them)."""
        values = {**dataclasses.asdict(self), "action_words": list(self.action_words),
                  "reward_values": list(self.reward_values), "trained_env_ids": list(self.trained_env_ids)}
        values = {FILE_KEYS.get(name, name): value for name, value in values.items()}
        for key in ("base_dequantised_from", "trained_env_ids"):
            if not values[key]:
                del values[key]
        if values["precision"] == "fp32":  # older files lack it
            del values["precision"]
        return values

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``directory/icrl_config.json``; returns its path."""
        path = Path(directory) / ICRL_CONFIG
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> AgentConfig:
        """Read ``directory/icrl_config.json`` of a local dir written by ``DQNTrainer``."""
        path = Path(directory) / ICRL_CONFIG
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {ICRL_CONFIG}: not a directory written by DQNTrainer")
        return cls.from_dict(json.loads(path.read_text()))

    def for_env(self, env_id: str, codec: EnvCodec) -> AgentConfig:
        """These settings with another env, written by ``codec``."""
        return dataclasses.replace(self, env_id=env_id, observation_format=codec.observation_format,
                                   action_words=codec.action_words, reward_values=codec.reward_values,
                                   n_observations=codec.n_observations)

    def env_codec(self) -> EnvCodec:
        """How the env's observations, actions and rewards are written as text."""
        return EnvCodec(self.action_words, self.reward_values, self.n_observations, self.observation_format)

    def token_protocol(self, tokenizer) -> TokenProtocol:
        """The token protocol of this agent over ``tokenizer`` (its ``pad_token_id`` pads batches)."""
        codec = self.env_codec()
        return TokenProtocol(tokenizer, self.protocol_format, codec.action_words, codec.observation_texts(),
                             codec.reward_values)
