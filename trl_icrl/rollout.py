"""Batched, KV-cached in-context rollouts: N envs in lockstep, one growing multi-episode context each.

Each step feeds only the new tokens of every env (action word, reward, next observation) through the
model with the cache of everything before, so a step costs its new tokens, not the whole context. Every
row feeds the same number of tokens per forward, so the cache holds no padding between a row's tokens.
When a context would exceed ``max_context_tokens``, either whole oldest episodes are dropped and that
env's row of the cache is re-encoded (``when_full="drop"``, never a cut inside an episode), or the current episode is
truncated and the trial ends there (``when_full="end"``: fixed-budget training trials).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from .env_codec import EnvCodec
from .exploration import ExplorationSchedule, exploration_streams
from .kv_cache import buffered_cache
from .protocol import Episode, TokenProtocol, Trial, TrialWriter
from .q_network import QNetwork


@dataclass
class RolloutResult:
    """What ``RolloutEngine.play`` returns; arrays are (n_envs, n_episodes) over the played episodes
    (NaN returns and successes for episodes a full context never reached)."""

    trials: list[Trial]
    returns: np.ndarray
    successes: np.ndarray
    lengths: np.ndarray
    env_steps: int


class _Context:
    """One env's growing trial and the part of it the model currently sees."""

    def __init__(self, writer: TrialWriter, n_episodes: int):
        self.writer, self.n_episodes = writer, n_episodes
        self.start = 0  # token index in the trial where the visible context starts
        self.episode = 0  # index among the played episodes
        self.pending: list[int] = []
        self.episode_return = 0.0
        self.episode_length = 0

    @property
    def trial(self) -> Trial:
        return self.writer.trial

    @property
    def active(self) -> bool:
        return self.episode < self.n_episodes

    def visible(self) -> list[int]:
        return self.trial.input_ids[self.start:]


