"""An open vocabulary for word-level tokenizers: the words a new env needs are added to the tokenizer, each with an
embedding composed from its parts, so that ``r2_c11:up:-1.0`` starts as ``r2`` + ``c11`` + ``up`` + ``-1.0``.

A subword tokenizer (any LLM's) writes every word already; only a word-level tokenizer (the embedded model's) can
lack one. A part the vocabulary lacks cannot be composed: that is one ``ProtocolError`` naming the word and the part.
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

from .env_codec import EnvCodec
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


def missing_words(tokenizer: PreTrainedTokenizerBase, words: Iterable[str]) -> list[str]:
    """The words ``tokenizer`` writes with its unknown token (none for a tokenizer without one)."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return []
    return [w for w in words if unk in tokenizer(w, add_special_tokens=False)["input_ids"]]


def composition(tokenizer: PreTrainedTokenizerBase, word: str) -> list[int]:
    """Ids of the parts of ``word`` (split at ``:``, ``_`` and spaces) whose embeddings sum to its embedding."""
    ids = []
    for part in filter(None, _PART_SEPARATORS.split(word)):
        part_ids = tokenizer(part, add_special_tokens=False)["input_ids"]
        if not part_ids or tokenizer.unk_token_id in part_ids:
            raise ProtocolError(f"cannot compose an embedding for the new word {word!r}: its part {part!r} is not "
                                f"in the vocabulary of {type(tokenizer).__name__} ({len(tokenizer)} words); write "
                                "the env with words the model knows (observation_format='index', action words of "
                                "the vocabulary) or use a model with a subword tokenizer")
        ids += part_ids
    return ids


def with_words(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> PreTrainedTokenizerBase:
    """A copy of a word-level ``tokenizer`` that also knows ``words``, numbered from ``len(tokenizer)`` on."""
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        path = Path(folder) / "tokenizer.json"
        state = json.loads(path.read_text())
        if state["model"]["type"] != "WordLevel":
            raise ProtocolError(f"{type(tokenizer).__name__} lacks the words {list(words)[:5]} and is no word-level "
                                "tokenizer, so no words can be added to it; pick a format and words it writes")
        vocab = state["model"]["vocab"]
        for index, word in enumerate(words, start=len(tokenizer)):
            vocab[word] = index
        path.write_text(json.dumps(state))
        return AutoTokenizer.from_pretrained(folder)


def _append_composed_rows(model: nn.Module, parts: list[list[int]]) -> None:
    """Append one input-embedding row per entry of ``parts``, the sum of those ids' embeddings as ``model`` has them,
    to ``model``, a causal LM or a peft model over one; a LoRA-adapted embedding gets zero adapter columns for them,
    and tied output embeddings stay tied."""
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
    with torch.no_grad():
        device = next(embedding.parameters()).device
        rows = torch.stack([embedding(torch.tensor(ids, device=device)).sum(0) for ids in parts])
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
    """Add the ``words`` the tokenizer lacks to it and to ``model``'s embeddings, each row the sum of its parts'
    embeddings as ``model`` has them (a trained adapter's included); returns the tokenizer that knows them
    (``tokenizer`` itself when none was missing). Raises ``ProtocolError`` for a word that cannot be composed."""
    new = missing_words(tokenizer, words)
    if not new:
        return tokenizer
    _append_composed_rows(model, [composition(tokenizer, word) for word in new])
    return with_words(tokenizer, new)


def restore_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Grow a base ``model`` to the saved ``tokenizer`` of an agent trained with added words: the words numbered
    from the base's vocabulary size on get the rows ``extend_vocabulary`` composed for them in training."""
    size = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) <= size:
        return
    by_id = {i: w for w, i in tokenizer.get_vocab().items()}
    _append_composed_rows(model, [composition(tokenizer, by_id[i]) for i in range(size, len(tokenizer))])
