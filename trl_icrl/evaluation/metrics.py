"""What a played condition measured: success and return curves with bands, regret, and the paths of the trained
agent parsed back from its trial.

Regret is the mean over maps and played episodes of ``optimal_return(gamma=1)`` of the episode's map (the
oracle's success-based return) minus the episode's return.
"""

from __future__ import annotations

import numpy as np

from ..agent.play import RolloutResult
from ..envs.frozen_lake_maps import grid_moves
from ..protocol import TokenProtocol
from .conditions import Condition


def summarize(result: RolloutResult) -> dict:
    """Per-episode-index mean success and return over maps, (n_episodes,) each, with 95% normal-approximation
    bands, each map's final-10 success, (n_maps,), and scalars; episodes a trial never reached (NaN) are left
    out."""
    successes = result.successes
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
        "final10_per_map": np.nanmean(successes[:, -10:], 1).tolist(),
        "mean_success": float(np.nanmean(successes)),
        "episodes_to_first_success": float(first.mean()),
        "n_maps": int(successes.shape[0]), "n_episodes": int(successes.shape[1]),
    }


def _rows(result: RolloutResult, rows: slice) -> RolloutResult:
    """The maps ``rows`` of a result."""
    return RolloutResult(result.trials[rows], result.returns[rows], result.successes[rows],
                         result.lengths[rows], result.env_steps)


def condition_summary(condition: Condition, result: RolloutResult) -> dict:
    """``summarize`` plus regret, and the condition's own numbers (map B, paper map / family)."""
    optimal = condition.optimal_returns
    if condition.condition == "stitching":
        paper, result, optimal = _rows(result, slice(0, 1)), _rows(result, slice(1, None)), optimal[1:]
    summary = summarize(result)
    summary["regret"] = float(np.nanmean(optimal - result.returns))
    if condition.condition == "non_stationary":
        switch = condition.info["switch_after"]
        summary["map_b_final10_success"] = float(np.nanmean(result.successes[:, switch:][:, -10:]))
    if condition.condition == "stitching":
        summary["paper_map_successes"] = int(np.nansum(paper.successes))
        summary["family_success_rate"] = summary["mean_success"]
    return summary


def _observation_tile(text: str, ncol: int) -> int:
    """Tile of an observation text, ``"r2 c3"`` (coords) or ``"11"`` (index)."""
    if text.startswith("r"):
        row, col = (int(word[1:]) for word in text.split())
        return row * ncol + col
    return int(text)


def trajectory(protocol: TokenProtocol, condition: Condition, result: RolloutResult) -> dict:
    """Tile paths on map 0 of the first and last visible episodes of the condition's trajectory range.

    Parsed from the first trial of ``result`` with ``protocol``; where a format does not write the tile a
    terminated episode ends on, it follows the last action without slipping.
    """
    desc, first, end = condition.trajectory
    parsed = protocol.parse(result.trials[0].input_ids)
    played = parsed[-condition.n_episodes:]  # demonstrations come first; a full context drops the oldest episodes
    offset = condition.n_episodes - len(played)
    moves = grid_moves(len(desc), len(desc[0]))
    paths = {}
    for e in (max(first, offset), end - 1):
        episode = played[e - offset]
        tiles = [_observation_tile(o, len(desc[0])) for o in episode.observations]
        tiles.append(_observation_tile(episode.final_observation, len(desc[0])) if episode.final_observation
                     else moves[tiles[-1]][episode.actions[-1]])
        paths[f"episode {e}"] = tiles
    return {"map": "/".join(desc), "paths": paths}
