"""Configuration of ``DQNTrainer``."""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass
from types import MappingProxyType

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


def parameter_docs(docstring: str) -> dict[str, str]:
    """Field name -> its entry in a config's docstring (``name (`type`, ...): text``, continued on deeper-indented
    lines), whitespace collapsed."""
    docs, name = {}, None
    for line in docstring.split("Parameters:", 1)[-1].splitlines():
        entry = re.match(r"^ {8}(\w+)(?: \(.*?\))?: (.*)$", line)
        if entry:
            name, text = entry.groups()
            docs[name] = text
        elif name and line.startswith(" " * 12):
            docs[name] += " " + line.strip()
        else:
            name = None
    return docs


def field_help(config_class: type) -> type:
    """Give each field of ``config_class`` its docstring entry as its command-line help (``metadata["help"]``): one
    text for both."""
    docs = parameter_docs(config_class.__doc__)
    for f in dataclasses.fields(config_class):
        if f.name in docs:
            f.metadata = MappingProxyType({**f.metadata, "help": docs[f.name]})
    return config_class


@field_help
@dataclass
class DQNConfig(TrainingArguments):
    r"""
    Configuration class for [`DQNTrainer`]: in-context DQN over multi-episode trials.

    The parameters specific to DQN and those whose defaults differ are listed here (each field's command-line help
    is its entry, `field_help`); for the others see [`~transformers.TrainingArguments`].
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
        lora_r (`int`, defaults to `16`): the LoRA rank (the `lora_*` fields are the command line's route to the
            adapter; `DQNTrainer(..., peft_config=...)` takes any peft config instead).
        lora_alpha (`int`, defaults to `16`): LoRA alpha: the update is scaled by `lora_alpha / r` (with
            `use_rslora`, `lora_alpha / sqrt(r)`).
        lora_dropout (`float`, defaults to `0.0`): LoRA dropout.
        lora_target_modules (`list[str]` or `None`): the modules to adapt; `None`: every linear layer (LoRA) or
            peft's defaults (IA3).
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
            `"auto"`).
        torch_dtype (`str` or `None`): deprecated alias of `dtype`.
        attn_implementation (`str` or `None`): the attention kernel, e.g. `"sdpa"` or `"flash_attention_2"`;
            `None`: the model's default.
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

        > Parameters whose defaults differ from `TrainingArguments`

        learning_rate (`float`, defaults to `5e-4`): AdamW learning rate.
        lr_scheduler_type (`str`, defaults to `"constant_with_warmup"`): the learning-rate schedule.
        warmup_steps (`float`, defaults to `10`): warm-up steps.
        per_device_train_batch_size (`int`, defaults to `8`): trials per device per micro-batch.
        max_steps (`int`, defaults to `100000`): optimizer steps (`max_train_minutes` may stop sooner).
        logging_steps (`float`, defaults to `10`): log every this many steps.
        save_strategy (`str`, defaults to `"no"`): when to write a checkpoint (`"best"` is refused).
        ignore_data_skip (`bool`, defaults to `True`): replay batches are a stream, not an epoch: a resumed run
            restores the sampler instead of skipping batches.
        remove_unused_columns (`bool`, defaults to `False`): keep every replay column.
        output_dir (`str`, defaults to `"outputs/frozen_lake_dqn"`): where the run writes.
    """

    _VALID_DICT_FIELDS = [*TrainingArguments._VALID_DICT_FIELDS, "model_init_kwargs"]

    # Model
    model_name_or_path: str = "tiny"
    q_parameterisation: str = "value_head"
    adapter_type: str = "lora"
    lora_r: int = 16
    lora_alpha: int = 16
    use_rslora: bool = False
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | None = None
    trainable_layers: int | None = None
    cache_frozen_states: bool = False
    dtype: str = "float32"
    torch_dtype: str | None = None
    model_init_kwargs: dict | str | None = None
    trust_remote_code: bool = False
    precision: str = "auto"
    attn_implementation: str | None = None

    # Environment and protocol
    env_id: str = "trl_icrl/ParametricFrozenLake-v0"
    train_env_ids: list[str] | None = None
    map_family: str | None = None
    is_slippery: bool = False
    protocol_format: str = "step"
    observation_format: str | None = None
    coordinate_frame: int = 0
    coordinate_frame_share: float = 1.0

    # TD update
    gamma: float = 0.9
    reward_scale: float = 1.0
    reward_normalisation: str = "max"
    n_step: int = 3
    loss_type: str = "huber"
    double_dqn: bool = True
    target_update: str = "polyak"
    tau: float = 0.05
    target_update_interval: int = 100
    bootstrap_across_episodes: bool = False

    # Data collection
    online_collection: bool | None = None
    offline_data: str | None = None
    dataset_name: str | None = None
    dataset_config: str | None = None
    dataset_train_split: str = "train"
    offline_trials: int = 4000
    offline_map_switches: float = 0.0
    trials_per_rollout: int = 32
    episodes_per_trial: int = 1000
    exploration: str = "paper_ramp"
    rollout_interval: int = 24
    learning_starts: int = 32
    replay_capacity: int = 4000
    replay_recency: float = 0.0
    max_context_tokens: int = 576
    eval_context_tokens: int = 1280
    eval_episodes: int = 30
    eval_maps: int = 50
    eval_split: str = "validation"
    eval_every_minutes: float | None = None
    cpu_threads: int | None = None
    max_train_minutes: float | None = 7.0
    lr_decay_minutes: float | None = None
    lr_decay_min_ratio: float = 0.1

    # TrainingArguments defaults suited to DQN
    learning_rate: float = 5e-4
    lr_scheduler_type: SchedulerType | str = "constant_with_warmup"
    warmup_steps: float = 10
    per_device_train_batch_size: int = 8
    max_steps: int = 100_000
    logging_steps: float = 10
    save_strategy: SaveStrategy | str = "no"
    ignore_data_skip: bool = True
    remove_unused_columns: bool = False
    output_dir: str | None = "outputs/frozen_lake_dqn"

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

