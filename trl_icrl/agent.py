"""A trained in-context RL agent, loaded from a directory (or hub repo) written by ``DQNTrainer``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from huggingface_hub import hf_hub_download
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from .env_adapter import DiscreteEnvAdapter
from .exploration import ExplorationSchedule
from .protocol import TokenProtocol
from .q_network import QNetwork, add_q_head
from .rollout import RolloutEngine, RolloutResult
from .tiny_model import resolve_model_path

ICRL_CONFIG = "icrl_config.json"


def read_icrl_config(path: str | os.PathLike) -> dict:
    """``icrl_config.json`` of a local dir or a hub repo id."""
    local = Path(path) / ICRL_CONFIG
    if local.is_file():
        return json.loads(local.read_text())
    if Path(path).exists():
        raise FileNotFoundError(f"{path} has no {ICRL_CONFIG}: not a directory written by DQNTrainer")
    return json.loads(Path(hf_hub_download(str(path), ICRL_CONFIG)).read_text())


class ICRLAgent:
    """Base model + adapter (+ Q head) + tokenizer + protocol, ready to act in an env.

    ``ICRLAgent.from_pretrained(path)`` is the one call: it loads the base named in ``icrl_config.json``,
    attaches the Q head when the adapter has one, and restores the adapter with
    ``PeftModel.from_pretrained``.
    """

    def __init__(self, network: QNetwork, tokenizer, protocol: TokenProtocol, env_adapter: DiscreteEnvAdapter,
                 config: dict):
        self.network, self.tokenizer, self.protocol = network, tokenizer, protocol
        self.env_adapter, self.config = env_adapter, config

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, base_model: str | None = None,
                        dtype: torch.dtype = torch.float32) -> ICRLAgent:
        config = read_icrl_config(path)
        base = AutoModelForCausalLM.from_pretrained(resolve_model_path(base_model or config["base_model"]),
                                                    dtype=dtype)
        if config["q_parameterisation"] == "value_head":
            add_q_head(base, config["n_actions"])
        model = PeftModel.from_pretrained(base, str(path)).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        env_adapter = DiscreteEnvAdapter(tuple(config["action_words"]), tuple(config["reward_values"]),
                                         config["n_observations"], config["observation_format"])
        protocol = TokenProtocol(tokenizer, config["protocol_format"], env_adapter.action_words,
                                 env_adapter.observation_texts(), env_adapter.reward_values)
        network = QNetwork(model, config["q_parameterisation"], protocol.action_token_ids)
        return cls(network, tokenizer, protocol, env_adapter, config)

    def engine(self, max_context_tokens: int | None = None, when_full: str = "drop") -> RolloutEngine:
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return RolloutEngine(self.network, self.protocol, self.env_adapter,
                             max_context_tokens or self.config["max_context_tokens"], pad, when_full)

    def play(self, envs: gym.Env | Sequence[gym.Env], n_episodes: int = 30,
             schedule: ExplorationSchedule | str = "greedy", seed: int = 0) -> RolloutResult:
        """Play ``n_episodes`` in each env, all in one growing context per env."""
        envs = [envs] if isinstance(envs, gym.Env) else list(envs)
        schedule = ExplorationSchedule.parse(schedule) if isinstance(schedule, str) else schedule
        return self.engine().play(envs, n_episodes, schedule, np.random.default_rng(seed),
                                  reset_seeds=[seed + i for i in range(len(envs))])
