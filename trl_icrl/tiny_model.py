"""The embedded default: a ~1M-parameter Llama and a word-level tokenizer over the protocol's words.

Both are saved with ``save_pretrained`` and loaded back through ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained``, the same path a hub id such as ``meta-llama/Llama-3.1-8B-Instruct``
takes, so nothing downstream knows which one it got.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from .env_codec import CODECS, frozen_lake_codec
from .protocol import COMPACT, END, LLAMA3, START, reward_text, step_words

TINY_MODEL_NAME = "trl-icrl-tiny-llama"
DEFAULT_TINY_MODEL_DIR = Path(os.environ.get("TRL_ICRL_HOME", Path.home() / ".cache" / "trl_icrl")) / TINY_MODEL_NAME
SPECIAL_TOKENS = {"pad_token": "<pad>", "unk_token": "<unk>"}


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


def tiny_llama_config(vocab_size: int, pad_token_id: int, **overrides) -> LlamaConfig:
    """hidden 128, 4 layers, 4 heads, MLP 512, RoPE, 8192 positions: about 1M parameters."""
    kwargs = dict(vocab_size=vocab_size, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=8192,
                  rope_theta=10000.0, tie_word_embeddings=True, pad_token_id=pad_token_id,
                  bos_token_id=None, eos_token_id=None, attn_implementation="sdpa")
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def build_tiny_model(output_dir: str | os.PathLike = DEFAULT_TINY_MODEL_DIR, seed: int = 0,
                     words: Iterable[str] | None = None, tokenizer: PreTrainedTokenizerFast | None = None,
                     **config_overrides) -> Path:
    """Build, initialise (seeded) and save the tiny Llama and its tokenizer; returns the directory."""
    output_dir = Path(output_dir)
    tokenizer = tokenizer or build_tokenizer(words)
    config = tiny_llama_config(len(tokenizer), tokenizer.pad_token_id, **config_overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    factorised_step_embeddings(model, tokenizer)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def resolve_model_path(name_or_path: str | None) -> str:
    """``None``, ``"tiny"`` or the default dir -> the embedded tiny model (built on first use)."""
    if name_or_path in (None, "", "tiny", TINY_MODEL_NAME):
        if not (DEFAULT_TINY_MODEL_DIR / "config.json").exists():
            build_tiny_model(DEFAULT_TINY_MODEL_DIR)
        return str(DEFAULT_TINY_MODEL_DIR)
    return name_or_path
