"""Frozen lower layers, computed once: with only the top decoder layers of a Q network trainable, the hidden states
that a fixed trial reaches below them never change, so they are computed once per trial and every update (and the
target network's forward, which shares those layers) runs through the top layers alone."""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn
from tqdm.auto import tqdm

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


def freeze_below(model: nn.Module, n_frozen: int, keep: str = "q_head") -> int:
    """Freeze every trainable parameter of ``model`` outside decoder layers ``n_frozen`` and above (the lower
    layers' adapter weights, the embeddings' adapter), except those whose name holds ``keep`` (the Q head).
    Returns how many tensors it froze."""
    frozen = 0
    for name, p in model.named_parameters():
        layer = LAYER_INDEX.search(name)
        if p.requires_grad and keep not in name.split(".") and (layer is None or int(layer.group(1)) < n_frozen):
            p.requires_grad_(False)
            frozen += 1
    return frozen


@torch.no_grad()
def lower_states(forward_lower, trials: Sequence[Sequence[int]], pad_token_id: int, dtype: torch.dtype,
                 batch_tokens: int = 8192, progress: bool = True) -> list[torch.Tensor]:
    """The hidden states each trial reaches below the trainable layers, one (length, hidden) tensor of ``dtype``
    per trial, in order. ``forward_lower`` maps (B, L) ids to (B, L, hidden) states; trials run in batches of
    similar length, right-padded (attention is causal: padding changes no real position's state), each batch at
    most ``batch_tokens`` tokens."""
    order = sorted(range(len(trials)), key=lambda i: len(trials[i]))
    states: list[torch.Tensor | None] = [None] * len(trials)
    with tqdm(total=len(trials), desc="frozen layers' states", unit="trial", disable=not progress) as bar:

        def run(batch: list[int]) -> None:
            ids = torch.full((len(batch), len(trials[batch[-1]])), pad_token_id, dtype=torch.long)
            for b, i in enumerate(batch):
                ids[b, :len(trials[i])] = torch.as_tensor(trials[i])
            hidden = forward_lower(ids)
            for b, i in enumerate(batch):
                states[i] = hidden[b, :len(trials[i])].to("cpu", dtype).clone()
            bar.update(len(batch))

        batch: list[int] = []
        for i in order:  # ascending length: the last trial of a batch is its longest
            if batch and (len(batch) + 1) * len(trials[i]) > batch_tokens:
                run(batch)
                batch = []
            batch.append(i)
        if batch:
            run(batch)
    return states
