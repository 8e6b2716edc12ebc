"""In-context DQN: one forward over each whole trial gives the TD error of every decision in it."""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import DistributedType
from huggingface_hub import is_offline_mode
from huggingface_hub.constants import HF_HUB_CACHE
from peft import LoraConfig, PeftConfig, PeftModel, set_peft_model_state_dict
from peft.utils import ModulesToSaveWrapper
from safetensors.torch import load_file
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, IterableDataset
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    set_seed,
)
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    IntervalStrategy,
    TrainOutput,
    get_last_checkpoint,
    rotate_checkpoints,
)

from ..agent.config import ICRL_CONFIG, AgentConfig
from ..agent.exploration import parse_schedules
from ..agent.icrl_agent import ICRLAgent
from ..agent.layer_cache import LowerStateCache
from ..agent.q_network import (
    FULL_WEIGHTS,
    ONLINE,
    Q_HEAD,
    TARGET,
    QNetwork,
    adapter_parameters,
    build_q_network,
    make_peft_config,
    store_frozen_base_in_bf16,
)
from ..agent.rollout_engine import RolloutEngine
from ..envs import SPLITS, evaluation_maps, split_maps
from ..envs.codec import codec_for
from ..envs.families import first_family, map_family, trained_map_families
from ..hub_cache import DEQUANTISED_FROM
from ..model_card import push_folder_to_hub, write_model_card
from ..offline_data import offline_trials
from ..precision import resolve_precision
from ..protocol import CONTINUE, TERMINATED, TRIAL_FIELDS, TRIAL_SCHEMA, ProtocolError
from ..replay_store import FEATURES, ReplayStore, collate_trials
from ..tiny_model import (
    RANDOM_TINY_NAME,
    SHIPPED_BASES,
    TINY_MODEL_NAME,
    canonical_model_name,
    resolve_model_path,
)
from ..vocabulary import extend_vocabulary, words_to_add
from .callbacks import (
    EnvInteractionCallback,
    InRunEvalCallback,
    MinutesProgressCallback,
    TargetNetworkCallback,
    WallClockLimitCallback,
)
from .collector import EnvMixtureCollector, TrialCollector, check_mixture
from .dqn_config import REWARD_CLIPS, DQNConfig

REPLAY_DIR = "replay_store"
BASE_DIR = "base"
"""Where a peft adapter's base is saved when it has no hub id (the embedded tiny model or a local dir)."""
DQN_STATE = "dqn_state.json"
STAGING_DIR = ".staging"


def td_targets(rewards: torch.Tensor, dones: torch.Tensor, mask: torch.Tensor, next_q_online: torch.Tensor,
               next_q_target: torch.Tensor, gamma: float, n_step: int = 1, double_dqn: bool = True) -> torch.Tensor:
    """n-step (double) DQN targets for every decision of a batch of trials.

    ``y_d = sum_{k<m} gamma^k r_{d+k} + gamma^m * Q_target(s', argmax_a Q_online(s', a)) * [s' not terminal]``,
    with ``m = min(n_step, steps left in the episode)`` and ``s'`` the state after step ``d+m-1``.

    Args:
        rewards, dones, mask: (B, D) per decision; ``dones`` in {CONTINUE, TERMINATED, TRUNCATED}.
        next_q_online, next_q_target: (B, D, A) Q of the state after each decision.
    Returns:
        (B, D) targets (zero where ``mask`` is False).
    """
    greedy = (next_q_online if double_dqn else next_q_target).argmax(-1, keepdim=True)
    next_value = next_q_target.gather(-1, greedy).squeeze(-1) * (dones != TERMINATED)
    steps = torch.arange(rewards.shape[1], device=rewards.device)
    targets = torch.zeros_like(rewards)
    running = mask.float()  # 1 while the n-step sum of decision d is still accumulating
    for k in range(n_step):
        index = (steps + k).clamp(max=rewards.shape[1] - 1).expand_as(rewards)
        valid = mask.gather(1, index) & (steps + k < rewards.shape[1])
        running = running * valid
        targets = targets + running * gamma**k * rewards.gather(1, index)
        stop = (dones.gather(1, index) != CONTINUE) | (k == n_step - 1)
        targets = targets + running * stop * gamma ** (k + 1) * next_value.gather(1, index)
        running = running * ~stop
    return targets * mask


def parameter_sharding(distributed_type: DistributedType, zero_stage: int | None = None) -> str | None:
    """The name of the backend when it shards parameters across processes (FSDP, DeepSpeed ZeRO-3), else ``None``.

    ``DQNTrainer`` refuses those: its target update (``QNetwork.polyak_update``) reads whole parameters.
    """
    if distributed_type == DistributedType.FSDP:
        return "FSDP"
    if distributed_type == DistributedType.DEEPSPEED and zero_stage == 3:
        return "DeepSpeed ZeRO-3"
    return None


def requested_sharding(args: DQNConfig) -> str | None:
    """``parameter_sharding`` of what the launch asks for, read before any work: ``accelerate launch``'s
    environment (``ACCELERATE_USE_FSDP``, ``ACCELERATE_DEEPSPEED_ZERO_STAGE``) and the ``fsdp`` / ``deepspeed``
    arguments."""
    if args.fsdp or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return parameter_sharding(DistributedType.FSDP)
    stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") \
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" else None
    if isinstance(args.deepspeed, dict):
        stage = args.deepspeed.get("zero_optimization", {}).get("stage", stage)
    elif isinstance(args.deepspeed, str) and Path(args.deepspeed).is_file():
        stage = json.loads(Path(args.deepspeed).read_text()).get("zero_optimization", {}).get("stage", stage)
    return parameter_sharding(DistributedType.DEEPSPEED, int(stage)) if stage not in (None, "") else None


