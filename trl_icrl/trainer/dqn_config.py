"""Configuration of ``DQNTrainer``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments
from transformers.trainer_utils import SaveStrategy, SchedulerType

from ..agent.exploration import parse_schedules
from ..choices import ADAPTER_TYPES, Q_PARAMETERISATIONS, QUALITIES
from ..envs.families import first_family, map_family
from ..envs.splits import RESERVED_VALIDATION_MAPS, SPLITS
from ..precision import PRECISIONS, resolve_precision
from ..protocol import FORMATS
from .rewards import REWARD_NORMALISATIONS

LOSS_TYPES = ("huber", "mse", "normalized_mse")
TARGET_UPDATES = ("polyak", "hard")
DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclass
class DQNConfig(TrainingArguments):
    r"""
    Configuration class for [`DQNTrainer`]: in-context DQN over multi-episode trials.

    Only the parameters specific to DQN are listed here; for the others see [`~transformers.TrainingArguments`].
    The defaults train the embedded tiny model, all its weights, in the one-word-per-step format on a 2-core
    CPU in under 10 minutes; `recipes/configs/` holds the longer tiny run and the Llama-3.1-8B settings.

    Parameters:
        > Parameters that control the model and the Q-values

        model_name_or_path (`str`, defaults to `"tiny"`): a hub id or local dir; `"tiny"` is the embedded base
            `trl-icrl/tiny-llama` (a ~1.5M-parameter Llama pretrained on random play), `"tiny-random"` the same
            architecture randomly initialised.
        q_parameterisation (`str`, defaults to `"value_head"`): `"value_head"` or `"action_logits"` (the paper).
        adapter_type (`str`, defaults to `"lora"`): `"lora"` or `"ia3"` (the paper): a peft adapter (and the Q
            head) train on the frozen base, the target network is a second adapter; `"none"`: full fine-tuning,
            the target network is a frozen copy.
        lora_r, lora_alpha, lora_dropout, lora_target_modules: LoRA settings (16, 16, 0, all linear), the command
            line's route to the adapter; `DQNTrainer(..., peft_config=...)` takes any peft config instead.
        use_rslora (`bool`, defaults to `False`): rank-stabilised LoRA scaling, `lora_alpha / sqrt(r)`; `False`:
            peft's and TRL's `lora_alpha / r`.
        trainable_layers (`int` or `None`): only the top this many decoder layers' trained weights (and the Q head)
            train; the lower layers' and the embeddings' stay as they are (a saved agent's adapter keeps what it
            learned there). `None`: all.
        cache_frozen_states (`bool`, defaults to `False`): with `trainable_layers`, keep the hidden states each
            replay trial reaches below the trainable layers from the first time it is sampled, and run every later
            update and target forward on it through the top layers alone (SmolLM2 in bf16: about 0.6 KB a token).
            Needs a replay store that never changes: offline data or a dataset, `online_collection=False`.
        dtype (`str`, defaults to `"float32"`): dtype of the frozen base (`"float32"`, `"bfloat16"`, `"float16"` or
            `"auto"`); `torch_dtype` is its deprecated alias.
        model_init_kwargs (`dict` or `None`): further keyword arguments of `AutoModelForCausalLM.from_pretrained` when
            the model is given by name (`revision`, `trust_remote_code`, `quantization_config`, ...); `revision` and
            `trust_remote_code` load the tokenizer too.
        trust_remote_code (`bool`, defaults to `False`): run a Hub model's own modelling code (model and tokenizer).
        precision (`str`, defaults to `"auto"`): what the model's matmuls run in, for updates, collection and
            evaluation: `"bf16"` (autocast; master weights, optimizer state, Q head output, TD targets and loss
            stay fp32), `"fp32"`, or `"auto"`: on a CPU bf16 where it has bf16 units (AMX, AVX512-BF16), fp32 elsewhere;
            on a GPU what `bf16` says. The choice made is logged and written to `icrl_config.json` and the card.

        > Parameters that control the environment and the protocol

        env_id (`str`): a registered gymnasium id with Discrete spaces.
        train_env_ids (`list[str]`, *optional*): several envs to train one model on (a general model); each is
            written in its own observation format, collections take turns, the offline data splits evenly and the
            short evaluation plays each env's held-out maps; `env_id` becomes the first.
        map_family (`str`, *optional*): the family of training maps of an env with generated maps (Frozen Lake's
            `"id"` or `"ood"`); by default the env's first (Frozen Lake: `"id"`).
        is_slippery (`bool`, defaults to `False`): slippery Frozen Lake dynamics.
        protocol_format (`str`, defaults to `"step"`): `"step"` (one word per env step), `"compact"`,
            `"llama3"` (the paper's headers) or `"chat"` (a chat model's own template: one message per piece).
        observation_format (`str` or `None`, defaults to `None`): `"coords"` (row, column), `"index"` (state id), or
            `None`: the env's own, coordinates for a grid of at most 10 x 10, state ids otherwise (CliffWalking's
            4 x 12, Taxi); chosen before any work and recorded in `icrl_config.json`.
        coordinate_frame (`int`, defaults to `0`): with `coords`, each training map is placed at a random offset
            inside a frame of this side (`RandomCoordinateOffset`), so that training names every row and column
            below it while its maps keep their shapes (7 covers the 6-7 wide maps of `ood`); 0: no offset.
        coordinate_frame_share (`float`, defaults to `1.0`): the share of training trials so placed; the others
            keep the origin, where evaluation maps lie.

        > Parameters that control the TD update

        gamma (`float`, defaults to `0.9`): discount within an episode.
        reward_scale (`float`, defaults to `1.0`): rewards are multiplied by this (the paper: 30).
        reward_normalisation (`str`, defaults to `"max"`): how each env's rewards enter the TD targets, so that envs
            whose rewards differ in size (a cliff's -100, Frozen Lake's 1) share one Q head: `"max"` divides them by
            the env's largest |reward| (from its codec); `"horizon"` divides them likewise, but by less where needed
            to make the smallest |reward| at least `1 - gamma` (a step cost felt over the discount horizon as much as
            a goal's 1), then clips them to [-1, 1] (a cliff's step costs 0.1, a fall 1); `"sign"` keeps their signs
            (DQN's reward clipping: a cliff's step and fall both cost 1); `"goal"` is `"max"` plus a goal's 1 on
            every terminal step of an env with no positive reward (such an env, the cliff, ends episodes only at its
            goal, so a goal 13 steps away is worth about 0.9^13 more than wandering, as in Frozen Lake); `"none"`
            leaves them.
        n_step (`int`, defaults to `3`): n-step returns (within an episode); 3 lifts the 7-minute main job, the
            results recipe sets 1.
        loss_type (`str`, defaults to `"huber"`): `"huber"`, `"mse"` or `"normalized_mse"` (the paper).
        double_dqn (`bool`, defaults to `True`): the online adapter picks the next action, the target evaluates it.
        target_update (`str`, defaults to `"polyak"`): `"polyak"` (every step, rate `tau`) or `"hard"`.
        tau (`float`, defaults to `0.05`): Polyak rate in (0, 1].
        target_update_interval (`int`, defaults to `100`): optimizer steps between hard copies.
        bootstrap_across_episodes (`bool`, defaults to `False`): RL^2-style: a terminal step bootstraps from
            the next episode's first decision (the paper: no).

        > Parameters that control data collection

        online_collection (`bool` or `None`, defaults to `None`): collect trials while training; `False` learns
            only from the replay store given to the trainer (offline data); `None`: `True` unless `offline_data`
            or `dataset_name` is set or the trainer is given a `train_dataset`.
        offline_data (`str` or `None`): fill the replay store with scripted offline trials of this quality
            (`"low"`, `"mixed"`, `"high"`, `"q_learning"`, `"random"`: see `trl_icrl.offline_data`), made by the
            trainer on training maps, and learn only from them; with `online_collection=True`, the online trials follow
            them into the store (FIFO, `replay_capacity`).
        dataset_name (`str` or `None`): a dataset of histories (the replay store's columns: `trl_icrl.replay_store`,
            as `trl_icrl.offline_data.save_histories` writes them), a Hub id or a local folder loaded with
            `datasets.load_dataset`; its trials seed the replay store, and, unless `online_collection` is `True`,
            are all the model learns from. `DQNTrainer(..., train_dataset=...)` takes a `datasets.Dataset` instead.
        dataset_config (`str` or `None`): the configuration (subset) of `dataset_name` to load (`name=` of
            `datasets.load_dataset`).
        dataset_train_split (`str`, defaults to `"train"`): the split of `dataset_name` to load.
        offline_trials (`int`, defaults to `4000`): how many offline trials (each ends when
            `max_context_tokens` are full or after `episodes_per_trial` episodes, as the online ones do).
        offline_map_switches (`float`, defaults to `0.0`): the share of offline trials whose map switches to a
            second training map after an episode drawn in 10..30, the ramp starting again (the behaviour keeps
            what it learned), as the non-stationary evaluation switches maps mid-context.
        trials_per_rollout (`int`, defaults to `32`): trials played in parallel per collection.
        episodes_per_trial (`int`, defaults to `1000`): most episodes in one training context (a trial also
            ends when `max_context_tokens` are full).
        exploration (`str`, defaults to `"paper_ramp"`): P(greedy) per episode of a trial; several schedules
            joined by `+` (`"paper_ramp+greedy"`) are taken in turn by successive collections.
        rollout_interval (`int`, defaults to `24`): optimizer steps between collections.
        learning_starts (`int`, defaults to `32`): trials collected before the first update.
        replay_capacity (`int`, defaults to `4000`): trials kept (FIFO).
        replay_recency (`float`, defaults to `0.0`): sampling weight of the newest trial is e^this times the oldest.
        max_context_tokens (`int`, defaults to `576`): a training trial ends (its episode truncated) when full.
        eval_context_tokens (`int`, defaults to `1280`): most tokens in one context when the trained agent plays
            (oldest whole episodes are dropped beyond it).
        eval_episodes (`int`, defaults to `30`): episodes in one context in the evaluation (the paper: 30).
        eval_maps (`int`, defaults to `50`): maps of each split in the short evaluation (0: none); on
            `eval_split`'s maps it is what `trainer.evaluate()` and `eval_strategy="steps"` (every `eval_steps`) run,
            logged as `eval_*`; the command's report after training plays the held-out maps.
        eval_split (`str`, defaults to `"validation"`): the maps the evaluation while training plays:
            `"validation"` (choose a learning rate, recipe or checkpoint on them) or `"heldout"` (those results
            report). Both are disjoint from training maps and from each other (`trl_icrl.envs.splits`).
        eval_every_minutes (`float` or `None`): also run it during training, every this many minutes, and log
            `validation_final10` (or `heldout_final10`) with `train_minutes` (the learning curve).
        cpu_threads (`int` or `None`): torch threads per process on a CPU machine; `None` divides the cores among
            the local processes (`accelerate launch` alone would leave one thread).
        max_train_minutes (`float` or `None`, defaults to `7`): stop after this much wall time (fixed-budget
            runs; the main job fits in 10 minutes on a 2-core CPU); `None` runs `max_steps`.
        lr_decay_minutes (`float` or `None`): with `max_train_minutes`, the learning rate (as `lr_scheduler_type`
            sets it) decays over the budget's last this many minutes (all of a shorter budget), cosine, to
            `lr_decay_min_ratio` of itself: a
            run bounded by time, whose step count nobody knows ahead, still ends on a low learning rate.
        lr_decay_min_ratio (`float`, defaults to `0.1`): the learning rate's share left at the end of that decay.
    """

    _VALID_DICT_FIELDS = [*TrainingArguments._VALID_DICT_FIELDS, "model_init_kwargs"]

    # Model
    model_name_or_path: str = field(default="tiny", metadata={"help": "Hub id or local dir; 'tiny' = embedded model."})
    q_parameterisation: str = field(default="value_head", metadata={"help": "'value_head' or 'action_logits'."})
    adapter_type: str = field(default="lora", metadata={"help": "'lora', 'ia3' or 'none' (full fine-tuning)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scaling alpha / r; with use_rslora alpha / "
                                                          "sqrt(r))."})
    use_rslora: bool = field(default=False, metadata={
        "help": "Rank-stabilised LoRA scaling, alpha / sqrt(r); False: peft's and TRL's alpha / r."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(default=None, metadata={
        "help": "Modules to adapt; None = all linear layers (LoRA) or peft's defaults (IA3)."})
    trainable_layers: int | None = field(default=None, metadata={
        "help": "Train only the top this many decoder layers' weights (and the Q head); None = all."})
    cache_frozen_states: bool = field(default=False, metadata={
        "help": "With trainable_layers and a fixed replay store: keep the frozen lower layers' states of each trial."})
    dtype: str = field(default="float32", metadata={"help": "dtype of the base: float32, bfloat16, float16 or auto."})
    torch_dtype: str | None = field(default=None, metadata={"help": "Deprecated alias of dtype."})
    model_init_kwargs: dict | str | None = field(default=None, metadata={
        "help": "Keyword arguments of AutoModelForCausalLM.from_pretrained (a JSON dict on the command line), e.g. "
                "revision, trust_remote_code, quantization_config."})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "Run a Hub model's own modelling code (model and tokenizer)."})
    precision: str = field(default="auto", metadata={
        "help": "'auto' (bf16 autocast on a CPU with bf16 units, AMX or AVX512-BF16, fp32 on other CPUs; on a GPU "
                "as bf16 says), 'bf16' or 'fp32'."})
    attn_implementation: str | None = field(default=None, metadata={
        "help": "Attention kernel, e.g. 'sdpa' or 'flash_attention_2'; None = the model's default."})

    # Environment and protocol
    env_id: str = field(default="trl_icrl/ParametricFrozenLake-v0", metadata={"help": "gymnasium env id."})
    train_env_ids: list[str] | None = field(default=None, metadata={
        "help": "Several envs to train on at once (one Q head: as many actions each), each written its own way; "
                "collections take turns, the offline data splits evenly, env_id becomes the first. None: env_id."})
    map_family: str | None = field(default=None, metadata={
        "help": "Family of training maps of an env with generated maps (Frozen Lake: 'id' or 'ood'); default: the "
                "env's first."})
    is_slippery: bool = field(default=False, metadata={"help": "Slippery Frozen Lake dynamics."})
    protocol_format: str = field(default="step", metadata={"help": "'step', 'compact', 'llama3' or 'chat'."})
    observation_format: str | None = field(default=None, metadata={
        "help": "'coords', 'index', or None: the env's own (coordinates for grids up to 10 x 10, else state ids)."})
    coordinate_frame: int = field(default=0, metadata={
        "help": "Place each training map at a random offset in a frame of this side (coords only), so that "
                "every coordinate below it is seen on maps of training shape; 0: no offset."})
    coordinate_frame_share: float = field(default=1.0, metadata={
        "help": "Share of training trials placed at a random offset; the others keep the origin."})

    # TD update
    gamma: float = field(default=0.9, metadata={"help": "Discount factor in [0, 1]."})
    reward_scale: float = field(default=1.0, metadata={"help": "Reward multiplier (the paper: 30)."})
    reward_normalisation: str = field(default="max", metadata={
        "help": "'max' (each env's rewards over its largest |reward|), 'horizon' (so, with the smallest |reward| "
                "at least 1 - gamma, clipped to [-1, 1]), 'sign' (DQN's reward clipping), 'goal' ('max' plus 1 at the "
                "goal of an env with no positive reward) or 'none'."})
    n_step: int = field(default=3, metadata={"help": "n-step returns within an episode."})
    loss_type: str = field(default="huber", metadata={"help": "'huber', 'mse' or 'normalized_mse'."})
    double_dqn: bool = field(default=True, metadata={"help": "Double DQN targets."})
    target_update: str = field(default="polyak", metadata={"help": "'polyak' or 'hard'."})
    tau: float = field(default=0.05, metadata={"help": "Polyak rate in (0, 1]."})
    target_update_interval: int = field(default=100, metadata={"help": "Steps between hard target copies."})
    bootstrap_across_episodes: bool = field(default=False, metadata={
        "help": "Terminal steps bootstrap from the next episode's first decision (RL^2 style)."})

    # Data collection
    online_collection: bool | None = field(default=None, metadata={
        "help": "Collect trials with the model while training; False trains on a given (offline) replay store; "
                "None: True unless offline_data or dataset_name is set or the trainer is given a train_dataset."})
    offline_data: str | None = field(default=None, metadata={
        "help": "Fill the replay store with scripted offline trials of this quality (low, mixed, high, q_learning "
                "or random); learn only from them unless online_collection is True; 'null' unsets it."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "A dataset of histories (Hub id or local folder, loaded with datasets.load_dataset) to seed the "
                "replay store with; learn only from it unless online_collection is True."})
    dataset_config: str | None = field(default=None, metadata={
        "help": "The configuration (subset) of dataset_name to load."})
    dataset_train_split: str = field(default="train", metadata={"help": "The split of dataset_name to load."})
    offline_trials: int = field(default=4000, metadata={"help": "Offline trials made for offline_data."})
    offline_map_switches: float = field(default=0.0, metadata={
        "help": "Share of offline trials whose map switches to a second training map mid-trial."})
    trials_per_rollout: int = field(default=32, metadata={"help": "Trials played in parallel per collection."})
    episodes_per_trial: int = field(default=1000, metadata={
        "help": "Most episodes in one training context (it also ends when max_context_tokens are full)."})
    exploration: str = field(default="paper_ramp", metadata={
        "help": "'paper_ramp', 'greedy', 'uniform' or a comma list of P(greedy) per episode; several joined by "
                "'+' are taken in turn by successive collections (the short evaluation uses the first)."})
    rollout_interval: int = field(default=24, metadata={"help": "Optimizer steps between collections."})
    learning_starts: int = field(default=32, metadata={"help": "Trials collected before the first update."})
    replay_capacity: int = field(default=4000, metadata={"help": "Trials kept in the replay store."})
    replay_recency: float = field(default=0.0, metadata={"help": "Recency weighting of replay sampling."})
    max_context_tokens: int = field(default=576, metadata={"help": "Most tokens in one training context."})
    eval_context_tokens: int = field(default=1280, metadata={"help": "Most tokens in one context when playing."})
    eval_episodes: int = field(default=30, metadata={"help": "Episodes in one context in the evaluation."})
    eval_maps: int = field(default=50, metadata={"help": "Maps of each split in the short evaluation (0: none)."})
    eval_split: str = field(default="validation", metadata={
        "help": "Maps the evaluation while training plays: 'validation' (to choose on) or 'heldout' (to report)."})
    eval_every_minutes: float | None = field(default=None, metadata={
        "help": "Run the short evaluation during training every this many minutes (None: only after)."})
    cpu_threads: int | None = field(default=None, metadata={
        "help": "Torch threads per process on a CPU machine; None = the cores divided among local processes."})
    max_train_minutes: float | None = field(default=7.0, metadata={
        "help": "Stop training after this many minutes of wall time (None: run max_steps)."})
    lr_decay_minutes: float | None = field(default=None, metadata={
        "help": "With max_train_minutes: decay the learning rate (cosine) over the budget's last this many minutes."})
    lr_decay_min_ratio: float = field(default=0.1, metadata={
        "help": "Share of the learning rate left at the end of lr_decay_minutes' decay."})

    # TrainingArguments defaults suited to DQN
    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate."})
    lr_scheduler_type: SchedulerType | str = field(default="constant_with_warmup", metadata={"help": "Scheduler type."})
    warmup_steps: float = field(default=10, metadata={"help": "Warm-up steps."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Trials per device per micro-batch."})
    max_steps: int = field(default=100_000, metadata={"help": "Optimizer steps (max_train_minutes may stop sooner)."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    save_strategy: SaveStrategy | str = field(default="no", metadata={"help": "Checkpoint strategy."})
    ignore_data_skip: bool = field(default=True, metadata={
        "help": "Replay batches are a stream, not an epoch: a resumed run restores the sampler instead."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep all replay columns."})
    output_dir: str | None = field(default="outputs/frozen_lake_dqn", metadata={"help": "Output directory."})

    def __post_init__(self):
        if not (torch.cuda.is_available() or torch.backends.mps.is_available()):
            self.use_cpu = True  # so that `accelerate launch --multi_gpu` on a CPU machine gives gloo ranks
        super().__post_init__()
        if self.torch_dtype is not None:
            warnings.warn("DQNConfig.torch_dtype is deprecated: use dtype (transformers' and TRL's name)",
                          FutureWarning, stacklevel=2)
            self.dtype, self.torch_dtype = self.torch_dtype, None
        for name in ("offline_data", "map_family", "dataset_name", "observation_format"):  # `null` unsets a value
            if getattr(self, name) in ("null", "none", "None"):
                setattr(self, name, None)
        checks = [
            (0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}"),
            (0.0 < self.tau <= 1.0, f"tau must be in (0, 1], got {self.tau}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (self.episodes_per_trial >= 1, f"episodes_per_trial must be >= 1, got {self.episodes_per_trial}"),
            (self.trials_per_rollout >= 1, f"trials_per_rollout must be >= 1, got {self.trials_per_rollout}"),
            (self.n_step >= 1, f"n_step must be >= 1, got {self.n_step}"),
            (self.rollout_interval >= 1, f"rollout_interval must be >= 1, got {self.rollout_interval}"),
            (self.target_update_interval >= 1,
             f"target_update_interval must be >= 1, got {self.target_update_interval}"),
            (self.replay_capacity >= 1, f"replay_capacity must be >= 1, got {self.replay_capacity}"),
            (self.learning_starts >= 1, f"learning_starts must be >= 1, got {self.learning_starts}"),
            (self.max_context_tokens >= 16, f"max_context_tokens must be >= 16, got {self.max_context_tokens}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}"),
            (self.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {self.dtype!r}"),
            (self.q_parameterisation in Q_PARAMETERISATIONS,
             f"q_parameterisation must be one of {Q_PARAMETERISATIONS}, got {self.q_parameterisation!r}"),
            (self.adapter_type in ADAPTER_TYPES,
             f"adapter_type must be one of {ADAPTER_TYPES}, got {self.adapter_type!r}"),
            (self.reward_normalisation in REWARD_NORMALISATIONS, "reward_normalisation must be one of "
             f"{REWARD_NORMALISATIONS}, got {self.reward_normalisation!r}"),
            (self.loss_type in LOSS_TYPES, f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}"),
            (self.target_update in TARGET_UPDATES,
             f"target_update must be one of {TARGET_UPDATES}, got {self.target_update!r}"),
            (self.protocol_format in (*FORMATS, "chat"),
             f"protocol_format must be one of {(*FORMATS, 'chat')}, got {self.protocol_format!r}"),
            (self.offline_data in (None, *QUALITIES),
             f"offline_data must be one of {tuple(QUALITIES)} or None, got {self.offline_data!r}"),
            (self.offline_trials >= 1, f"offline_trials must be >= 1, got {self.offline_trials}"),
            (0.0 <= self.coordinate_frame_share <= 1.0,
             f"coordinate_frame_share must be in [0, 1], got {self.coordinate_frame_share}"),
            (0.0 <= self.offline_map_switches <= 1.0,
             f"offline_map_switches must be in [0, 1], got {self.offline_map_switches}"),
            (self.eval_episodes >= 1, f"eval_episodes must be >= 1, got {self.eval_episodes}"),
            (self.eval_split in SPLITS, f"eval_split must be one of {SPLITS}, got {self.eval_split!r}"),
            (self.eval_maps <= RESERVED_VALIDATION_MAPS, f"eval_maps must be at most {RESERVED_VALIDATION_MAPS}, "
             f"the maps the validation split holds of a family, got {self.eval_maps}"),
            (self.lr_decay_minutes is None or (self.max_train_minutes is not None and self.lr_decay_minutes > 0),
             f"lr_decay_minutes needs max_train_minutes and must be > 0, got {self.lr_decay_minutes} with "
             f"max_train_minutes={self.max_train_minutes}"),
            (0.0 <= self.lr_decay_min_ratio <= 1.0,
             f"lr_decay_min_ratio must be in [0, 1], got {self.lr_decay_min_ratio}"),
            (self.observation_format in (None, "coords", "index"),
             f"observation_format must be 'coords', 'index' or None, got {self.observation_format!r}"),
            (self.coordinate_frame == 0 or (self.observation_format != "index" and self.coordinate_frame > 0),
             f"coordinate_frame needs coordinates (observation_format 'coords' or None) and must be >= 0, got "
             f"{self.coordinate_frame} with {self.observation_format!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.push_to_hub and self.hub_strategy == "checkpoint":
            raise ValueError("hub_strategy='checkpoint' pushes the last checkpoint to resume from, and DQNTrainer "
                             "pushes only the agent, once, by push_to_hub(): a run resumes from a local checkpoint "
                             "(--resume_from_checkpoint); use hub_strategy 'end'")
        if self.load_best_model_at_end or self.save_strategy == SaveStrategy.BEST:
            raise ValueError("load_best_model_at_end and save_strategy='best' pick a checkpoint by an eval metric, "
                             "which DQNTrainer does not track across checkpoints: choose a checkpoint on validation "
                             "maps with eval_strategy and save_strategy 'steps'")
        if self.train_env_ids:
            self.env_id = self.train_env_ids[0]
        if self.map_family is None:  # the env's first family of generated maps ("id" names none for other envs)
            self.map_family = first_family(self.env_id)
        map_family(self.env_id, self.map_family)  # a family the first env has (none asked of an env without)
        if self.use_cpu:  # bf16 forced on a CPU that cannot run it: refused at parse time, before any work
            resolve_precision(self.precision, "cpu")
        self.online_collection_asked = self.online_collection is not None
        """Whether ``online_collection`` was set (``DQNTrainer(train_dataset=...)`` collects only when it was)."""
        if self.online_collection is None:
            self.online_collection = self.offline_data is None and self.dataset_name is None
        if self.trainable_layers is not None and self.trainable_layers < 1:
            raise ValueError(f"trainable_layers must be >= 1 (or None: all), got {self.trainable_layers}")
        if self.cache_frozen_states and (self.trainable_layers is None or self.online_collection):
            raise ValueError("cache_frozen_states computes the frozen layers' states of a replay store that never "
                             "changes: it needs trainable_layers and learning from offline data or a dataset alone "
                             f"(online_collection=False), got trainable_layers={self.trainable_layers}, "
                             f"online_collection={self.online_collection}")
        parse_schedules(self.exploration)
