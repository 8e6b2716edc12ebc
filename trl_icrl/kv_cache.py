"""A KV cache that appends into a preallocated buffer (grown by doubling) instead of concatenating.

``DynamicCache`` copies the whole cache at every step (``torch.cat``), which makes a long rollout
quadratic in its length; this one copies only the new tokens.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


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