def refuse_sharding(sharding: str | None) -> None:
    """Raise one sentence for a backend that shards parameters (``None``: nothing to refuse)."""
    if sharding is not None:
        raise ValueError(f"DQNTrainer does not support {sharding}: it shards parameters across processes, and the "
                         "target update (Polyak or hard copy) reads whole parameters; use one GPU, DDP "
                         "(recipes/accelerate/multi_gpu_ddp.yaml) or DeepSpeed ZeRO-2")


def env_reward_scale(reward_values: Sequence[float], normalisation: str, gamma: float) -> float:
    """An env's reward multiplier in the TD targets, from its non-zero rewards (``EnvCodec.reward_values``):
    1 / the largest |reward| for ``"max"`` and ``"goal"``; for ``"horizon"`` that, or (1 - gamma) / the smallest
    |reward| where larger (a step cost that adds up over the discount horizon to a goal's 1; the targets are then
    clipped to [-1, 1]); 1 otherwise."""
    magnitudes = [abs(r) for r in reward_values if r] or [1.0]
    if normalisation in ("max", "goal"):
        return 1.0 / max(magnitudes)
    if normalisation == "horizon":
        return max(1.0 / max(magnitudes), (1.0 - gamma) / min(magnitudes))
    return 1.0


def env_goal_reward(reward_values: Sequence[float], normalisation: str) -> float:
    """The reward added to an env's terminal steps in the TD targets: 1 under ``"goal"`` for an env with no positive
    reward (it ends episodes only at its goal: the cliff walkings), 0 otherwise."""
    return 1.0 if normalisation == "goal" and not any(r > 0 for r in reward_values) else 0.0


class ReplayBatches(IterableDataset):
    """An endless stream of collated batches of trials sampled from a (growing) replay store, each trial's
    rewards multiplied by its env's entry in ``reward_scales`` (env id -> factor; None: unscaled), its env's entry in
    ``goal_rewards`` added at its terminal steps, then replaced by their signs (``reward_clip="sign"``) or clipped to
    [-1, 1] (``"unit"``). With ``lower_states`` (a ``LowerStateCache`` of the store's rows), each batch also holds
    its trials' ``lower_states``, (B, L, hidden), right-padded like ``input_ids``."""

    def __init__(self, store: ReplayStore, batch_size: int, pad_token_id: int, seed: int, recency: float = 0.0,
                 reward_scales: Mapping[str, float] | None = None, reward_clip: str | None = None,
                 goal_rewards: Mapping[str, float] | None = None, lower_states: LowerStateCache | None = None):
        if reward_clip not in set(REWARD_CLIPS.values()):
            raise ValueError(f"reward_clip must be None, 'sign' or 'unit', got {reward_clip!r}")
        self.store, self.batch_size, self.pad_token_id, self.recency = store, batch_size, pad_token_id, recency
        self.reward_scales, self.reward_clip, self.goal_rewards = reward_scales, reward_clip, goal_rewards or {}
        self.lower_states = lower_states
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        while True:
            indices = self.store.sample_indices(self.batch_size, self.rng, self.recency)
            rows = self.store.rows(indices)
            batch = collate_trials(rows, self.pad_token_id)
            if self.lower_states is not None:
                batch["lower_states"] = self.lower_states.batch(indices, [row["input_ids"] for row in rows])
            if self.reward_scales is not None:
                unknown = {r["env_id"] for r in rows} - set(self.reward_scales)
                if unknown:
                    raise ValueError(f"replay trials of {sorted(unknown)}, an env this trainer does not train on "
                                     f"({sorted(self.reward_scales)})")
                batch["rewards"] *= torch.tensor([self.reward_scales[r["env_id"]] for r in rows]).unsqueeze(1)
            if any(self.goal_rewards.values()):
                goals = torch.tensor([self.goal_rewards.get(r["env_id"], 0.0) for r in rows]).unsqueeze(1)
                batch["rewards"] += goals * (batch["dones"] == TERMINATED)
            if self.reward_clip == "sign":
                batch["rewards"] = batch["rewards"].sign()
            elif self.reward_clip == "unit":
                batch["rewards"] = batch["rewards"].clamp(-1.0, 1.0)
            yield batch


