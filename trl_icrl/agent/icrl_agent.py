"""A trained in-context RL agent, loaded from a directory (or hub repo) written by ``DQNTrainer``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import gymnasium as gym
import torch
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError
from huggingface_hub.utils import validate_repo_id
from peft import PeftModel
from peft.utils import ModulesToSaveWrapper
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from ..envs.codec import EnvCodec, codec_for
from ..precision import cpu_supports_bf16, resolve_precision
from ..protocol import TokenProtocol
from ..tiny_model import resolve_model_path
from ..vocabulary import extend_vocabulary, restore_vocabulary, words_to_add
from .config import AgentConfig
from .exploration import ExplorationSchedule
from .play import RolloutResult, play_seeds
from .q_network import Q_HEAD, QNetwork, add_q_head, load_q_head, store_frozen_base_in_bf16
from .rollout_engine import RolloutEngine


def local_dir(path: str | os.PathLike) -> Path:
    """A local dir as it is, a hub repo id downloaded (snapshot) to the local cache.

    Raises ``FileNotFoundError`` naming the local directory when ``path`` does not exist and is no repo id
    (``/no/such/dir``, ``./out``), or when no repo of that name can be loaded either.
    """
    if Path(path).exists():
        return Path(path)
    name = str(path)
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise FileNotFoundError(f"local directory {name} does not exist (and it is not a Hub repo id)") from None
    try:
        return Path(snapshot_download(name))
    except (LocalEntryNotFoundError, RepositoryNotFoundError) as err:
        raise FileNotFoundError(f"local directory {name} does not exist, and no Hub repo {name} could be "
                                f"loaded: {err}") from err


def _untrained_state(base_model: str, q_parameterisation: str, n_actions: int,
                     tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
    """The weights a fully fine-tuned agent started from: its base, grown to ``tokenizer``'s added words (composed
    from the base's embeddings), with a fresh Q head."""
    base = AutoModelForCausalLM.from_pretrained(resolve_model_path(base_model))
    restore_vocabulary(base, tokenizer)
    if q_parameterisation == "value_head":
        torch.manual_seed(0)
        add_q_head(base, n_actions)
    return base.state_dict()