class RolloutEngine:
    """Plays trials with a ``QNetwork`` acting epsilon-greedily on in-context Q-values.

    Args:
        network: the Q network (its active adapter acts).
        protocol: the token protocol of the env family.
        codec: writes the env's observations as text.
        max_context_tokens: the most tokens one context may hold.
        pad_token_id: id used for padding (never attended to).
        when_full: ``"drop"`` oldest episodes or ``"end"`` the trial when a context is full.
    """

    def __init__(self, network: QNetwork, protocol: TokenProtocol, codec: EnvCodec,
                 max_context_tokens: int = 4096, pad_token_id: int = 0, when_full: str = "drop"):
        if when_full not in ("drop", "end"):
            raise ValueError(f"when_full must be 'drop' or 'end', got {when_full!r}")
        self.network, self.protocol, self.codec = network, protocol, codec
        self.max_context_tokens, self.pad_token_id, self.when_full = max_context_tokens, pad_token_id, when_full
        self.step_budget = protocol.step_token_budget(codec.observation_texts(), codec.reward_values)
        """The most tokens one step can add: its outcome, the end of its episode and the next one's start."""

    @property
    def device(self) -> torch.device:
        return self.network.action_token_ids.device

    @torch.no_grad()
    def play(self, envs: Sequence[gym.Env], n_episodes: int, schedule: ExplorationSchedule,
             rng: np.random.Generator, reset_seeds: Sequence[int] | None = None,
             reset_options: Callable[[int, int], dict | None] | None = None,
             prefixes: Sequence[Sequence[Episode]] | None = None, first_episode: int = 0,
             progress: bool = False) -> RolloutResult:
        """Play ``n_episodes`` consecutive episodes in each env, all in one context per env.

        Args:
            envs: one env per trial; reset at every episode start.
            n_episodes: episodes per trial.
            schedule: P(greedy action) per episode index (offset by ``first_episode``).
            rng: source of exploration randomness (one stream per env is drawn from it).
            reset_seeds: seed of each env's first reset (later resets continue its own stream).
            reset_options: ``(env_index, episode) -> options`` for ``env.reset`` (e.g. switch the map).
            prefixes: episodes written into each context before play (e.g. demonstrations).
        """
        training, threads = self.network.training, torch.get_num_threads()
        self.network.eval()
        if self.device.type == "cpu":
            torch.set_num_threads(1)  # one step's matmuls are tiny: thread start-up costs more than it saves
        contexts = [_Context(self.protocol.new_trial(), n_episodes) for _ in envs]
        for i, (env, ctx) in enumerate(zip(envs, contexts)):
            self.codec.check_env(env)
            for episode in (prefixes[i] if prefixes else ()):
                ctx.writer.write_episode(episode)
            seed = None if reset_seeds is None else int(reset_seeds[i])
            obs, _ = env.reset(seed=seed, options=reset_options(i, 0) if reset_options else None)
            ctx.writer.begin_episode(self.codec.observation_text(env, obs))
            self._fit_context(ctx)
        n = len(envs)
        returns, successes = np.full((n, n_episodes), np.nan), np.full((n, n_episodes), np.nan)
        lengths = np.zeros((n, n_episodes), dtype=np.int64)
        env_steps = 0
        bar = tqdm(total=n * n_episodes, disable=not progress, desc="rollout", unit="episode", leave=False)
        streams = exploration_streams(rng, n)
        q = self._rebuild(contexts)
        while True:
            greedy_actions = q.argmax(-1).tolist()
            refit = []
            for i, (env, ctx) in enumerate(zip(envs, contexts)):
                if not ctx.active or ctx.pending:  # only a row whose last fed token is a decision acts
                    continue
                p_greedy = schedule.greedy_probability(first_episode + ctx.episode)
                action = greedy_actions[i] if streams[i].random() < p_greedy else int(streams[i].integers(len(q[i])))
                obs, reward, terminated, truncated, _ = env.step(action)
                full = self.when_full == "end" and \
                    len(ctx.trial.input_ids) - ctx.start + self.step_budget > self.max_context_tokens
                truncated = truncated or (full and not terminated)
                env_steps += 1
                ctx.episode_return += float(reward)
                ctx.episode_length += 1
                ended = terminated or truncated
                ctx.pending = ctx.writer.step(action, float(reward), self.codec.observation_text(env, obs),
                                              terminated=terminated, truncated=truncated)
                if ended:
                    e = ctx.episode
                    returns[i, e], lengths[i, e] = ctx.episode_return, ctx.episode_length
                    successes[i, e] = float(terminated and reward > 0)
                    ctx.episode = n_episodes if full else ctx.episode + 1
                    ctx.episode_return, ctx.episode_length = 0.0, 0
                    bar.update(1)
                    if not ctx.active:
                        ctx.pending = []
                        continue
                    options = reset_options(i, ctx.episode) if reset_options else None
                    obs, _ = env.reset(options=options)
                    ctx.pending = ctx.pending + ctx.writer.begin_episode(self.codec.observation_text(env, obs))
                if self._fit_context(ctx):
                    refit.append(i)
            if not any(ctx.active for ctx in contexts):
                break
            self._reencode_rows(contexts, refit)
            q = self._extend(contexts)
        bar.close()
        self.network.train(training)
        torch.set_num_threads(threads)
        trials = [ctx.trial.window(ctx.start) if ctx.start else ctx.trial for ctx in contexts]
        return RolloutResult(trials, returns, successes, lengths, env_steps)

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
            ctx = contexts[i]
            kept = ctx.visible()[: len(ctx.visible()) - len(ctx.pending)]
            self._mask[i] = 0
            self._next_position[i] = len(kept)
            if not kept:
                continue
            ids = torch.tensor([kept], device=self.device)
            _, cache = self.network(ids, torch.zeros((1, 1), dtype=torch.long, device=self.device),
                                    cache=buffered_cache(self.network.config), use_cache=True)
            for layer, row in zip(self._cache.layers, cache.layers):
                for buffer, states in zip(layer._buffers, (row.keys, row.values)):
                    buffer[i, :, width - len(kept):width] = states[0]
            self._mask[i, width - len(kept):] = 1

    def _extend(self, contexts: list[_Context]) -> torch.Tensor:
        """Feed the same number of pending tokens of every active row (the fewest any has) on top of the cache,
        so no row is padded; Q at each row's last fed token, (N, n_actions). A row whose pending tokens are all
        fed sits at a decision; one with tokens left (e.g. an episode's end and the next one's start) waits."""
        width = min(len(ctx.pending) for ctx in contexts if ctx.active)
        ids = torch.full((len(contexts), width), self.pad_token_id, dtype=torch.long)
        fed = torch.ones(len(contexts), dtype=torch.long)
        for i, ctx in enumerate(contexts):
            if ctx.active:
                ids[i] = torch.tensor(ctx.pending[:width], dtype=torch.long)
                ctx.pending = ctx.pending[width:]
            else:
                fed[i] = 0
        position_ids = self._next_position[:, None] + torch.arange(width)[None, :]
        self._next_position = self._next_position + fed * width
        self._mask = torch.cat([self._mask, fed[:, None].expand(-1, width).to(self.device)], dim=1)
        last = torch.full((len(contexts),), width - 1)
        return self._forward(ids.to(self.device), self._mask, position_ids.to(self.device), last.to(self.device),
                             self._cache)
