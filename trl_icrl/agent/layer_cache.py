"""Frozen lower layers, computed once: with only the top decoder layers of a Q network trainable, the hidden states
that a fixed trial reaches below them never change, so they are computed the first time the trial is sampled and
every later update on it (and the target network's forward, which shares those layers) runs the top layers alone."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

LAYER_INDEX = re.compile(r"\.layers\.(\d+)\.")
"""The decoder layer a parameter name lies in (``...model.layers.12.self_attn...``)."""


def decoder_of(causal_lm: nn.Module) -> nn.Module:
    """The decoder (``LlamaModel`` and kin) of a causal LM: its ``layers`` (a ``ModuleList``) and final ``norm``;
    a decoder laid out otherwise is refused in one sentence."""
    decoder = causal_lm.get_decoder()
    if not isinstance(getattr(decoder, "layers", None), nn.ModuleList) or not hasattr(decoder, "norm"):
        raise ValueError(f"{type(decoder).__name__} keeps no `layers` ModuleList and final `norm`: trainable_layers "
                         "needs a decoder laid out like Llama's")
    return decoder


@contextmanager
def layer_span(decoder: nn.Module, start: int, stop: int | None = None, final_norm: bool = True):
    """Within the block the decoder's forward runs layers ``[start, stop)`` only (given ``inputs_embeds``: the hidden
    states that enter layer ``start``), and its final norm only with ``final_norm``."""
    layers, norm = decoder.layers, decoder.norm
    decoder.layers = layers[start:stop]
    if not final_norm:
        decoder.norm = nn.Identity()
    try:
        yield decoder
    finally:
        decoder.layers, decoder.norm = layers, norm


def freeze_below(model: nn.Module, n_frozen: int, keep: str = "q_head") -> None:
    """Freeze every trainable parameter of ``model`` outside decoder layers ``n_frozen`` and above (the lower
    layers' adapter weights, the embeddings' adapter), except those whose name holds ``keep`` (the Q head)."""
    for name, p in model.named_parameters():
        layer = LAYER_INDEX.search(name)
        if p.requires_grad and keep not in name.split(".") and (layer is None or int(layer.group(1)) < n_frozen):
            p.requires_grad_(False)


class LowerStateCache:
    """Each replay row's hidden states below the trainable layers, computed the first time the row is sampled.

    Args:
        forward_lower: (B, L) ids -> (B, L, hidden) states (``QNetwork.forward_lower``).
        pad_token_id: right-padding of rows of different lengths (attention is causal: padding changes no real
            position's state).
        dtype: what the states are kept in (bf16 halves the memory: about 0.6 KB a token for SmolLM2).
    """

    def __init__(self, forward_lower: Callable[[torch.Tensor], torch.Tensor], pad_token_id: int, dtype: torch.dtype):
        self.forward_lower, self.pad_token_id, self.dtype = forward_lower, pad_token_id, dtype
        self.states: dict[int, torch.Tensor] = {}
        """Row index -> (length, hidden) states."""

    def __len__(self) -> int:
        return len(self.states)

    @torch.no_grad()
    def batch(self, indices: Sequence[int], trials: Sequence[Sequence[int]]) -> torch.Tensor:
        """(B, L, hidden) states of the rows ``indices`` whose ids are ``trials``, right-padded with zeros to the
        longest; rows never seen before run through the lower layers first, in one batch."""
        missing = {i: ids for i, ids in zip(indices, trials) if i not in self.states}
        if missing:
            ids = pad_sequence([torch.as_tensor(t) for t in missing.values()], batch_first=True,
                               padding_value=self.pad_token_id)
            hidden = self.forward_lower(ids)
            for b, (i, t) in enumerate(missing.items()):
                self.states[i] = hidden[b, :len(t)].to("cpu", self.dtype).clone()
        return pad_sequence([self.states[i] for i in indices], batch_first=True)
