"""The embedded default: a ~1M-parameter Llama and a word-level tokenizer over the protocol's words.

Both are saved with ``save_pretrained`` and loaded back through ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained``, the same path a hub id such as ``meta-llama/Llama-3.1-8B-Instruct``
takes, so nothing downstream knows which one it got.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import peft.utils.constants as peft_constants
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from .envs.codec import CODECS, frozen_lake_codec
from .hub_cache import install_in_hub_cache
from .protocol import COMPACT, END, LLAMA3, START, reward_text, step_words

TINY_BASE_NAME = "trl-icrl/tiny-llama"
"""The embedded base: the tiny Llama pretrained on random play (``recipes/pretrain_tiny_base.py``), shipped with
the package; ``"tiny"`` names it too."""
TINY_BASE_DIR = Path(__file__).parent / "models" / "tiny-llama"
GENERAL_BASE_NAME = "trl-icrl/tiny-llama-general"
"""The embedded base pretrained on random play of every env family (Frozen Lake up to 8x8, cliff walking, random
MDPs; ``recipes/configs/tiny_general_base.yaml``), shipped with the package; ``"tiny-general"`` names it too."""
SHIPPED_BASES = {TINY_BASE_NAME: TINY_BASE_DIR,
                 GENERAL_BASE_NAME: Path(__file__).parent / "models" / "tiny-llama-general"}
"""The bases that ship with the package: hub name -> folder."""
BASE_ALIASES = {"tiny": TINY_BASE_NAME, "tiny-general": GENERAL_BASE_NAME}
RANDOM_TINY_NAME = "tiny-random"
"""The same architecture and tokenizer, randomly initialised (seed 0), built on first use under ``TRL_ICRL_HOME``."""
TINY_MODEL_NAME = "trl-icrl-tiny-llama"
DEFAULT_TINY_MODEL_DIR = Path(os.environ.get("TRL_ICRL_HOME", Path.home() / ".cache" / "trl_icrl")) / TINY_MODEL_NAME
SPECIAL_TOKENS = {"pad_token": "<pad>", "unk_token": "<unk>"}


class ICRLLlamaConfig(LlamaConfig):
    """A Llama whose model carries a Q head of ``n_actions`` outputs (``trl_icrl_llama``, the embedded base)."""

    model_type = "trl_icrl_llama"

    def __init__(self, n_actions: int = 4, **kwargs):
        self.n_actions = n_actions
        super().__init__(**kwargs)


class ICRLLlamaForCausalLM(LlamaForCausalLM):
    """``LlamaForCausalLM`` plus ``q_head = Linear(hidden, n_actions)``, so that an adapter saved with the Q head in
    peft's ``modules_to_save`` loads whole with plain ``PeftModel.from_pretrained`` on this base. The causal-LM
    forward does not use the head; ``QNetwork`` reads it."""

    config_class = ICRLLlamaConfig

    def __init__(self, config: ICRLLlamaConfig):
        super().__init__(config)
        self.q_head = nn.Linear(config.hidden_size, config.n_actions)
        self.post_init()


AutoConfig.register(ICRLLlamaConfig.model_type, ICRLLlamaConfig)
AutoModelForCausalLM.register(ICRLLlamaConfig, ICRLLlamaForCausalLM)
for _name in dir(peft_constants):  # peft's default target modules (IA3's among them) are Llama's
    _mapping = getattr(peft_constants, _name)
    if _name.endswith("_MAPPING") and isinstance(_mapping, dict) and "llama" in _mapping:
        _mapping.setdefault(ICRLLlamaConfig.model_type, _mapping["llama"])


def protocol_vocabulary() -> list[str]:
    """The words of the compact format for every known env (both observation formats), then the ``step``
    format's words of Frozen Lake (both observation formats), in a fixed order."""
    words: list[str] = [*SPECIAL_TOKENS.values(), *COMPACT.marker_words(), START, END]
    for make in CODECS.values():
        for fmt in ("index", "coords"):
            codec = make(fmt)
            words += codec.action_words
            words += [reward_text(r) for r in codec.reward_values]
            words += [w for text in codec.observation_texts() for w in text.split()]
    for fmt in ("coords", "index"):
        codec = frozen_lake_codec(fmt)
        words += step_words(codec.action_words, codec.observation_texts(), codec.reward_values)
    return list(dict.fromkeys(words))


def factorised_step_embeddings(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast) -> None:
    """Initialise each ``step``-format word's embedding as the sum of its parts' embeddings, so that
    ``r2_c3:right`` starts close to ``r2`` + ``c3`` + ``right`` and moves on one tile share what they learn."""
    vocab = tokenizer.get_vocab()
    embeddings = model.get_input_embeddings().weight
    with torch.no_grad():
        for word, index in vocab.items():
            if ":" not in word:
                continue
            parts = [part for field in word.split(":") for part in field.split("_")]
            ids = [vocab[part] for part in parts if part in vocab]
            if len(ids) == len(parts):
                embeddings[index] = embeddings[ids].sum(0)


