"""An open vocabulary: the words a protocol needs as single tokens are added to the tokenizer, each with an
embedding composed from its parts, so that ``r2_c11:up:-1.0`` starts as ``r2`` + ``c11`` + ``up`` + ``-1.0``.

A word-level tokenizer (the embedded model's) gets every word it lacks; a subword tokenizer (any LLM's) writes every
word already, but in several tokens, so in the ``step`` format it gets each step word as one added token: one
position per env step instead of about seven. A word-level row is the sum of its parts' embeddings; a subword row is
a weighted mean of its parts, each part the mean of its subword embeddings and part k weighted 1 / (k + 1), so that
the row keeps the size of the model's own embeddings and words whose parts trade places (``r0_c1``, ``r1_c0``,
written with the same subwords) start apart. A part the vocabulary cannot write is one ``ProtocolError`` naming the
word and the part.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from peft.tuners.lora import Embedding as LoraEmbedding
from torch import nn
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .envs.codec import EnvCodec
from .protocol import FORMATS, LAYOUTS, ProtocolError, ProtocolFormat, reward_text

_PART_SEPARATORS = re.compile(r"[:_\s]+")


def protocol_words(fmt: ProtocolFormat | str, codec: EnvCodec) -> list[str]:
    """Every whitespace-separated word the protocol writes for ``codec``'s env in format ``fmt`` (the ``chat``
    format's framing, a chat template's, is left out: only subword tokenizers have one)."""
    fmt = FORMATS.get(fmt) if isinstance(fmt, str) else fmt
    observations = codec.observation_texts()
    words = [*(fmt.marker_words() if fmt else ()), *codec.action_words,
             *(reward_text(r) for r in codec.reward_values if r != 0)]
    words += [w for text in observations for w in text.split()]
    if fmt is not None:
        words += LAYOUTS[fmt.layout].words(codec.action_words, observations, codec.reward_values)
    return list(dict.fromkeys(words))


def is_word_level(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True for a word-level tokenizer (one id per whitespace-separated word, the embedded model's)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and type(backend.model).__name__ == "WordLevel"


def missing_words(tokenizer: PreTrainedTokenizerBase, words: Iterable[str]) -> list[str]:
    """The words ``tokenizer`` lacks: a word-level tokenizer's written with its unknown token, a subword tokenizer's
    not written as one token."""
    words, unk = list(dict.fromkeys(words)), tokenizer.unk_token_id
    encoded = zip(words, _encode(tokenizer, words))
    if is_word_level(tokenizer):
        return [w for w, ids in encoded if unk in ids]
    return [w for w, ids in encoded if len(ids) != 1 or ids[0] == unk]


def _encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """The ids of each of ``texts`` without special tokens, in one batched call."""
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []


def words_to_add(tokenizer: PreTrainedTokenizerBase, fmt: ProtocolFormat | str, codec: EnvCodec) -> list[str]:
    """The words of ``codec``'s env in format ``fmt`` that ``tokenizer`` must learn as single tokens: a word-level
    tokenizer every word it lacks; a subword tokenizer, in a one-word-per-step format, every step word it writes in
    several tokens; none otherwise."""
    if is_word_level(tokenizer):
        return missing_words(tokenizer, protocol_words(fmt, codec))
    fmt = FORMATS.get(fmt) if isinstance(fmt, str) else fmt
    if fmt is None or fmt.layout != "step_words":
        return []
    return missing_words(tokenizer, LAYOUTS[fmt.layout].words(codec.action_words, codec.observation_texts(),
                                                              codec.reward_values))


def composition(tokenizer: PreTrainedTokenizerBase, word: str) -> list[list[int]]:
    """Ids of each part of ``word`` (split at ``:``, ``_`` and spaces), whose embeddings compose its embedding."""
    return compositions(tokenizer, [word])[0]


def compositions(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> list[list[list[int]]]:
    """``composition`` of each of ``words``, every distinct part tokenized once."""
    split = [list(filter(None, _PART_SEPARATORS.split(word))) for word in words]
    parts = list(dict.fromkeys(part for word_parts in split for part in word_parts))
    ids = dict(zip(parts, _encode(tokenizer, parts)))
    for word, word_parts in zip(words, split):
        for part in word_parts:
            if not ids[part] or tokenizer.unk_token_id in ids[part]:
                raise ProtocolError(f"cannot compose an embedding for the new word {word!r}: its part {part!r} is "
                                    f"not in the vocabulary of {type(tokenizer).__name__} ({len(tokenizer)} words); "
                                    "write the env with words the model knows (observation_format='index', action "
                                    "words of the vocabulary) or use a model with a subword tokenizer")
    return [[ids[part] for part in word_parts] for word_parts in split]


def with_words(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> PreTrainedTokenizerBase:
    """A copy of ``tokenizer`` that also writes each of ``words`` as one id, numbered from ``len(tokenizer)`` on:
    a word-level tokenizer's vocabulary grown, a subword tokenizer's added tokens."""
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        if not is_word_level(tokenizer):
            grown = AutoTokenizer.from_pretrained(folder)
            grown.add_tokens(list(words))
            return grown
        path = Path(folder) / "tokenizer.json"
        state = json.loads(path.read_text())
        vocab = state["model"]["vocab"]
        for index, word in enumerate(words, start=len(tokenizer)):
            vocab[word] = index
        path.write_text(json.dumps(state))
        return AutoTokenizer.from_pretrained(folder)


def composed_row(embedding: nn.Module, parts: list[list[int]], word_level: bool) -> torch.Tensor:
    """(hidden,) the embedding of a word from its parts' ids: their sum (word-level), or the mean of the parts'
    subword means, part k weighted 1 / (k + 1) (subword)."""
    device = next(embedding.parameters()).device
    means = [embedding(torch.tensor(ids, device=device)) for ids in parts]
    if word_level:
        return torch.cat(means).sum(0)
    weights = [1.0 / (k + 1) for k in range(len(parts))]
    return sum(w * m.mean(0) for w, m in zip(weights, means)) / sum(weights)


def _append_composed_rows(model: nn.Module, parts: list[list[list[int]]], word_level: bool) -> None:
    """Append one input-embedding row per entry of ``parts`` (a word's parts' ids), composed from those ids'
    embeddings as ``model`` has them (``composed_row``), to ``model``, a causal LM or a peft model over one; a
    LoRA-adapted embedding gets zero adapter columns for them, and tied output embeddings stay tied."""
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
    with torch.no_grad():
        rows = torch.stack([composed_row(embedding, word, word_level) for word in parts])
    base = embedding.base_layer if isinstance(embedding, LoraEmbedding) else embedding
    tied = output is not None and output.weight is base.weight
    old = base.weight
    base.weight = nn.Parameter(torch.cat([old.detach(), rows.to(old.dtype)]), requires_grad=old.requires_grad)
    base.num_embeddings = base.weight.shape[0]
    if isinstance(embedding, LoraEmbedding):
        for name, a in embedding.lora_embedding_A.items():
            embedding.lora_embedding_A[name] = nn.Parameter(
                torch.cat([a.detach(), a.new_zeros(a.shape[0], rows.shape[0])], dim=1), requires_grad=a.requires_grad)
    if tied:
        output.weight = base.weight
        output.out_features = base.weight.shape[0]
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    causal_lm.config.get_text_config().vocab_size = base.weight.shape[0]


def extend_vocabulary(model: PreTrainedModel | nn.Module, tokenizer: PreTrainedTokenizerBase,
                      words: Iterable[str]) -> PreTrainedTokenizerBase:
    """Add the ``words`` the tokenizer does not write as one token (``words_to_add``) to it and to ``model``'s
    embeddings, each row composed from its parts' embeddings as ``model`` has them (a trained adapter's included);
    returns the tokenizer that knows them (``tokenizer`` itself when none was missing). Raises ``ProtocolError`` for
    a word that cannot be composed."""
    new = missing_words(tokenizer, words)
    if not new:
        return tokenizer
    _append_composed_rows(model, compositions(tokenizer, new), is_word_level(tokenizer))
    return with_words(tokenizer, new)


def restore_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Grow a base ``model`` to the saved ``tokenizer`` of an agent trained with added words: the words numbered
    from the base's vocabulary size on get the rows ``extend_vocabulary`` composed for them in training."""
    size = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) <= size:
        return
    by_id = {i: w for w, i in tokenizer.get_vocab().items()}
    _append_composed_rows(model, compositions(tokenizer, [by_id[i] for i in range(size, len(tokenizer))]),
                          is_word_level(tokenizer))