class ICRLAgent:
    """Base model + adapter (+ Q head) + tokenizer + protocol, ready to act in an env.

    ``ICRLAgent.from_pretrained(path)`` is the one call. A fully fine-tuned agent is a causal LM with its Q
    head in the same weights file. An adapter is restored with ``PeftModel.from_pretrained`` on the base
    named in ``icrl_config.json`` (the ``base/`` folder beside it when the base has no hub id), with the Q
    head attached when the adapter has one.
    """

    def __init__(self, network: QNetwork, tokenizer, protocol: TokenProtocol, env_codec: EnvCodec,
                 config: AgentConfig):
        self.network, self.tokenizer, self.protocol = network, tokenizer, protocol
        self.env_codec, self.config = env_codec, config

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, base_model: str | None = None,
                        dtype: torch.dtype = torch.float32, precision: str | None = None) -> ICRLAgent:
        """Load the agent saved in ``path`` (a dir or hub repo); ``precision`` as ``DQNConfig.precision`` (``None``:
        the one it trained in, fp32 where this CPU runs no bf16)."""
        path = local_dir(path)
        config = AgentConfig.load(path)
        value_head, full = config.q_parameterisation == "value_head", config.adapter_type == "none"
        base_name, initial_state = base_model or config.base_model, None
        if full:
            verbosity = transformers_logging.get_verbosity()
            transformers_logging.set_verbosity_error()  # the Q head's weights are loaded below, not "unexpected"
            try:
                model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
            finally:
                transformers_logging.set_verbosity(verbosity)
            if value_head:
                add_q_head(model, config.n_actions)
                load_q_head(model, path)
            initial_state = partial(_untrained_state, base_name, config.q_parameterisation, config.n_actions,
                                    tokenizer=AutoTokenizer.from_pretrained(str(path)))
        else:
            base_path = path / base_name if (path / base_name / "config.json").is_file() else \
                resolve_model_path(base_name)
            base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
            restore_vocabulary(base, AutoTokenizer.from_pretrained(str(path)))  # words added in training
            if value_head:  # the adapter holds the trained head: a base's head of another size gives way
                add_q_head(base, config.n_actions, replace=True)
            model = PeftModel.from_pretrained(base, str(path))
        return cls.from_model(model, path, initial_state, precision)

    @classmethod
    def from_model(cls, model: nn.Module, path: str | os.PathLike,
                   initial_state: Callable[[], dict[str, torch.Tensor]] | None = None,
                   precision: str | None = None) -> ICRLAgent:
        """The agent of a model already loaded, with the tokenizer and ``icrl_config.json`` of ``path``: e.g.
        ``PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(<base>), path)``.

        Raises ``ValueError`` when a value-head agent's model lacks the saved Q head: peft drops an adapter's
        ``q_head`` when the base has no such module (every base but ``trl-icrl/tiny-llama``); attach one first with
        ``add_q_head(base, n_actions)``."""
        path = local_dir(path)
        config = AgentConfig.load(path)
        causal_lm = model.get_base_model() if isinstance(model, PeftModel) else model
        if config.q_parameterisation == "value_head":
            head = getattr(causal_lm, Q_HEAD, None)
            if head is None or (isinstance(model, PeftModel) and not isinstance(head, ModulesToSaveWrapper)):
                raise ValueError(f"the model has no trained Q head: {path} saves one ({Q_HEAD}.*), which the loader "
                                 f"dropped because its base has no {Q_HEAD} module; call add_q_head(base, "
                                 f"{config.n_actions}) before PeftModel.from_pretrained, or use "
                                 f"ICRLAgent.from_pretrained({str(path)!r})")
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        protocol = config.token_protocol(tokenizer)
        device = next(model.parameters()).device.type
        if precision is None:
            precision = config.precision if device != "cpu" or cpu_supports_bf16() else "fp32"
        precision = resolve_precision(precision, device, bf16_flag=precision == "bf16")
        if precision == "bf16" and isinstance(model, PeftModel):
            store_frozen_base_in_bf16(model)
        network = QNetwork(model, config.q_parameterisation, protocol.action_token_ids, initial_state, precision)
        return cls(network, tokenizer, protocol, config.env_codec(), config)

    def for_env(self, env_id: str, observation_format: str | None = None,
                reward_values: Sequence[float] | None = None, action_words: Sequence[str] | None = None) -> ICRLAgent:
        """This agent (the same weights) writing another env, e.g. one it never trained on, in
        ``observation_format`` (default: the env's own) with its actions named ``action_words`` (default: the
        env's own; the agent's ``config.action_words`` write it in the words it trained on): words its tokenizer
        lacks are added with embeddings composed from their parts (``trl_icrl.vocabulary``). The env must have as
        many actions as the Q head."""
        codec = codec_for(env_id, observation_format, reward_values, action_words)
        if codec.n_actions != self.config.n_actions:
            raise ValueError(f"{env_id} has {codec.n_actions} actions, this agent's Q-values cover "
                             f"{self.config.n_actions} ({self.config.action_words})")
        tokenizer = extend_vocabulary(self.network.model, self.tokenizer,
                                      words_to_add(self.tokenizer, self.config.protocol_format, codec))
        config = self.config.for_env(env_id, codec)
        protocol = config.token_protocol(tokenizer)
        initial_state = self.network.initial_state
        if isinstance(initial_state, partial):  # a full fine-tune's untrained weights, grown to the new words too
            initial_state = partial(initial_state, tokenizer=tokenizer)
        network = QNetwork(self.network.model, config.q_parameterisation, protocol.action_token_ids, initial_state,
                           self.network.precision)
        return ICRLAgent(network, tokenizer, protocol, codec, config)

    def engine(self, eval_context_tokens: int | None = None, when_full: str = "drop") -> RolloutEngine:
        """The rollout engine that plays with this agent, its contexts at most ``eval_context_tokens`` (default: the
        saved ``config.eval_context_tokens``)."""
        return RolloutEngine(self.network, self.protocol, self.env_codec,
                             eval_context_tokens or self.config.eval_context_tokens, self.protocol.pad_token_id,
                             when_full)

    def play(self, envs: gym.Env | Sequence[gym.Env], n_episodes: int = 30,
             schedule: ExplorationSchedule | str = "greedy", seed: int = 0,
             eval_context_tokens: int | None = None) -> RolloutResult:
        """Play ``n_episodes`` in each env, all in one growing context per env of at most ``eval_context_tokens``
        (default: the saved ``config.eval_context_tokens``; older episodes are dropped to make room)."""
        envs = [envs] if isinstance(envs, gym.Env) else list(envs)
        schedule = ExplorationSchedule.parse(schedule) if isinstance(schedule, str) else schedule
        rng, reset_seeds = play_seeds(seed, len(envs))
        return self.engine(eval_context_tokens).play(envs, n_episodes, schedule, rng, reset_seeds=reset_seeds)
