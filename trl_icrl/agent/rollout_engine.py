"""The language-model agent of the play loop (``RolloutEngine``): batched, KV-cached contexts, one growing
multi-episode context per env.

:func:`~trl_icrl.agent.play.play` steps the envs and writes each trial; the engine feeds what was written. Each step
feeds only the new tokens of every env (action word, reward, next observation) through the model with the cache
of everything before, so a step costs its new tokens, not the whole context. Every row feeds the same number of
tokens per forward, so the cache holds no padding between a row's tokens, and a row whose trial is over leaves
the batch (and its cache), so the last rows to finish play alone. When a context would exceed
``max_context_tokens``, either whole oldest episodes are dropped and that env's row of the cache is re-encoded
(``when_full="drop"``, never a cut inside an episode; an episode that alone would outgrow the context ends
truncated, with the protocol's marker), or the current episode is truncated and the trial ends
there (``when_full="end"``: fixed-budget training trials).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

from ..envs.codec import EnvCodec
from ..protocol import Episode, TokenProtocol, Trial, TrialWriter
from .exploration import ExplorationSchedule
from .kv_cache import DECODING_ATTENTION, buffered_cache, select_cache_rows
from .play import Agent, RolloutResult, Transition, play, trial_full
from .q_network import QNetwork

__all__ = ["RolloutEngine"]

SMALL_HIDDEN = 256
"""On a CPU, a model of at most this hidden size plays on one thread (the embedded model: 128); larger ones on all."""


class _Context:
    """One row's growing trial and the part of it the model currently sees."""

    def __init__(self, writer: TrialWriter):
        self.writer = writer
        self.start = 0  # token index in the trial where the visible context starts
        self.pending: list[int] = []  # written, not yet fed to the model
        self.playing = True

    @property
    def trial(self) -> Trial:
        return self.writer.trial

    def visible(self) -> list[int]:
        return self.trial.input_ids[self.start:]


