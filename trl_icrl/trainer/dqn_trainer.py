"""In-context DQN: one forward over each whole trial gives the TD error of every decision in it."""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftConfig, PeftModel, set_peft_model_state_dict
from peft.utils import ModulesToSaveWrapper
from safetensors.torch import load_file
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from transformers import (
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

from ..agent.config import AgentConfig
from ..agent.exploration import parse_schedules
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
from ..envs import SPLITS
from ..envs.codec import EnvCodec
from ..envs.spec import EnvSpec
from ..hub_cache import DEQUANTISED_FROM
from ..model_card import IN_CONTEXT_PLOT, SHORT_EVAL, push_folder_to_hub, write_model_card
from ..precision import resolve_precision
from ..protocol import CONTINUE, TERMINATED
from ..replay_store import ReplayStore
from ..tiny_model import (
    RANDOM_TINY_NAME,
    SHIPPED_BASES,
    TINY_MODEL_NAME,
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
from .collector import EnvMixtureCollector, TrialCollector
from .dqn_config import DQNConfig
from .env_specs import build_env_specs, env_codecs, protocol_signature
from .model_loading import adapter_type_of, load_base
from .replay_data import ReplayBatches, dataset_histories, offline_store
from .rewards import RewardPath
from .sharding import parameter_sharding, refuse_sharding, requested_sharding

REPLAY_DIR = "replay_store"
BASE_DIR = "base"
"""Where a peft adapter's base is saved when it has no hub id (the embedded tiny model or a local dir)."""
DQN_STATE = "dqn_state.json"
STAGING_DIR = ".staging"


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
            ``datasets.load_dataset(args.dataset_name)`` when that is set); unless ``online_collection=True`` was
            asked for, the model learns from them alone. An ``IterableDataset`` (streamed) is read whole.
        processing_class: the tokenizer; loaded from ``model`` when omitted.
        callbacks: extra ``TrainerCallback``s.
        optimizers: ``(optimizer, lr_scheduler)``, as ``Trainer`` takes them; ``(None, None)`` builds them from
            ``args``.
        peft_config: the adapter to train on the frozen base (any ``peft.PeftConfig``; with a value head, ``q_head``
            is added to its ``modules_to_save``); ``None``: the one ``args.adapter_type`` and ``args.lora_*``
            describe, or full fine-tuning for ``adapter_type="none"``.
        replay_store: an existing store (e.g. offline data); a fresh one otherwise.
        eval_dataset: refused: the evaluation plays ``args.eval_split``'s maps (``evaluate``).
    """

    _tag_names = ["trl", "trl-icrl", "dqn", "in-context-rl", "reinforcement-learning", "deep-reinforcement-learning"]
    """The tags of every model card this trainer writes (before the adapter's and the env's)."""

    def __init__(self, model: str | PreTrainedModel | PeftModel | None = None, args: DQNConfig | None = None,
                 train_dataset: datasets.Dataset | datasets.IterableDataset | None = None,
                 processing_class: PreTrainedTokenizerBase | None = None,
                 callbacks: list[TrainerCallback] | None = None,
                 optimizers: tuple[torch.optim.Optimizer | None, LambdaLR | None] = (None, None),
                 peft_config: PeftConfig | None = None, replay_store: ReplayStore | None = None,
                 eval_dataset: None = None):
        args = args or DQNConfig()
        if eval_dataset is not None:
            raise ValueError("DQNTrainer evaluates by playing maps of args.eval_split in context (eval_maps of them), "
                             "not on a dataset: leave eval_dataset out")
        refuse_sharding(requested_sharding(args))  # before minutes of loading and offline data
        self.precision = resolve_precision(args.precision, args.device.type, args.bf16)
        """What the model's matmuls run in: ``"bf16"`` (autocast) or ``"fp32"``."""
        if isinstance(model, PeftModel) and peft_config is not None:
            raise ValueError("DQNTrainer got a PeftModel and a peft_config: pass the base model with the peft_config, "
                             "or the PeftModel alone to train its adapter")
        set_seed(args.seed)  # the adapter's initialisation draws from torch's RNG
        model, processing_class, self.base_model_name = load_base(model, processing_class, args)
        self.adapter_type = adapter_type_of(args, model, peft_config)
        processing_class = self._set_up_envs(args, model, processing_class)
        network = self._build_network(args, model, peft_config)
        if args.trainable_layers is not None:
            network.freeze_lower_layers(args.trainable_layers)
        network.precision = self.precision
        if self.precision == "bf16" and network.is_peft:
            store_frozen_base_in_bf16(network.model)
        self.pad_token_id = self.env_spec.protocol.pad_token_id
        signature = protocol_signature(args, {e: s.codec for e, s in self.env_specs.items()}, processing_class)
        if replay_store is not None and replay_store.protocol_signature != signature:
            raise ValueError(f"replay store protocol {replay_store.protocol_signature!r} != {signature!r}")
        if replay_store is None:
            replay_store = offline_store(args, self.env_specs, signature) or ReplayStore(args.replay_capacity,
                                                                                         signature)
        if train_dataset is None and args.dataset_name is not None:
            train_dataset = datasets.load_dataset(args.dataset_name, args.dataset_config,
                                                  split=args.dataset_train_split)
        self.collects_online = args.online_collection and (train_dataset is None or args.online_collection_asked)
        """Whether trials are collected while training: ``args.online_collection``, but a ``train_dataset`` given
        here alone is learned from unless ``online_collection=True`` was asked for."""
        if train_dataset is not None:
            histories = dataset_histories(train_dataset, self.env_specs, args.protocol_format)
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
               EnvInteractionCallback(self.collector, lambda: self.replay_store, self.record_rollout,
                                      online=self.collects_online)]
        if self.eval_maps_by_env[args.eval_split]:
            own.append(InRunEvalCallback(self.evaluate_in_context, self.log))
        elif args.eval_strategy != IntervalStrategy.NO:
            raise ValueError(f"eval_strategy={args.eval_strategy.value!r} plays {args.eval_split} maps, and this run "
                             "has none: set eval_maps > 0 on an env with generated maps, or eval_strategy='no'")
        super().__init__(model=network, args=args, processing_class=processing_class,
                         eval_dataset=self.eval_maps_by_env[args.eval_split] or None,  # what evaluate() plays
                         callbacks=[*own, *(callbacks or [])], optimizers=optimizers)
        self.train_dataset = train_dataset  # the histories given (the replay store holds them), as Trainer keeps it
        if args.max_train_minutes is not None and not args.disable_tqdm:
            self.remove_callback(ProgressCallback)
            self.add_callback(MinutesProgressCallback(self.wall_clock))
        deepspeed = getattr(self.accelerator.state, "deepspeed_plugin", None)  # however else it was asked for
        refuse_sharding(parameter_sharding(self.accelerator.distributed_type, getattr(deepspeed, "zero_stage", None)))

    # -- setting up, bad setups refused first ----------------------------------------------

    def _set_up_envs(self, args: DQNConfig, model: PreTrainedModel, tokenizer):
        """Each env's spec (codec, token protocol, maps, reward path) with the words the tokenizer lacks added to it
        and the model, and the saved agent's config; refuses contexts longer than the model's. Returns the tokenizer
        that writes every env."""
        codecs = env_codecs(args)
        max_positions = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        for name in ("max_context_tokens", "eval_context_tokens"):
            if max_positions is not None and getattr(args, name) > max_positions:
                raise ValueError(f"{name}={getattr(args, name)} exceeds the model's "
                                 f"max_position_embeddings={max_positions}")
        new_words = [word for codec in codecs.values() for word in words_to_add(tokenizer, args.protocol_format, codec)]
        tokenizer = extend_vocabulary(model, tokenizer, new_words)
        self.agent_config = self._agent_config(args, codecs[args.env_id], getattr(model.config, DEQUANTISED_FROM, None))
        protocols = {env_id: self.agent_config.for_env(env_id, codec).token_protocol(tokenizer)
                     for env_id, codec in codecs.items()}
        self.env_specs = build_env_specs(args, codecs, protocols)
        """Env id -> its ``EnvSpec`` (the first: ``args.env_id``): everything this run decided about the env."""
        self.reward_path = RewardPath.of_specs(self.env_specs, args.reward_normalisation,
                                               reward_scale=args.reward_scale, gamma=args.gamma, n_step=args.n_step,
                                               double_dqn=args.double_dqn)
        """How each env's logged rewards become TD targets."""
        return tokenizer

    @property
    def env_ids(self) -> list[str]:
        """The envs trained on, the first ``args.env_id``."""
        return list(self.env_specs)

    @property
    def env_spec(self) -> EnvSpec:
        """The first env's spec (``args.env_id``)."""
        return next(iter(self.env_specs.values()))

    @property
    def eval_maps_by_env(self) -> dict[str, dict[str, list]]:
        """Split (``"validation"``, ``"heldout"``) -> env id -> ``eval_maps`` maps of each env with generated maps:
        the in-run evaluation plays ``args.eval_split``'s, results report the held-out ones."""
        return {split: {e: s.eval_maps[split] for e, s in self.env_specs.items() if s.eval_maps[split]}
                for split in SPLITS}

    @property
    def heldout_maps(self) -> list:
        """The first env's held-out maps."""
        return self.env_spec.heldout_maps

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
                                           args.lora_dropout, args.lora_target_modules, args.use_rslora)
        else:
            peft_config = copy.deepcopy(peft_config)  # the caller's config stays as given
            if args.q_parameterisation == "value_head" and Q_HEAD not in (peft_config.modules_to_save or []):
                peft_config.modules_to_save = [*(peft_config.modules_to_save or []), Q_HEAD]
        self.peft_config = copy.deepcopy(peft_config)
        """The adapter's config as given, before peft resolves it (``"all-linear"`` to names); ``None``: full
        fine-tuning."""
        try:
            return build_q_network(model, self.env_spec.codec.n_actions, self.env_spec.protocol.action_token_ids,
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
                             f"{self.env_spec.codec.n_actions}) and put {Q_HEAD!r} in the peft config's "
                             "modules_to_save before get_peft_model, or pass the base model with peft_config=")
        for p in adapter_parameters(model, ONLINE).values():
            p.requires_grad_(True)
        self.peft_config = copy.deepcopy(model.peft_config[ONLINE])
        network = QNetwork(model, args.q_parameterisation, self.env_spec.protocol.action_token_ids)
        network.add_target_adapter()
        return network

    def _collector(self, args: DQNConfig, network: QNetwork) -> TrialCollector | EnvMixtureCollector:
        """What plays the training trials: one collector per env, taking turns when there are several."""
        collectors = [TrialCollector.of_spec(
            RolloutEngine(network, spec.protocol, spec.codec, args.max_context_tokens, self.pad_token_id,
                          when_full="end"),
            spec, args.trials_per_rollout, args.episodes_per_trial, parse_schedules(args.exploration),
            seed=args.seed + share, rank=args.process_index, is_slippery=args.is_slippery)
            for share, spec in enumerate(self.env_specs.values())]
        return collectors[0] if len(collectors) == 1 else EnvMixtureCollector(collectors)

    @property
    def q_network(self) -> QNetwork:
        """The unwrapped network (whatever DDP/FSDP wrapping ``self.model_wrapped`` has)."""
        return self.model

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
                                            recency=self.args.replay_recency, reward_path=self.reward_path,
                                            lower_states=self.lower_states)
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
        env_index = inputs.get("env_index", torch.zeros(len(mask), dtype=torch.long, device=mask.device))
        targets = self.reward_path.targets(inputs["rewards"], dones, mask, env_index, q_all[:, n:].detach(),
                                           next_q_target)
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
        if not any(spec.frame for spec in self.env_specs.values()):
            training_args["coordinate_frame"] = 0  # no env written in coordinates: no frame to place maps in
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        dataset_name = dataset_name or self.args.dataset_name
        repo_id = self.args.hub_model_id or getattr(self, "hub_model_id", None)
        write_model_card(output_dir or self.args.output_dir, self.agent_config, training_args,
                         self.state.global_step, repo_id, tags=[*self._tag_names, *tags],
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
        self.hub_model_id = repo_id  # the card's usage snippet names it (the args stay as given)
        self.save_model(self.args.output_dir)
        if kwargs.get("dataset_name") or kwargs.get("tags"):  # TRL's push_to_hub(dataset_name=...) names it
            self.create_model_card(dataset_name=kwargs.get("dataset_name"), tags=kwargs.get("tags"))
        if not self.is_world_process_zero():
            return ""
        return push_folder_to_hub(self.args.output_dir, repo_id, token=token or self.args.hub_token,
                                  private=self.args.hub_private_repo, commit_message=commit_message)

    def save_run(self) -> dict:
        """Save the agent (``save_model``) and, on the main process, the run's outputs beside it: the replay store
        (``replay_store/``), the training curves (``training_curve.png``), the short evaluation on the held-out maps,
        trained against untrained (``short_eval.json``; ``IN_CONTEXT_PLOT``: success by episode index within a
        context), and the card again, embedding them. ``trl-icrl dqn`` calls it after training; returns the
        ``short_eval.json`` report (empty on other processes)."""
        from ..plotting import plot_icrl_curves, plot_training_curve  # not at import: ``import trl_icrl`` stays light

        self.save_model()
        if not self.is_world_process_zero():
            return {}
        output_dir = Path(self.args.output_dir)
        self.replay_store.save_to_disk(output_dir / REPLAY_DIR)
        plot_training_curve(self.state.log_history, output_dir / "training_curve.png")
        online = self.q_network.weights()
        report = {"log_history": self.state.log_history, "precision": self.precision,
                  "trainable_share": sum(p.numel() for p in online.values() if p.requires_grad)
                  / sum(p.numel() for p in self.q_network.causal_lm.parameters())}
        if self.eval_maps_by_env["heldout"]:
            report["untrained"] = self.evaluate_in_context(use_adapter=False, split="heldout")
            report["trained"] = self.evaluate_in_context(split="heldout")
            plot_icrl_curves({"trained": report["trained"], "untrained (adapter off)": report["untrained"]},
                             output_dir / IN_CONTEXT_PLOT,
                             title=f"{self.args.env_id}: {report['trained']['n_maps']} held-out maps")
        (output_dir / SHORT_EVAL).write_text(json.dumps(report, indent=2))
        self.create_model_card()
        return report

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Nothing: ``Trainer`` would upload ``output_dir`` (and, by ``hub_strategy``, the checkpoint: optimizer, RNG
        state, target adapter, replay store) at every save; the agent is pushed once, by ``push_to_hub``."""

    def _agent_config(self, a: DQNConfig, codec: EnvCodec, dequantised_from: str | None) -> AgentConfig:
        """Everything needed to act with the saved weights besides them (``icrl_config.json``; ``codec``: the first
        env's)."""
        base = BASE_DIR if self.adapter_type != "none" and self.base_is_local else str(self.base_model_name)
        return AgentConfig(
            base_model=base, q_parameterisation=a.q_parameterisation, adapter_type=self.adapter_type, env_id=a.env_id,
            map_family=a.map_family, is_slippery=a.is_slippery, protocol_format=a.protocol_format,
            observation_format=codec.observation_format, action_words=codec.action_words,
            reward_values=codec.reward_values, n_actions=codec.n_actions, n_observations=codec.n_observations,
            episodes_per_trial=a.episodes_per_trial, max_context_tokens=a.max_context_tokens,
            eval_context_tokens=a.eval_context_tokens, gamma=a.gamma, reward_scale=a.reward_scale,
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
            spec = self.env_specs[env_id]
            engine = RolloutEngine(self.q_network, spec.protocol, spec.codec, args.eval_context_tokens,
                                   self.pad_token_id, when_full="end")
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

