"""Decoding a few tokens a step over a long cache: a KV cache that appends into a preallocated buffer (grown by
doubling) instead of concatenating, and an attention kernel for such steps.

``DynamicCache`` copies the whole cache at every step (``torch.cat``), which makes a long rollout
quadratic in its length; this one copies only the new tokens. On a CPU, SDPA's kernel for one query token over
a long bf16 cache ran 3x slower than two matmuls; ``decoding_attention_forward`` uses the matmuls for such steps
(grouped query heads read their shared key/value head, no copy) and SDPA for everything else; ``RolloutEngine``
sets it while it plays.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

DECODING_ATTENTION = "trl_icrl_decoding"
DECODING_QUERY_TOKENS = 8
"""Steps of at most this many query tokens take the matmul path."""


class BufferedLayer(DynamicLayer):
    """Keys and values (B, heads, length, head_dim) are views into a buffer of spare capacity."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self._buffers, self._length = None, 0
        end = self._length + key_states.shape[-2]
        if self._buffers is None or end > self._buffers[0].shape[-2]:
            capacity = max(end, 2 * self._length, 256)
            grown = []
            for old, new in zip(self._buffers or (None, None), (key_states, value_states)):
                buffer = new.new_empty((*new.shape[:-2], capacity, new.shape[-1]))
                if old is not None:
                    buffer[..., :self._length, :] = old[..., :self._length, :]
                grown.append(buffer)
            self._buffers = grown
        self._buffers[0][..., self._length:end, :] = key_states
        self._buffers[1][..., self._length:end, :] = value_states
        self._length = end
        self.keys, self.values = (b[..., :end, :] for b in self._buffers)
        return self.keys, self.values

    def select_rows(self, index: torch.Tensor) -> None:
        """Keep only the batch rows ``index`` (K,), in that order."""
        self._buffers = [b.index_select(0, index) for b in self._buffers]
        self.keys, self.values = (b[..., :self._length, :] for b in self._buffers)


def select_cache_rows(cache: DynamicCache, index: torch.Tensor) -> None:
    """Keep only the batch rows ``index`` (K,) of a ``buffered_cache``, in place."""
    for layer in cache.layers:
        layer.select_rows(index)


def buffered_cache(config) -> DynamicCache:
    """A ``DynamicCache`` for ``config`` whose layers are ``BufferedLayer``."""
    cache = DynamicCache(config=config)
    cache.layers = [BufferedLayer() for _ in cache.layers]
    return cache


def decoding_attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                               attention_mask: torch.Tensor | None, dropout: float = 0.0,
                               scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """Attention of a transformers attention module: ``query`` (B, H, q, D) over ``key``/``value`` (B, H_kv, L, D),
    ``attention_mask`` SDPA's (bool, True attends, or additive; None: causal). Returns (B, q, H, D) and None.
    Steps of up to ``DECODING_QUERY_TOKENS`` queries on a CPU outside training: two matmuls, softmax in fp32;
    else SDPA."""
    batch, heads, q_len, dim = query.shape
    if q_len > DECODING_QUERY_TOKENS or module.training or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    kv_heads, length = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    scores = (query.reshape(batch, kv_heads, groups * q_len, dim) @ key.transpose(-1, -2)).float()
    scores = scores.view(batch, kv_heads, groups, q_len, length) * (scaling or dim ** -0.5)
    if attention_mask is None and q_len > 1:  # causal among the new tokens, which close the cache
        attention_mask = torch.ones(q_len, length, dtype=torch.bool, device=query.device).tril(length - q_len)
    if attention_mask is not None:  # one new token and no padding attends everywhere: nothing to mask
        mask = attention_mask if attention_mask.dim() == 2 else attention_mask[:, :, None]  # (B, 1, 1, q, L)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = scores.softmax(-1).to(value.dtype).view(batch, kv_heads, groups * q_len, length)
    out = (probs @ value).view(batch, heads, q_len, dim)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(DECODING_ATTENTION, decoding_attention_forward)
AttentionMaskInterface.register(DECODING_ATTENTION, sdpa_mask)