def build_tokenizer(words: Iterable[str] | None = None,
                    special_tokens: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: whitespace-separated words, one id each, ``<unk>`` for anything else.

    ``special_tokens`` are split out wherever they occur, even inside a word (e.g. the Llama-3 header
    tokens of the ``llama3`` format: ``llama3_tokenizer()``).
    """
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words or protocol_vocabulary()))}
    for token in SPECIAL_TOKENS.values():
        vocab.setdefault(token, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKENS)
    tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    return tokenizer


def llama3_tokenizer() -> PreTrainedTokenizerFast:
    """The word-level tokenizer extended with the Llama-3 header tokens, so the paper's ``llama3`` format
    runs on a tiny model (``build_tiny_model(tokenizer=llama3_tokenizer())``)."""
    specials = [t for t in re.findall(r"<\|[a-z_]+\|>", " ".join(LLAMA3.marker_words()))]
    headers = ["observation", "action", "reward", "edit"]
    return build_tokenizer([*protocol_vocabulary(), *headers], special_tokens=dict.fromkeys(specials))


def tiny_llama_config(vocab_size: int, pad_token_id: int, **overrides) -> ICRLLlamaConfig:
    """hidden 128, 4 layers, 4 heads, MLP 512, RoPE, 8192 positions, a 4-action Q head: about 1.5M parameters."""
    kwargs = dict(vocab_size=vocab_size, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=8192,
                  rope_theta=10000.0, tie_word_embeddings=True, pad_token_id=pad_token_id,
                  bos_token_id=None, eos_token_id=None, attn_implementation="sdpa")
    kwargs.update(overrides)
    return ICRLLlamaConfig(**kwargs)


def init_tiny_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **config_overrides) -> ICRLLlamaForCausalLM:
    """The tiny Llama over ``tokenizer``, randomly initialised (seeded), ``step`` words factorised."""
    config = tiny_llama_config(len(tokenizer), tokenizer.pad_token_id, **config_overrides)
    torch.manual_seed(seed)
    model = ICRLLlamaForCausalLM(config)
    factorised_step_embeddings(model, tokenizer)
    return model


def build_tiny_model(output_dir: str | os.PathLike = DEFAULT_TINY_MODEL_DIR, seed: int = 0,
                     words: Iterable[str] | None = None, tokenizer: PreTrainedTokenizerFast | None = None,
                     **config_overrides) -> Path:
    """Build, initialise (seeded) and save the tiny Llama and its tokenizer; returns the directory."""
    output_dir = Path(output_dir)
    tokenizer = tokenizer or build_tokenizer(words)
    init_tiny_model(tokenizer, seed, **config_overrides).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def canonical_model_name(name_or_path: str | None) -> str:
    """The name a base is recorded under: ``TINY_BASE_NAME`` for ``None`` and ``""``, a shipped base's hub name for
    its alias (``"tiny"``, ``"tiny-general"``), anything else as it is."""
    return TINY_BASE_NAME if name_or_path in (None, "") else BASE_ALIASES.get(str(name_or_path), str(name_or_path))


def resolve_model_path(name_or_path: str | None) -> str:
    """A shipped base (``None``, an alias of ``BASE_ALIASES`` or a name of ``SHIPPED_BASES``) -> its folder, installed
    in the Hugging Face cache under its name on first use (``install_tiny_base``); ``"tiny-random"`` -> the random
    initialisation (built on first use); anything else as it is."""
    name = canonical_model_name(name_or_path)
    if name in SHIPPED_BASES:
        folder = SHIPPED_BASES[name]
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"the embedded base {name} is not at {folder}: reinstall trl_icrl or make it with "
                                    f"recipes/pretrain_tiny_base.py --output_dir {folder}")
        install_tiny_base(name=name)  # so that peft's loaders, reading the name in adapter_config.json, find it too
        return str(folder)
    if name in (RANDOM_TINY_NAME, TINY_MODEL_NAME):
        if not (DEFAULT_TINY_MODEL_DIR / "config.json").exists():
            build_tiny_model(DEFAULT_TINY_MODEL_DIR)
        return str(DEFAULT_TINY_MODEL_DIR)
    return name


def tiny_base_revision(name: str = TINY_BASE_NAME) -> str:
    """A revision id of a shipped base: the hash of its config and weights' sizes and pretraining record."""
    folder, digest = SHIPPED_BASES[name], hashlib.sha1()
    for file in ("config.json", "pretraining.json"):
        digest.update((folder / file).read_bytes())
    digest.update(str((folder / "model.safetensors").stat().st_size).encode())
    return digest.hexdigest()


def install_tiny_base(cache_dir: str | os.PathLike | None = None, name: str = TINY_BASE_NAME) -> Path | None:
    """Put a shipped base (``TINY_BASE_NAME`` by default) into the Hugging Face cache under its name, so that
    ``AutoModelForCausalLM.from_pretrained("trl-icrl/tiny-llama")`` (and peft's loaders, which read that name in
    ``adapter_config.json``) find it offline. The library calls it the first time it loads that name; importing
    ``trl_icrl`` writes nothing. Returns the snapshot dir, or ``None`` when the cache is read-only."""
    folder = SHIPPED_BASES[name]
    if not (folder / "config.json").is_file():
        return None
    return install_in_hub_cache(name, tiny_base_revision(name),
                                lambda target: shutil.copytree(folder, target, dirs_exist_ok=True), cache_dir)
