"""In-context evaluation: play held-out maps in one growing context each and summarise the curves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext

import numpy as np

from .envs import frozen_lake_envs
from .exploration import ExplorationSchedule
from .play import RolloutResult, play_seeds
from .protocol import Episode
from .rollout import RolloutEngine


def evaluate_model(engine: RolloutEngine, maps: Sequence[tuple[str, ...]], n_episodes: int = 30,
                   schedule: ExplorationSchedule | str = "paper_ramp", seed: int = 0, use_adapter: bool = True,
                   reset_options: Callable[[int, int], dict | None] | None = None,
                   prefixes: Sequence[Sequence[Episode]] | None = None, wipe_context: bool = False,
                   is_slippery: bool = False, progress: bool = False) -> RolloutResult:
    """Play ``n_episodes`` per map in one context per map (or a fresh context per episode if ``wipe_context``).

    ``use_adapter=False`` plays the untrained model: the base with the adapter (and its Q head) at init, or,
    with full fine-tuning, the initial weights.
    Seeds: :func:`~trl_icrl.play.play_seeds` of ``seed``.
    """
    schedule = ExplorationSchedule.parse(schedule) if isinstance(schedule, str) else schedule
    envs = frozen_lake_envs(maps, is_slippery)
    rng, seeds = play_seeds(seed, len(maps))
    adapter_off = engine.network.untrained() if not use_adapter else nullcontext()
    with adapter_off:
        if not wipe_context:
            return engine.play(envs, n_episodes, schedule, rng, reset_seeds=seeds, reset_options=reset_options,
                               prefixes=prefixes, progress=progress)
        parts = []
        for episode in range(n_episodes):
            options = (lambda i, _e, e=episode: reset_options(i, e)) if reset_options else None
            parts.append(engine.play(envs, 1, schedule, rng, reset_seeds=seeds if episode == 0 else None,
                                     reset_options=options, prefixes=prefixes, first_episode=episode))
    return RolloutResult(trials=[t for p in parts for t in p.trials],
                         returns=np.concatenate([p.returns for p in parts], axis=1),
                         successes=np.concatenate([p.successes for p in parts], axis=1),
                         lengths=np.concatenate([p.lengths for p in parts], axis=1),
                         env_steps=sum(p.env_steps for p in parts))


def summarize(result: RolloutResult) -> dict:
    """Per-episode-index mean success and return with 95% normal-approximation bands, and scalars."""
    successes = np.asarray(result.successes, dtype=float)
    played = ~np.isnan(successes)
    n = played.sum(0).clip(min=1)
    success = np.nanmean(successes, 0)
    band = 1.96 * np.sqrt(success * (1 - success) / n)
    returns = np.nanmean(result.returns, 0)
    returns_band = 1.96 * np.nanstd(result.returns, 0) / np.sqrt(n)
    hits = np.nan_to_num(successes) > 0
    first = np.where(hits.any(1), hits.argmax(1), successes.shape[1]).astype(float)
    return {
        "success_per_episode": success.tolist(), "success_ci95": band.tolist(),
        "return_per_episode": returns.tolist(), "return_ci95": returns_band.tolist(),
        "final10_success": float(np.nanmean(successes[:, -10:])),
        "mean_success": float(np.nanmean(successes)),
        "episodes_to_first_success": float(first.mean()),
        "n_maps": int(successes.shape[0]), "n_episodes": int(successes.shape[1]),
    }