class RolloutEngine(Agent):
    """The in-context agent: a ``QNetwork`` acting greedily on the Q-values of its batched, KV-cached contexts.

    Args:
        network: the Q network (its active adapter acts).
        protocol: the token protocol of the env family.
        codec: writes the env's observations as text.
        max_context_tokens: the most tokens one context may hold.
        pad_token_id: id used for padding (never attended to).
        when_full: ``"drop"`` oldest episodes or ``"end"`` the trial when a context is full.
        pad_to_decision: feed every row's pending tokens in one forward, left-padding the shorter ones (masked
            holes in the cache), so each round of decisions costs one forward; ``False`` feeds the fewest any row
            has, so nothing is padded and attention stays unmasked, and rows with tokens left wait for the next
            forward. ``None``: ``True`` when the network is off the CPU as play starts, where one forward of a
            large model costs about the same for a few more tokens (the ``llama3`` format needs 7.5 forwards per
            step without it); ``False`` on a CPU, where the tiny model's ``step`` format needs 1.12.
    """

    def __init__(self, network: QNetwork, protocol: TokenProtocol, codec: EnvCodec,
                 max_context_tokens: int = 4096, pad_token_id: int = 0, when_full: str = "drop",
                 pad_to_decision: bool | None = None):
        if when_full not in ("drop", "end"):
            raise ValueError(f"when_full must be 'drop' or 'end', got {when_full!r}")
        self.network, self.protocol, self.codec = network, protocol, codec
        self.max_context_tokens, self.pad_token_id, self.when_full = max_context_tokens, pad_token_id, when_full
        self.pad_to_decision = pad_to_decision
        self.step_budget = protocol.layout.token_budget
        """The most tokens one step can add: its outcome, the end of its episode and the next one's start."""

    @property
    def device(self) -> torch.device:
        return self.network.action_token_ids.device

    def play(self, envs: Sequence[gym.Env], n_episodes: int, schedule: ExplorationSchedule,
             rng: np.random.Generator, reset_seeds: Sequence[int] | None = None,
             reset_options: Callable[[int, int], dict | None] | None = None,
             prefixes: Sequence[Sequence[Episode]] | None = None, first_episode: int = 0,
             progress: bool = False) -> RolloutResult:
        """Play ``n_episodes`` consecutive episodes in each env, all in one context per env:
        :func:`~trl_icrl.agent.play.play` with this engine as the agent and its protocol and codec writing the trials
        (see there for the arguments)."""
        return play(self, envs, n_episodes, schedule, rng, reset_seeds=reset_seeds, reset_options=reset_options,
                    prefixes=prefixes, first_episode=first_episode, protocol=self.protocol, codec=self.codec,
                    progress=progress)

    def start(self, trials: Sequence[TrialWriter | None]) -> None:
        if any(writer is None for writer in trials):
            raise ValueError("the rollout engine reads the trials play() writes: pass its protocol and codec")
        self._training, self._threads = self.network.training, torch.get_num_threads()
        # decided per play: a trainer moves the network to its device after building the engine
        self._pad = self.device.type != "cpu" if self.pad_to_decision is None else self.pad_to_decision
        self.network.eval()
        if self.device.type == "cpu" and self.network.config.get_text_config().hidden_size <= SMALL_HIDDEN:
            torch.set_num_threads(1)  # a small model's step matmuls are tiny: thread start-up costs more than it saves
        config = self.network.config
        self._attention = config._attn_implementation
        if self._attention == "sdpa":  # restored by finish(); left set, it still attends exactly (kv_cache)
            config._attn_implementation = DECODING_ATTENTION
        self._contexts = [_Context(writer) for writer in trials]
        for ctx in self._contexts:
            self._fit_context(ctx)
        self._refit: list[int] = []
        self._set_batch(list(range(len(self._contexts))))
        self._q: torch.Tensor | None = None

    @torch.no_grad()
    def decision_rows(self, rows: Sequence[int]) -> list[int]:
        """Feed what the rows wrote since the last call (the whole visible contexts the first time); the rows
        whose fed tokens end at a decision."""
        if self._q is None:
            self._q = self._rebuild(self._contexts)
        else:
            self._reencode_rows(self._contexts, self._refit)
            self._q = self._extend(self._contexts)
        self._refit = []
        return [i for i in rows if not self._contexts[i].pending]

    def greedy_actions(self, rows: Sequence[int], observations: Sequence[int]) -> list[int]:
        """The argmax of the in-context Q-values at each row's last fed token."""
        return self._q[[self._slot[row] for row in rows]].argmax(-1).tolist()

    def context_full(self, row: int) -> bool:
        """With ``when_full="end"``, True when the trial must end with this step
        (:func:`~trl_icrl.agent.play.trial_full`)."""
        ctx = self._contexts[row]
        return self.when_full == "end" and \
            trial_full(len(ctx.trial.input_ids) - ctx.start, self.step_budget, self.max_context_tokens)

    def episode_full(self, row: int) -> bool:
        """With ``when_full="drop"``, True when the episode being played must end with this step, truncated: it
        alone would soon outgrow ``max_context_tokens`` (an env with no time limit), and dropping older episodes
        makes no room inside one."""
        trial = self._contexts[row].trial
        return self.when_full == "drop" and \
            trial_full(len(trial.input_ids) - trial.episode_offsets[-1], self.step_budget, self.max_context_tokens)

    def observe(self, row: int, transition: Transition, new_ids: Sequence[int], playing: bool) -> None:
        ctx = self._contexts[row]
        ctx.pending, ctx.playing = (list(new_ids), True) if playing else ([], False)
        if playing and self._fit_context(ctx):
            self._refit.append(row)

    def finish(self, trials: list[Trial]) -> list[Trial]:
        """Restore the network's mode and threads; each trial as far as it is still in context."""
        self.network.train(self._training)
        self.network.config._attn_implementation = self._attention
        torch.set_num_threads(self._threads)
        return [ctx.trial.window(ctx.start) if ctx.start else ctx.trial for ctx in self._contexts]

    def _set_batch(self, rows: list[int]) -> None:
        """The rows in the cache, in its batch order, and each row's slot in it."""
        self._batch, self._slot = rows, {row: k for k, row in enumerate(rows)}

    def _fit_context(self, ctx: _Context) -> bool:
        """Drop whole oldest episodes until the visible context fits with room to spare; True if any was dropped."""
        length = len(ctx.trial.input_ids)
        if length - ctx.start <= self.max_context_tokens:
            return False
        # Free a quarter of the context at once, so the (batch-wide) cache is rebuilt rarely.
        target = self.max_context_tokens - self.max_context_tokens // 4
        offsets = [o for o in ctx.trial.episode_offsets if o > ctx.start and length - o <= target] or \
            [o for o in ctx.trial.episode_offsets if o > ctx.start and length - o <= self.max_context_tokens]
        if not offsets:
            raise ValueError(f"one episode needs {length - ctx.trial.episode_offsets[-1]} tokens, more than "
                             f"max_context_tokens={self.max_context_tokens}")
        ctx.start = offsets[0]
        return True

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor, last: torch.Tensor,
                 cache) -> torch.Tensor:
        mask = None if bool(mask.all()) else mask  # without padding, attention takes its fast unmasked path
        q, self._cache = self.network(ids, last[:, None], attention_mask=mask, position_ids=position_ids,
                                      cache=cache, use_cache=True)
        return q[:, 0]

    def _rebuild(self, contexts: list[_Context]) -> torch.Tensor:
        """Encode every visible context from scratch (left-padded); Q at each last token, (N, n_actions)."""
        visible = [ctx.visible() for ctx in contexts]
        width = max(len(v) for v in visible)
        ids = torch.full((len(visible), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, v in enumerate(visible):
            ids[i, width - len(v):] = torch.tensor(v)
            mask[i, width - len(v):] = 1
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        self._mask, self._next_position = mask.to(self.device), torch.tensor([len(v) for v in visible])
        last = torch.full((len(visible),), width - 1)
        return self._forward(ids.to(self.device), self._mask, position_ids.to(self.device),
                             last.to(self.device), buffered_cache(self.network.config))

    def _reencode_rows(self, contexts: list[_Context], rows: list[int]) -> None:
        """Re-encode the shortened contexts of ``rows`` alone and write them, left-padded, into the batch cache
        (their pending tokens follow in the next ``_extend``); the other rows keep their cache."""
        width = self._mask.shape[1]
        for i in rows:
            ctx, k = contexts[i], self._slot[i]
            kept = ctx.visible()[: len(ctx.visible()) - len(ctx.pending)]
            self._mask[k] = 0
            self._next_position[k] = len(kept)
            if not kept:
                continue
            ids = torch.tensor([kept], device=self.device)
            _, cache = self.network(ids, torch.zeros((1, 1), dtype=torch.long, device=self.device),
                                    cache=buffered_cache(self.network.config), use_cache=True)
            for layer, row in zip(self._cache.layers, cache.layers):
                for buffer, states in zip(layer._buffers, (row.keys, row.values)):
                    buffer[k, :, width - len(kept):width] = states[0]
            self._mask[k, width - len(kept):] = 1

    def _extend(self, contexts: list[_Context]) -> torch.Tensor:
        """Feed pending tokens of every playing row on top of the cache: all of them, left-padded to the longest
        (``pad_to_decision``), or the fewest any row has, so no row is padded; Q at each batch row's last fed
        token, (len(self._batch), n_actions). Rows whose trial is over leave the batch first. A row whose pending
        tokens are all fed sits at a decision; one with tokens left (e.g. an episode's end and the next one's
        start) waits."""
        keep = [k for k, row in enumerate(self._batch) if contexts[row].playing]
        if len(keep) < len(self._batch):
            index = torch.tensor(keep, device=self.device)
            select_cache_rows(self._cache, index)
            self._mask = self._mask.index_select(0, index)
            self._next_position = self._next_position[keep]
            self._set_batch([self._batch[k] for k in keep])
        batch = [contexts[row] for row in self._batch]
        width = (max if self._pad else min)(len(ctx.pending) for ctx in batch)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=self._mask.dtype)
        fed = torch.tensor([min(len(ctx.pending), width) for ctx in batch])
        for i, (ctx, n) in enumerate(zip(batch, fed.tolist())):
            ids[i, width - n:], mask[i, width - n:] = torch.tensor(ctx.pending[:n]), 1
            ctx.pending = ctx.pending[n:]
        offsets = torch.arange(width)[None, :] - (width - fed)[:, None]  # 0 at each row's first fed token
        position_ids = (self._next_position[:, None] + offsets).clamp(min=0)
        self._next_position = self._next_position + fed
        self._mask = torch.cat([self._mask, mask.to(self._mask.device)], dim=1)
        last = torch.full((len(batch),), width - 1)
        return self._forward(ids.to(self.device), self._mask, position_ids.to(self.device), last.to(self.device),
                             self._cache)