class DQNTrainer(Trainer):
    """Trains a causal LM into an in-context RL agent with DQN over multi-episode trials.

    Args:
        model: a hub id or local dir (``"tiny"`` for the embedded model), loaded with ``args.dtype`` and
            ``args.model_init_kwargs``; a dir of an agent ``save_model`` wrote (its adapter trains on); a loaded
            causal LM; or a ``PeftModel`` whose adapter ``"default"`` trains
            (with a value head, its ``modules_to_save`` must hold ``q_head``).
        args: a ``DQNConfig``.
        train_dataset: histories to learn from, a ``datasets.Dataset`` with the replay store's trial columns
            (``trl_icrl.replay_store.FEATURES``; ``env_id``, ``env_map``, ``seed`` and ``policy`` optional with one
            env), checked against the protocol; its trials seed the replay store as offline data does (default:
            ``datasets.load_dataset(args.dataset_name)`` when that is set).
        processing_class: the tokenizer; loaded from ``model`` when omitted.
        callbacks: extra ``TrainerCallback``s.
        optimizers: ``(optimizer, lr_scheduler)``, as ``Trainer`` takes them; ``(None, None)`` builds them from
            ``args``.
        peft_config: the adapter to train on the frozen base (any ``peft.PeftConfig``; with a value head, ``q_head``
            is added to its ``modules_to_save``); ``None``: the one ``args.adapter_type`` and ``args.lora_*``
            describe, or full fine-tuning for ``adapter_type="none"``.
        replay_store: an existing store (e.g. offline data); a fresh one otherwise.
    """

    _tag_names = ["trl", "trl-icrl", "dqn", "in-context-rl", "reinforcement-learning", "deep-reinforcement-learning"]
    """The tags of every model card this trainer writes (before the adapter's and the env's)."""

    def __init__(self, model: str | PreTrainedModel | PeftModel | None = None, args: DQNConfig | None = None,
                 train_dataset: datasets.Dataset | None = None, processing_class: PreTrainedTokenizerBase | None = None,
                 callbacks: list[TrainerCallback] | None = None,
                 optimizers: tuple[torch.optim.Optimizer | None, LambdaLR | None] = (None, None),
                 peft_config: PeftConfig | None = None, replay_store: ReplayStore | None = None):
        args = args or DQNConfig()
        refuse_sharding(requested_sharding(args))  # before minutes of loading and offline data
        self.precision = resolve_precision(args.precision, args.device.type, args.bf16)
        """What the model's matmuls run in: ``"bf16"`` (autocast) or ``"fp32"``."""
        if isinstance(model, PeftModel) and peft_config is not None:
            raise ValueError("DQNTrainer got a PeftModel and a peft_config: pass the base model with the peft_config, "
                             "or the PeftModel alone to train its adapter")
        set_seed(args.seed)  # the adapter's initialisation draws from torch's RNG
        model, processing_class = self._load_base(model, processing_class, args)
        self.adapter_type = self._adapter_type(args, model, peft_config)
        processing_class = self._set_up_envs(args, model, processing_class)
        network = self._build_network(args, model, peft_config)
        if args.trainable_layers is not None:
            network.freeze_lower_layers(args.trainable_layers)
        network.precision = self.precision
        if self.precision == "bf16" and network.is_peft:
            store_frozen_base_in_bf16(network.model)
        self.pad_token_id = self.protocol.pad_token_id
        signature = self.protocol_signature(args, processing_class)
        if replay_store is not None and replay_store.protocol_signature != signature:
            raise ValueError(f"replay store protocol {replay_store.protocol_signature!r} != {signature!r}")
        self._choose_maps(args)
        if replay_store is None:
            replay_store = self._offline_store(args, signature) or ReplayStore(args.replay_capacity, signature)
        if train_dataset is None and args.dataset_name is not None:
            train_dataset = datasets.load_dataset(args.dataset_name, split=args.dataset_train_split)
        if train_dataset is not None:
            histories = self._histories(args, train_dataset)
            replay_store.capacity = max(replay_store.capacity, len(replay_store) + len(histories))
            replay_store.append(histories)
        self.replay_store = replay_store
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._checkpoint_root: Path | None = None
        self._sampler_state: dict | None = None
        self.lower_states: LowerStateCache | None = None
        """With ``cache_frozen_states``: the replay rows' states below the trainable layers, as they are sampled."""
        if args.device.type == "cpu":
            local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
            usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # macOS
            torch.set_num_threads(args.cpu_threads or max(1, usable // local_processes))
        self.collector = self._collector(args, network)
        self.wall_clock = WallClockLimitCallback()
        own = [TargetNetworkCallback(network), self.wall_clock,  # its clock starts before the replay fills
               EnvInteractionCallback(self.collector, lambda: self.replay_store, self.record_rollout)]
        if self.eval_maps_by_env[args.eval_split]:
            own.append(InRunEvalCallback(self.evaluate_in_context, self.log))
        elif args.eval_strategy != IntervalStrategy.NO:
            raise ValueError(f"eval_strategy={args.eval_strategy.value!r} plays {args.eval_split} maps, and this run "
                             "has none: set eval_maps > 0 on an env with generated maps, or eval_strategy='no'")
        super().__init__(model=network, args=args, processing_class=processing_class,
                         eval_dataset=self.eval_maps_by_env[args.eval_split] or None,  # what evaluate() plays
                         callbacks=[*own, *(callbacks or [])], optimizers=optimizers)
        if args.max_train_minutes is not None and not args.disable_tqdm:
            self.remove_callback(ProgressCallback)
            self.add_callback(MinutesProgressCallback(self.wall_clock))
        deepspeed = getattr(self.accelerator.state, "deepspeed_plugin", None)  # however else it was asked for
        refuse_sharding(parameter_sharding(self.accelerator.distributed_type, getattr(deepspeed, "zero_stage", None)))

    # -- setting up, bad setups refused first ----------------------------------------------

    def _load_base(self, model: str | PreTrainedModel | PeftModel | None, tokenizer, args: DQNConfig):
        """The base causal LM (or the ``PeftModel`` given) and its tokenizer, from a name (``"tiny"``, a hub id, a
        dir) or as given; records the name ``adapter_config.json`` will name."""
        if isinstance(model, str) and (Path(model) / ICRL_CONFIG).is_file() and \
                (Path(model) / "adapter_config.json").is_file():
            model, tokenizer = self._load_saved_agent(model, tokenizer, args)
        loaded = model.get_base_model() if isinstance(model, PeftModel) else model
        self.base_model_name = canonical_model_name(loaded.name_or_path if isinstance(loaded, PreTrainedModel)
                                                    else model or args.model_name_or_path)
        path = resolve_model_path(self.base_model_name)
        init_kwargs = dict(args.model_init_kwargs or {})
        tokenizer_kwargs = {k: init_kwargs[k] for k in ("revision", "trust_remote_code") if k in init_kwargs}
        if model is None or isinstance(model, str):
            dtype = init_kwargs.pop("dtype", args.dtype)
            if args.attn_implementation:
                init_kwargs.setdefault("attn_implementation", args.attn_implementation)
            try:
                model = AutoModelForCausalLM.from_pretrained(
                    path, dtype=dtype if dtype == "auto" or isinstance(dtype, torch.dtype) else getattr(torch, dtype),
                    **init_kwargs)
            except OSError as err:
                raise ValueError(f"base model {self.base_model_name!r} could not be loaded: it is no local directory, "
                                 f"and {'offline, ' if is_offline_mode() else ''}no Hub repo of that name was found "
                                 f"(looked in the Hugging Face cache {HF_HUB_CACHE}): {err}") from None
            model.name_or_path = self.base_model_name  # what adapter_config.json records as the base
        return model, tokenizer or AutoTokenizer.from_pretrained(path, **tokenizer_kwargs)

    @staticmethod
    def _load_saved_agent(path: str, tokenizer, args: DQNConfig) -> tuple[PeftModel, PreTrainedTokenizerBase]:
        """The ``PeftModel`` and tokenizer of an agent saved by ``save_model`` (its adapter trains on from where it
        stopped, with a fresh optimizer); refused in one sentence when it was trained in another protocol."""
        agent = ICRLAgent.from_pretrained(path, precision="fp32")  # the trainer applies args.precision itself
        saved, asked = agent.config, (args.protocol_format, args.q_parameterisation)
        if (saved.protocol_format, saved.q_parameterisation) != asked:
            raise ValueError(f"the agent in {path} was trained with protocol_format={saved.protocol_format!r} and "
                             f"q_parameterisation={saved.q_parameterisation!r}; this config asks for {asked}")
        model = agent.network.model
        beside = Path(path) / saved.base_model  # a base saved in the agent's folder (``base/``)
        model.get_base_model().name_or_path = str(beside) if (beside / "config.json").is_file() else saved.base_model
        return model, tokenizer or agent.tokenizer

    @staticmethod
    def _adapter_type(args: DQNConfig, model: PreTrainedModel | PeftModel, peft_config: PeftConfig | None) -> str:
        """What trains, as ``icrl_config.json`` records it: the peft type of the adapter given (``"lora"``,
        ``"ia3"``, ...), else ``args.adapter_type`` (``"none"``: every weight)."""
        if isinstance(model, PeftModel):
            if model.active_adapter != ONLINE:
                raise ValueError(f"the PeftModel's active adapter is {model.active_adapter!r}: DQNTrainer trains the "
                                 f"adapter named {ONLINE!r} (PeftModel.from_pretrained's default name)")
            peft_config = model.peft_config[ONLINE]
        return str(peft_config.peft_type.value).lower() if peft_config is not None else args.adapter_type

    def _set_up_envs(self, args: DQNConfig, model: PreTrainedModel, tokenizer):
        """Each env's codec and token protocol (the words the tokenizer lacks added to it and the model), the saved
        agent's config; refuses envs that cannot share one Q head and contexts longer than the model's. Returns the
        tokenizer that writes every env."""
        self.env_ids = list(args.train_env_ids or [args.env_id])
        args.env_id = self.env_ids[0]
        if args.map_family is None:  # the env's first family of generated maps ("id" names none for other envs)
            args.map_family = first_family(args.env_id)
        self.env_codecs = {env_id: codec_for(env_id, None if args.train_env_ids else args.observation_format)
                           for env_id in self.env_ids}
        """How each env trained on is written; one env: ``observation_format`` (``None``: the env's own), a
        mixture: each env's own."""
        self.env_codec = self.env_codecs[args.env_id]
        if args.coordinate_frame and not args.train_env_ids and self.env_codec.observation_format != "coords":
            raise ValueError(f"coordinate_frame={args.coordinate_frame} places grids in a frame of coordinates, and "
                             f"{args.env_id} is written as state ids: set coordinate_frame 0")
        check_mixture(self.env_codecs, args.q_parameterisation)
        self.reward_scales = {env_id: env_reward_scale(codec.reward_values, args.reward_normalisation, args.gamma)
                              for env_id, codec in self.env_codecs.items()}
        """Each env's reward multiplier in the TD targets (before ``reward_scale``)."""
        self.goal_rewards = {env_id: env_goal_reward(codec.reward_values, args.reward_normalisation)
                             for env_id, codec in self.env_codecs.items()}
        """What each env's terminal steps add to the TD targets (``"goal"``)."""
        max_positions = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        for name in ("max_context_tokens", "eval_context_tokens"):
            if max_positions is not None and getattr(args, name) > max_positions:
                raise ValueError(f"{name}={getattr(args, name)} exceeds the model's "
                                 f"max_position_embeddings={max_positions}")
        new_words = [word for codec in self.env_codecs.values()
                     for word in words_to_add(tokenizer, args.protocol_format, codec)]
        tokenizer = extend_vocabulary(model, tokenizer, new_words)
        self.agent_config = self._agent_config(args, getattr(model.config, DEQUANTISED_FROM, None))
        self.protocols = {env_id: self.agent_config.for_env(env_id, codec).token_protocol(tokenizer)
                          for env_id, codec in self.env_codecs.items()}
        self.protocol = self.protocols[args.env_id]
        return tokenizer

    def _build_network(self, args: DQNConfig, model: PreTrainedModel | PeftModel,
                       peft_config: PeftConfig | None) -> QNetwork:
        """The Q network: the adapter (and its target) with the Q head on the frozen base, or every weight; an
        adapter the base cannot take is refused in one sentence."""
        model.config.use_cache = False
        if isinstance(model, PeftModel):
            return self._network_of_peft_model(args, model)
        for p in model.parameters():
            p.requires_grad_(False)  # with full fine-tuning, build_q_network makes them trainable again
        if peft_config is None:
            peft_config = make_peft_config(args.adapter_type, args.q_parameterisation, args.lora_r, args.lora_alpha,
                                           args.lora_dropout, args.lora_target_modules)
        else:
            peft_config = copy.deepcopy(peft_config)  # the caller's config stays as given
            if args.q_parameterisation == "value_head" and Q_HEAD not in (peft_config.modules_to_save or []):
                peft_config.modules_to_save = [*(peft_config.modules_to_save or []), Q_HEAD]
        self.peft_config = copy.deepcopy(peft_config)
        """The adapter's config as given, before peft resolves it (``"all-linear"`` to names); ``None``: full
        fine-tuning."""
        try:
            return build_q_network(model, self.env_codec.n_actions, self.protocol.action_token_ids,
                                   args.q_parameterisation, peft_config)
        except ValueError as err:
            if peft_config is None:
                raise
            raise ValueError(f"adapter_type={self.adapter_type!r} cannot be put on {self.base_model_name!r} "
                             f"({type(model).__name__}): {err}; name lora_target_modules, or pick another "
                             "adapter_type") from None

    def _network_of_peft_model(self, args: DQNConfig, model: PeftModel) -> QNetwork:
        """The Q network of a ``PeftModel`` given: its adapter ``"default"`` trains (made trainable if it was loaded
        for inference), a copy of it becomes the target."""
        if args.q_parameterisation == "value_head" and not isinstance(getattr(model.get_base_model(), Q_HEAD, None),
                                                                      ModulesToSaveWrapper):
            raise ValueError(f"the PeftModel has no trainable {Q_HEAD}: call add_q_head(base, "
                             f"{self.env_codec.n_actions}) and put {Q_HEAD!r} in the peft config's modules_to_save "
                             "before get_peft_model, or pass the base model with peft_config=")
        for p in adapter_parameters(model, ONLINE).values():
            p.requires_grad_(True)
        self.peft_config = copy.deepcopy(model.peft_config[ONLINE])
        network = QNetwork(model, args.q_parameterisation, self.protocol.action_token_ids)
        network.add_target_adapter()
        return network

    def _choose_maps(self, args: DQNConfig) -> None:
        """Each env's family of training maps, its validation and held-out maps, and the maps training never draws."""
        self.map_family_names = trained_map_families(self.env_ids, args.map_family)
        self.eval_maps_by_env = {split: {
            env_id: split_maps(split, family, args.eval_maps, args.seed) for env_id in self.env_ids
            if (family := map_family(env_id, self.map_family_names[env_id])) and args.eval_maps} for split in SPLITS}
        """Split (``"validation"``, ``"heldout"``) -> env id -> ``eval_maps`` maps of each env with generated maps:
        the in-run evaluation plays ``args.eval_split``'s, results report the held-out ones."""
        self.heldout_maps = self.eval_maps_by_env["heldout"].get(args.env_id, [])
        self.training_exclusions = {env_id: evaluation_maps(env_id, args.seed) for env_id in self.env_ids}
        """Every map an evaluation with this seed may play, in any family of each env: never a training map."""

    def _offline_store(self, args: DQNConfig, signature: str) -> ReplayStore | None:
        """The replay store seeded with ``offline_data`` (``None`` without): the trials split evenly among the envs,
        the first taking the rest."""
        if args.offline_data is None:
            return None
        store = ReplayStore(capacity=max(args.offline_trials, args.replay_capacity), protocol_signature=signature)
        for share, env_id in enumerate(self.env_ids):
            n_trials = args.offline_trials // len(self.env_ids) + (
                args.offline_trials % len(self.env_ids) if share == 0 else 0)
            store.append(offline_trials(
                self.protocols[env_id], self.env_codecs[env_id], env_id, args.offline_data, n_trials,
                family=self.map_family_names[env_id], seed=args.seed * 1000 + args.process_index + share,
                exclude_maps=self.training_exclusions[env_id], max_trial_tokens=args.max_context_tokens,
                episodes_per_trial=args.episodes_per_trial, map_switches=args.offline_map_switches,
                progress=args.process_index == 0, **self._coordinate_frame(args, env_id)))
        return store

    def _histories(self, args: DQNConfig, dataset: datasets.Dataset) -> list[dict]:
        """The trials of a dataset of histories as replay rows, each checked against its env's protocol (the ids
        parse, one entry per decision, decision positions inside the trial); one sentence when they do not fit."""
        missing = [name for name in (*TRIAL_FIELDS, *([] if len(self.env_ids) == 1 else ["env_id"]))
                   if name not in dataset.column_names]
        if missing:
            raise ValueError(f"train_dataset lacks the columns {missing}: a dataset of histories has the replay "
                             f"store's columns {list(FEATURES)} (trl_icrl.offline_data.save_histories writes them)")
        defaults = {"env_id": self.env_ids[0], "env_map": "", "seed": -1, "policy": "dataset"}
        rows = []
        for index, row in enumerate(dataset.select_columns([c for c in FEATURES if c in dataset.column_names])):
            row = {**defaults, **row}
            protocol = self.protocols.get(row["env_id"])
            if protocol is None:
                raise ValueError(f"train_dataset row {index} is a trial of {row['env_id']}, an env this trainer does "
                                 f"not train on ({self.env_ids})")
            decisions = {len(row[f.name]) for f in TRIAL_SCHEMA if f.batch_pad is not None}
            try:
                protocol.parse(row["input_ids"])
                if len(decisions) != 1 or not all(0 <= p < len(row["input_ids"]) for p in row["decision_positions"]):
                    raise ProtocolError("the per-decision columns differ in length or point outside the trial")
            except ProtocolError as err:
                raise ValueError(f"train_dataset row {index} is no trial of {row['env_id']} in the "
                                 f"{args.protocol_format!r} format over this tokenizer: {err}") from None
            rows.append(row)
        return rows

    def _collector(self, args: DQNConfig, network: QNetwork) -> TrialCollector | EnvMixtureCollector:
        """What plays the training trials: one collector per env, taking turns when there are several."""
        collectors = [TrialCollector(
            RolloutEngine(network, self.protocols[env_id], self.env_codecs[env_id], args.max_context_tokens,
                          self.pad_token_id, when_full="end"),
            env_id, self.map_family_names[env_id], args.trials_per_rollout, args.episodes_per_trial,
            parse_schedules(args.exploration), exclude_maps=self.training_exclusions[env_id], seed=args.seed + share,
            rank=args.process_index, is_slippery=args.is_slippery, **self._coordinate_frame(args, env_id))
            for share, env_id in enumerate(self.env_ids)]
        return collectors[0] if len(collectors) == 1 else EnvMixtureCollector(collectors)

    def _coordinate_frame(self, args: DQNConfig, env_id: str) -> dict:
        """``make_env``'s coordinate-frame settings for ``env_id``: none for an env written without coordinates."""
        if self.env_codecs[env_id].observation_format != "coords":
            return {}
        return {"coordinate_frame": args.coordinate_frame, "coordinate_frame_share": args.coordinate_frame_share}

    @property
    def q_network(self) -> QNetwork:
        """The unwrapped network (whatever DDP/FSDP wrapping ``self.model_wrapped`` has)."""
        return self.model

    def protocol_signature(self, args: DQNConfig, tokenizer) -> str:
        """Which envs, formats and vocabulary a replay store's token ids belong to."""
        vocabulary = f"{type(tokenizer).__name__}:{len(tokenizer)}"
        envs = "+".join(self.env_ids)
        observations = args.observation_format or "+".join(c.observation_format for c in self.env_codecs.values())
        return f"{envs}|{args.protocol_format}|{observations}|{vocabulary}"

    # -- data ------------------------------------------------------------------------------

    def get_train_dataloader(self) -> DataLoader:
        """Each process samples its own replay store; batches are never split across processes. With
        ``cache_frozen_states``, a fresh cache of the states below the trainable layers (the store may have been
        loaded from a checkpoint since)."""
        if self.args.cache_frozen_states:
            self.lower_states = LowerStateCache(self.q_network.forward_lower, self.pad_token_id,
                                                torch.bfloat16 if self.precision == "bf16" else torch.float32)
        self.replay_batches = ReplayBatches(self.replay_store, self.args.per_device_train_batch_size,
                                            self.pad_token_id, seed=self.args.seed * 1000 + self.args.process_index,
                                            recency=self.args.replay_recency, reward_scales=self.reward_scales,
                                            reward_clip=REWARD_CLIPS[self.args.reward_normalisation],
                                            goal_rewards=self.goal_rewards, lower_states=self.lower_states)
        if self._sampler_state is not None:
            self.replay_batches.rng.bit_generator.state = self._sampler_state
        return DataLoader(self.replay_batches, batch_size=None)

    # -- learning rate ---------------------------------------------------------------------

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """``lr_scheduler_type``'s schedule, times the wall clock's decay over the budget's last
        ``lr_decay_minutes``."""
        created = self.lr_scheduler is None
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if self.args.lr_decay_minutes and created:
            if not hasattr(scheduler, "lr_lambdas"):
                raise ValueError(f"lr_decay_minutes needs a LambdaLR schedule, not {self.args.lr_scheduler_type!r}")
            clock = self.wall_clock
            scheduler.lr_lambdas = [lambda step, f=f: f(step) * clock.lr_factor for f in scheduler.lr_lambdas]
        return scheduler

    # -- loss ------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args, mask = self.args, inputs["decision_mask"]
        dones, next_positions = inputs["dones"], inputs["next_positions"]
        if args.bootstrap_across_episodes:
            following = torch.roll(inputs["decision_positions"], -1, dims=1)
            has_next = torch.roll(mask, -1, dims=1)
            has_next[:, -1] = False
            cross = (dones == TERMINATED) & has_next
            next_positions = torch.where(cross, following, next_positions)
            dones = torch.where(cross, torch.full_like(dones, CONTINUE), dones)
        n = mask.shape[1]
        positions = torch.cat([inputs["decision_positions"], next_positions.clamp(min=0)], dim=1)
        lower = inputs.get("lower_states")  # cache_frozen_states: only the trainable top layers run
        q_all, _ = model(inputs["input_ids"], positions, lower_states=lower)
        q_taken = q_all[:, :n].gather(-1, inputs["actions"].unsqueeze(-1)).squeeze(-1)
        with torch.no_grad(), self.q_network.using_adapter(TARGET):
            next_q_target, _ = self.q_network(inputs["input_ids"], next_positions.clamp(min=0), lower_states=lower)
        targets = td_targets(inputs["rewards"] * args.reward_scale, dones, mask, q_all[:, n:].detach(),
                             next_q_target, args.gamma, args.n_step, args.double_dqn)
        loss = self.td_loss(q_taken[mask], targets[mask])
        if not torch.isfinite(loss) or not torch.isfinite(q_all).all():
            raise FloatingPointError(
                f"non-finite TD loss or Q-values at step {self.state.global_step} (loss={loss.item()}): "
                f"lower learning_rate (now {args.learning_rate}) or reward_scale (now {args.reward_scale}), "
                f"or keep max_grad_norm set (now {args.max_grad_norm})")
        mode = "train" if model.training else "eval"
        with torch.no_grad():
            q_valid = q_taken[mask]
            for name, value in (("td_loss", loss), ("q_mean", q_valid.mean()), ("q_max", q_valid.max()),
                                ("target_mean", targets[mask].mean())):
                self._metrics[f"{mode}/{name}" if mode == "eval" else name].append(value.item())
        return (loss, q_all) if return_outputs else loss

    def td_loss(self, q: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.args.loss_type == "huber":
            return F.smooth_l1_loss(q, targets)
        if self.args.loss_type == "mse":
            return F.mse_loss(q, targets)
        # the paper's normalised MSE, ((Q - y) / mean(y))^2, scaled by mean |y| so negative rewards (cliff walking)
        # keep the loss on the same scale; for Frozen Lake's rewards (>= 0) the two are the same
        return (((q - targets) / targets.abs().mean().clamp(min=1e-6)) ** 2).mean()

    # -- logging ---------------------------------------------------------------------------

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the DQN metrics, averaged over the steps since the last log and over processes."""
        metrics = {name: float(np.mean(values)) for name, values in self._metrics.items() if values}
        if self.args.world_size > 1 and metrics:
            names = sorted(metrics)
            values = torch.tensor([metrics[n] for n in names], device=self.args.device)
            metrics = dict(zip(names, self.accelerator.reduce(values, reduction="mean").tolist()))
        if "loss" not in logs:  # an eval log: keep only eval metrics
            metrics = {k: v for k, v in metrics.items() if k.startswith("eval/")}
        logs = {**logs, **metrics}
        for name in metrics:
            self._metrics[name].clear()
        super().log(logs, start_time)

    # -- saving and resuming ---------------------------------------------------------------

    @property
    def base_is_local(self) -> bool:
        """True when the base has no name that resolves elsewhere (the random tiny model or a local dir): it is saved
        beside the adapter. The embedded bases (``SHIPPED_BASES``) ship with the package."""
        name = str(self.base_model_name)
        return name in (RANDOM_TINY_NAME, TINY_MODEL_NAME) or (name not in SHIPPED_BASES and Path(name).is_dir())

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """The fully fine-tuned model (Q head inside), or the adapter and, if the base has no hub id, the base."""
        output_dir = Path(output_dir or self.args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        if self.q_network.is_peft:  # embeddings never train: peft need not look the base up to decide
            self.q_network.model.save_pretrained(output_dir, save_embedding_layers=False)
        else:
            self.q_network.model.save_pretrained(output_dir)
        if self.q_network.is_peft and self.base_is_local and not (output_dir / BASE_DIR / "config.json").is_file():
            base = Path(resolve_model_path(self.base_model_name))
            skipped = shutil.ignore_patterns("tokenizer*", "special_tokens*", f"{PREFIX_CHECKPOINT_DIR}-*")
            shutil.copytree(base, output_dir / BASE_DIR, dirs_exist_ok=True, ignore=skipped)
        self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, output_dir / "training_args.bin")
        self.agent_config.save(output_dir)
        self.create_model_card(output_dir=output_dir)

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None,
                          tags: str | list[str] | None = None, output_dir: str | os.PathLike | None = None) -> None:
        """Write README.md (the model card) into ``output_dir`` (default ``args.output_dir``), from the template in
        ``trl_icrl/model_cards/``: ``model_name`` defaults to the repo's or the folder's name, ``dataset_name`` to
        ``args.dataset_name``, ``tags`` join ``_tag_names``."""
        training_args = self.args.to_dict()
        if isinstance(self.peft_config, LoraConfig):  # the adapter trained, however it was given
            modules = self.peft_config.target_modules
            training_args.update(lora_r=self.peft_config.r, lora_alpha=self.peft_config.lora_alpha,
                                 lora_rslora=self.peft_config.use_rslora,
                                 lora_target_modules=None if modules in (None, "all-linear") else sorted(modules))
        if not any(self._coordinate_frame(self.args, env_id) for env_id in self.env_ids):
            training_args["coordinate_frame"] = 0  # no env written in coordinates: no frame to place maps in
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        write_model_card(output_dir or self.args.output_dir, self.agent_config, training_args,
                         self.state.global_step, self.args.hub_model_id, tags=[*self._tag_names, *tags],
                         model_name=model_name, dataset_name=dataset_name)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save to ``output_dir``; never pushes (the Trainer's does when ``push_to_hub`` is set): pushing is one
        explicit ``push_to_hub()``, once the run's evaluation and plots are in the folder."""
        super().save_model(output_dir, _internal_call=True)

    def push_to_hub(self, commit_message: str = "End of training", blocking: bool = True, token: str | None = None,
                    revision: str | None = None, **kwargs) -> str:
        """Ship the adapter, Q head, tokenizer, card, plots and evaluation JSON (never the target adapter or
        the replay store) to ``hub_model_id`` (default: the repo the Trainer made, named after the output dir),
        the card's usage snippet naming that repo; fails with one clear sentence when offline or without a token."""
        repo_id = self.args.hub_model_id or getattr(self, "hub_model_id", None) or Path(self.args.output_dir).name
        self.args.hub_model_id = repo_id  # the card's usage snippet names it
        self.save_model(self.args.output_dir)
        if not self.is_world_process_zero():
            return ""
        return push_folder_to_hub(self.args.output_dir, repo_id, token=token or self.args.hub_token,
                                  private=self.args.hub_private_repo, commit_message=commit_message)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Nothing: ``Trainer`` would upload ``output_dir`` (and, by ``hub_strategy``, the checkpoint: optimizer, RNG
        state, target adapter, replay store) at every save; the agent is pushed once, by ``push_to_hub``."""

    def _agent_config(self, a: DQNConfig, dequantised_from: str | None) -> AgentConfig:
        """Everything needed to act with the saved weights besides them (``icrl_config.json``)."""
        base = BASE_DIR if self.adapter_type != "none" and self.base_is_local else str(self.base_model_name)
        codec = self.env_codec
        return AgentConfig(
            base_model=base, q_parameterisation=a.q_parameterisation, adapter_type=self.adapter_type, env_id=a.env_id,
            map_family=a.map_family, is_slippery=a.is_slippery, protocol_format=a.protocol_format,
            observation_format=codec.observation_format, action_words=codec.action_words,
            reward_values=codec.reward_values, n_actions=codec.n_actions, n_observations=codec.n_observations,
            episodes_per_trial=a.episodes_per_trial, max_context_tokens=a.eval_context_tokens,
            training_context_tokens=a.max_context_tokens, gamma=a.gamma, reward_scale=a.reward_scale,
            base_dequantised_from=dequantised_from, trained_env_ids=tuple(a.train_env_ids or ()),
            precision=self.precision)

    def _get_output_dir(self, trial) -> str:
        return str(self._checkpoint_root) if self._checkpoint_root else super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Write the whole checkpoint aside (adapters, optimizer, RNG, replay store, collector), then rename it
        into place: a kill during a save never leaves a ``checkpoint-N`` that loads wrong."""
        run_dir = Path(self._get_output_dir(trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = run_dir / STAGING_DIR
        if self.args.should_save:
            shutil.rmtree(staging / name, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self._checkpoint_root = staging
        try:
            super()._save_checkpoint(model, trial)
            if not self.q_network.is_peft and self.args.should_save:
                self.q_network.target_model.save_pretrained(staging / name / TARGET)
            self.replay_store.save_to_disk(staging / name / self._rank_name(REPLAY_DIR))
            state = {"collector": self.collector.state_dict(), "sampler": self.replay_batches.rng.bit_generator.state}
            (staging / name / self._rank_name(DQN_STATE)).write_text(json.dumps(state))
        finally:
            self._checkpoint_root = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            shutil.rmtree(run_dir / name, ignore_errors=True)
            os.replace(staging / name, run_dir / name)
            rotate_checkpoints(output_dir=str(run_dir), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=False)
        self.accelerator.wait_for_everyone()

    def _rank_name(self, name: str) -> str:
        return name if self.args.world_size == 1 else f"{name}_rank{self.args.process_index}"

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs) -> TrainOutput:
        """``Trainer.train``; resuming from a checkpoint that already reached ``max_steps`` loads it (weights,
        replay store, state) and trains no further step, where ``Trainer`` would train one more."""
        checkpoint = get_last_checkpoint(self.args.output_dir) if resume_from_checkpoint is True \
            else resume_from_checkpoint
        if checkpoint and self.args.max_steps > 0:
            state = TrainerState.load_from_json(str(Path(checkpoint) / TRAINER_STATE_NAME))
            if state.global_step >= self.args.max_steps:
                self._load_from_checkpoint(checkpoint)
                self.state = state
                return TrainOutput(state.global_step, 0.0, {})
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        checkpoint, network = Path(resume_from_checkpoint), self.q_network
        if network.is_peft:
            for adapter, sub in ((ONLINE, ""), (TARGET, TARGET)):
                state = load_file(checkpoint / sub / "adapter_model.safetensors")
                set_peft_model_state_dict(network.model, state, adapter_name=adapter)
            network.model.set_adapter(ONLINE)
            network.refreeze()
        else:  # tied weights are saved once: the other name keeps pointing at the loaded tensor
            network.model.load_state_dict(load_file(checkpoint / FULL_WEIGHTS), strict=False)
            network.target_model.load_state_dict(load_file(checkpoint / TARGET / FULL_WEIGHTS), strict=False)
        self.replay_store = ReplayStore.load_from_disk(checkpoint / self._rank_name(REPLAY_DIR),
                                                       self.replay_store.protocol_signature)
        state = json.loads((checkpoint / self._rank_name(DQN_STATE)).read_text())
        self.collector.load_state_dict(state["collector"])
        self._sampler_state = state["sampler"]

    def evaluate(self, eval_dataset=None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """The in-context evaluation on ``args.eval_split``'s maps (``evaluate_in_context``; ``eval_strategy`` runs it
        while training), its scalars logged and returned as ``{metric_key_prefix}_{name}``: ``eval_final10_success``,
        ``eval_mean_success``, ``eval_episodes_to_first_success``, ... (several envs: also
        ``eval_final10_success/{env_id}``). Those maps are the evaluation data: ``eval_dataset`` is unused."""
        if not self.eval_maps_by_env[self.args.eval_split]:
            raise ValueError(f"evaluate() plays {self.args.eval_split} maps, and this run has none: set eval_maps > 0 "
                             "on an env with generated maps")
        start = time.time()
        summary = self.evaluate_in_context()
        metrics = {f"{metric_key_prefix}_{name}": float(value) for name, value in summary.items()
                   if isinstance(value, int | float)}
        metrics.update({f"{metric_key_prefix}_final10_success/{env_id}": value
                        for env_id, value in summary.get("final10_by_env", {}).items()})
        metrics[f"{metric_key_prefix}_runtime"] = time.time() - start
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def evaluate_in_context(self, use_adapter: bool = True, split: str | None = None) -> dict:
        """The short evaluation: ``eval_maps`` maps of ``split`` (``"validation"`` or ``"heldout"``; ``None``:
        ``args.eval_split``), ``eval_episodes`` in one context each, the (first) training
        exploration schedule; a context ends when ``eval_context_tokens`` are full, and the episodes it never
        reached count as failures. Returns ``summarize``'s dict of the first env with generated maps, and, training
        on several envs, ``final10_by_env`` (env id -> final-10 success)."""
        from ..evaluation import evaluate_model, summarize  # not at import: ``import trl_icrl`` stays light

        args, summaries = self.args, {}
        schedule = parse_schedules(args.exploration)[0]
        for env_id, maps in self.eval_maps_by_env[split or args.eval_split].items():
            engine = RolloutEngine(self.q_network, self.protocols[env_id], self.env_codecs[env_id],
                                   args.eval_context_tokens, self.pad_token_id, when_full="end")
            result = evaluate_model(engine, maps, args.eval_episodes, schedule, seed=args.seed,
                                    use_adapter=use_adapter, is_slippery=args.is_slippery, env_id=env_id)
            result.successes, result.returns = np.nan_to_num(result.successes), np.nan_to_num(result.returns)
            summaries[env_id] = summarize(result)
        summary = next(iter(summaries.values()))
        if len(self.env_ids) > 1:
            summary = {**summary, "final10_by_env": {e: s["final10_success"] for e, s in summaries.items()}}
        return summary

    def record_rollout(self, result, replay_size: int) -> None:
        """Add one collection's statistics to the metrics logged at the next ``log``."""
        self._metrics["episode_return"].append(float(np.nanmean(result.returns)))
        self._metrics["success_rate"].append(float(np.nanmean(result.successes)))
        for first, last in ((0, 9), (20, 29)):  # the paper's first and final ten episodes of a context
            episodes = result.successes[:, first:last + 1]
            if np.isfinite(episodes).any():
                self._metrics[f"success_episodes_{first}_{last}"].append(float(np.nanmean(episodes)))
        self._metrics["replay_size"].append(float(replay_size))
        self._metrics["env_steps"].append(float(result.env_steps))
        schedule = self.collector.schedule
        played = int(np.isfinite(result.successes).sum(1).max()) if result.successes.size else 1
        greedy = np.mean([schedule.greedy_probability(e) for e in range(max(played, 1))])
        self._metrics["epsilon"].append(float(1.0 - greedy))

