"""The paper's evaluation protocol: a trained in-context agent against baselines on the same maps, seeds and
exploration schedule, per condition, and the report (JSON, curves, trajectory pictures, markdown table).

Conditions (``CONDITIONS``):

- ``in_distribution`` / ``out_of_distribution``: ``heldout_maps("id" | "ood", n_maps, seed)``, ``n_episodes``
  per map in one growing context, under ``schedule``.
- ``non_stationary``: map A (the first ``n_maps`` held-out ID maps, i.e. the ID condition's maps) for
  ``n_episodes``, then map B (the next ``n_maps``) for ``n_episodes`` in the same context, switched by
  ``reset(options={"desc": B})``; the schedule restarts on map B.
- ``stitching``: the paper's map ``STITCHING_MAP`` with its two hand-written demonstrations in context, then
  ``STITCHING_EPISODES`` fully greedy episodes (the schedule argument does not apply), plus a generated family
  of such tasks (:func:`stitching_family`). The start is forced by the map itself: tile 8 is the paper map's
  only ``S``, and a family map keeps only one ``S``. Success means reaching the goal.

Every agent plays the same maps with the same reset seeds (map ``i`` from ``seed + i``) and the same
exploration stream ``default_rng(seed)``, so all see the same start tiles. The model runs as trained
(``icrl``), with its adapter off (``untrained``) and, for ID/OOD, with its context wiped before every episode
(``icrl_wiped``). Baselines are those of :data:`~trl_icrl.baselines.BASELINES`; the oracle always acts
greedily (it is the reference of the regret, a ramp would only measure the ramp). The tabular learners
cannot read a context, so on stitching they ``observe`` the demonstrations' transitions before play.

Regret is the mean over maps and played episodes of ``optimal_return(gamma=1)`` of the episode's map (the
oracle's success-based return) minus the episode's return.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .agent import ICRLAgent
from .baselines import BASELINES, play_agents
from .env_codec import EnvCodec
from .envs import (
    PAPER_STITCHING_DEMOS,
    STITCHING_MAP,
    Demonstration,
    Map,
    NonStationarySchedule,
    ParametricFrozenLake,
    heldout_maps,
    stitching_family,
)
from .envs.frozen_lake_maps import _moves
from .evaluation import evaluate_model, frozen_lake_envs, summarize
from .exploration import ExplorationSchedule
from .play import RolloutResult, play_seeds
from .plotting import plot_icrl_curves, plot_trajectories
from .protocol import Episode

CONDITIONS = ("in_distribution", "out_of_distribution", "non_stationary", "stitching")
DEFAULT_BASELINES = ("random", "q_learning_zero_init", "q_learning_optimistic", "oracle")
STITCHING_EPISODES = 5
"""Fully greedy episodes after the demonstrations, as in the paper."""
TRAINED, UNTRAINED, WIPED = "icrl", "untrained", "icrl_wiped"
GREEDY = ExplorationSchedule.parse("greedy")


def demonstration_episode(demo: Demonstration, desc: Map, codec: EnvCodec) -> Episode:
    """A demonstration as a protocol ``Episode``, observations written by ``codec``."""
    env = ParametricFrozenLake(desc=desc)
    steps = demo.transitions(desc)
    return Episode(observations=[codec.observation_text(env, s[0]) for s in steps],
                   actions=[s[1] for s in steps], rewards=[s[2] for s in steps], terminated=True,
                   final_observation=codec.observation_text(env, steps[-1][3]))


@dataclass
class _Task:
    """One condition as every agent plays it; arrays are (n_maps, n_episodes)."""

    condition: str
    maps: list[Map]
    n_episodes: int
    schedule: ExplorationSchedule
    optimal_returns: np.ndarray
    info: dict
    trajectory: tuple[Map, int, int]
    """Map 0's map and the [first, last) played episodes whose early and late paths are drawn."""
    reset_options: Callable[[int, int], dict | None] | None = None
    demonstrations: list[tuple[Demonstration, ...]] | None = None


def _optimal_returns(maps: Sequence[Map], n_episodes: int) -> np.ndarray:
    """(n_maps, n_episodes) optimal return of each map, repeated per episode."""
    returns = [ParametricFrozenLake(desc=m).optimal_return(gamma=1.0) for m in maps]
    return np.repeat(np.asarray(returns)[:, None], n_episodes, axis=1)


def _make_task(condition: str, n_maps: int, n_episodes: int, schedule: ExplorationSchedule,
               seed: int) -> _Task:
    if condition in ("in_distribution", "out_of_distribution"):
        maps = heldout_maps("id" if condition == "in_distribution" else "ood", n_maps, seed)
        return _Task(condition, maps, n_episodes, schedule, _optimal_returns(maps, n_episodes),
                     {"maps": ["/".join(m) for m in maps]}, (maps[0], 0, n_episodes))
    if condition == "non_stationary":
        maps = heldout_maps("id", 2 * n_maps, seed)
        first, second = maps[:n_maps], maps[n_maps:]
        twice = ExplorationSchedule([schedule.greedy_probability(e) for e in range(n_episodes)] * 2)
        optimal = np.concatenate([_optimal_returns(first, n_episodes), _optimal_returns(second, n_episodes)],
                                 axis=1)
        switches = [NonStationarySchedule(a, b, switch_after=n_episodes) for a, b in zip(first, second)]
        return _Task(condition, first, 2 * n_episodes, twice, optimal,
                     {"maps_a": ["/".join(m) for m in first], "maps_b": ["/".join(m) for m in second],
                      "switch_after": n_episodes}, (second[0], n_episodes, 2 * n_episodes),
                     reset_options=lambda i, e: switches[i].reset_options(e))
    if condition == "stitching":
        family = stitching_family(n_maps, seed)
        maps = [STITCHING_MAP] + [m for m, _ in family]
        demos = [PAPER_STITCHING_DEMOS] + [d for _, d in family]
        info = {"maps": ["/".join(m) for m in maps[1:]], "paper_map": "/".join(STITCHING_MAP),
                "demonstrations": [[{"start": d.start, "actions": list(d.actions)} for d in pair]
                                   for pair in demos]}
        return _Task(condition, maps, STITCHING_EPISODES, GREEDY, _optimal_returns(maps, STITCHING_EPISODES),
                     info, (STITCHING_MAP, 0, STITCHING_EPISODES), demonstrations=demos)
    raise ValueError(f"unknown condition {condition!r}: expected one of {CONDITIONS}")


def _rows(result: RolloutResult, rows: slice) -> RolloutResult:
    """The maps ``rows`` of a result."""
    return RolloutResult(result.trials[rows], result.returns[rows], result.successes[rows],
                         result.lengths[rows], result.env_steps)


def _summary(task: _Task, result: RolloutResult) -> dict:
    """``summarize`` plus regret, and the condition's own numbers (map B, paper map / family)."""
    optimal = task.optimal_returns
    if task.condition == "stitching":
        paper, result, optimal = _rows(result, slice(0, 1)), _rows(result, slice(1, None)), optimal[1:]
    summary = summarize(result)
    summary["regret"] = float(np.nanmean(optimal - result.returns))
    if task.condition == "non_stationary":
        switch = task.info["switch_after"]
        summary["map_b_final10_success"] = float(np.nanmean(result.successes[:, switch:][:, -10:]))
    if task.condition == "stitching":
        summary["paper_map_successes"] = int(np.nansum(paper.successes))
        summary["family_success_rate"] = summary["mean_success"]
    return summary


def _play_baseline(name: str, task: _Task, seed: int, is_slippery: bool) -> RolloutResult:
    """A baseline on the task's maps; learners first observe the task's demonstrations."""
    envs = frozen_lake_envs(task.maps, is_slippery)
    agent_rng = np.random.default_rng([seed, 1])
    agents = [BASELINES[name](env, agent_rng) for env in envs]
    for agent, m, demos in zip(agents, task.maps, task.demonstrations or [()] * len(agents), strict=True):
        for demo in demos:
            for transition in demo.transitions(m):
                agent.observe(*transition)
    rng, reset_seeds = play_seeds(seed, len(envs))
    return play_agents(agents, envs, task.n_episodes, GREEDY if name == "oracle" else task.schedule, rng,
                       reset_seeds=reset_seeds, reset_options=task.reset_options)


def _play_model(agent: ICRLAgent, task: _Task, seed: int, use_adapter: bool = True,
                wipe_context: bool = False, progress: bool = False) -> RolloutResult:
    """The model on the task's maps, the demonstrations written into each context first."""
    prefixes = None
    if task.demonstrations:
        prefixes = [[demonstration_episode(d, m, agent.env_adapter) for d in demos]
                    for m, demos in zip(task.maps, task.demonstrations, strict=True)]
    return evaluate_model(agent.engine(), task.maps, task.n_episodes, task.schedule, seed=seed,
                          use_adapter=use_adapter, reset_options=task.reset_options, prefixes=prefixes,
                          wipe_context=wipe_context, is_slippery=bool(agent.config.get("is_slippery", False)),
                          progress=progress)


def _observation_tile(text: str, ncol: int) -> int:
    """Tile of an observation text, ``"r2 c3"`` (coords) or ``"11"`` (index)."""
    if text.startswith("r"):
        row, col = (int(word[1:]) for word in text.split())
        return row * ncol + col
    return int(text)


def _trajectory(agent: ICRLAgent, task: _Task, result: RolloutResult) -> dict:
    """Tile paths on map 0 of the first and last visible episodes of the task's trajectory range.

    Parsed from the trained agent's trial; where a format does not write the tile a terminated episode ends
    on, it follows the last action without slipping.
    """
    desc, first, end = task.trajectory
    parsed = agent.protocol.parse(result.trials[0].input_ids)
    played = parsed[-task.n_episodes:]  # demonstrations come first; a full context drops the oldest episodes
    offset = task.n_episodes - len(played)
    moves = _moves(len(desc), len(desc[0]))
    paths = {}
    for e in (max(first, offset), end - 1):
        episode = played[e - offset]
        tiles = [_observation_tile(o, len(desc[0])) for o in episode.observations]
        tiles.append(_observation_tile(episode.final_observation, len(desc[0])) if episode.final_observation
                     else moves[tiles[-1]][episode.actions[-1]])
        paths[f"episode {e}"] = tiles
    return {"map": "/".join(desc), "paths": paths}


def _evaluate(task: _Task, models: Mapping[str, tuple[ICRLAgent, dict]], baselines: Sequence[str], seed: int,
              is_slippery: bool, progress: bool) -> dict:
    """Play every model (``name -> (agent, evaluate_model options)``) and baseline; the condition's result."""
    runs = {name: _play_model(agent, task, seed, progress=progress, **options)
            for name, (agent, options) in models.items()}
    runs.update({name: _play_baseline(name, task, seed, is_slippery) for name in baselines})
    out = {"condition": task.condition, "n_episodes": task.n_episodes,
           "schedule": list(task.schedule.probabilities), **task.info,
           "agents": {name: _summary(task, result) for name, result in runs.items()}}
    if TRAINED in runs:
        out["trajectory"] = _trajectory(models[TRAINED][0], task, runs[TRAINED])
    return out


def evaluate_condition(agent: ICRLAgent | None, condition: str, n_maps: int = 50, n_episodes: int = 30,
                       schedule: ExplorationSchedule | str = "paper_ramp", seed: int = 0,
                       baselines: Sequence[str] = DEFAULT_BASELINES, include_untrained: bool = True,
                       include_wiped: bool = True, progress: bool = True) -> dict:
    """One condition of the protocol (see the module docstring); JSON-able.

    Returns ``{"condition", "n_episodes", "schedule", <maps>, "agents": {name: summarize(...) + "regret"},
    "trajectory"}`` (``trajectory`` only with a trained agent). Agents: ``icrl``, ``untrained``,
    ``icrl_wiped`` (ID/OOD only) when ``agent`` is given, then ``baselines``. Extra per-agent numbers:
    ``map_b_final10_success`` (non-stationary), ``paper_map_successes`` (out of 5) and
    ``family_success_rate`` (stitching; the curves and other numbers are the family's). For stitching,
    ``n_maps`` is the family size and ``n_episodes``/``schedule`` do not apply.
    """
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}: expected some of {sorted(BASELINES)}")
    schedule = ExplorationSchedule.parse(schedule) if isinstance(schedule, str) else schedule
    task = _make_task(condition, n_maps, n_episodes, schedule, seed)
    models: dict[str, tuple[ICRLAgent, dict]] = {}
    if agent is not None:
        models[TRAINED] = (agent, {})
        if include_untrained:
            models[UNTRAINED] = (agent, {"use_adapter": False})
        if include_wiped and condition in ("in_distribution", "out_of_distribution"):
            models[WIPED] = (agent, {"wipe_context": True})
    is_slippery = bool(agent.config.get("is_slippery", False)) if agent is not None else False
    return _evaluate(task, models, baselines, seed, is_slippery, progress)


def evaluate_data_quality(agents: Mapping[str, ICRLAgent], n_maps: int = 50, n_episodes: int = 30,
                          schedule: ExplorationSchedule | str = "paper_ramp", seed: int = 0,
                          baselines: Sequence[str] = ("random", "oracle"), progress: bool = True) -> dict:
    """The ID condition for models trained on offline data of different quality (e.g. ``{"low": ...,
    "mixed": ..., "high": ...}``): one curve per model, plus ``baselines`` as references. JSON-able, shaped
    as :func:`evaluate_condition`'s result with condition ``"data_quality"`` and no trajectory."""
    schedule = ExplorationSchedule.parse(schedule) if isinstance(schedule, str) else schedule
    task = _make_task("in_distribution", n_maps, n_episodes, schedule, seed)
    task.condition = "data_quality"
    is_slippery = any(bool(a.config.get("is_slippery", False)) for a in agents.values())
    models = {name: (agent, {}) for name, agent in agents.items()}
    return _evaluate(task, models, baselines, seed, is_slippery, progress)


_SHORT = {"in_distribution": "ID", "out_of_distribution": "OOD", "non_stationary": "non-stationary",
          "stitching": "stitching", "data_quality": "data quality"}


def _summary_table(conditions: Mapping[str, Mapping]) -> str:
    """Markdown: one row per agent; per condition final-10 success, episodes to first success, regret
    (and map-B final-10, paper-map successes /5, family success rate where they apply)."""
    columns = []  # (condition, key, header, format)
    for name in conditions:
        short = _SHORT.get(name, name)
        columns += [(name, "final10_success", f"{short} final-10", "{:.2f}"),
                    (name, "episodes_to_first_success", f"{short} 1st success", "{:.1f}"),
                    (name, "regret", f"{short} regret", "{:.2f}")]
        if name == "non_stationary":
            columns.append((name, "map_b_final10_success", "map B final-10", "{:.2f}"))
        if name == "stitching":
            columns += [(name, "paper_map_successes", f"paper map /{STITCHING_EPISODES}", "{}"),
                        (name, "family_success_rate", "family success", "{:.2f}")]
    agents = list(dict.fromkeys(a for result in conditions.values() for a in result["agents"]))
    lines = ["| agent | " + " | ".join(c[2] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for agent in agents:
        cells = []
        for condition, key, _, fmt in columns:
            summary = conditions[condition]["agents"].get(agent)
            cells.append(fmt.format(summary[key]) if summary is not None else "-")
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(results: Mapping, output_dir: str | os.PathLike) -> None:
    """Write ``results`` (``{"conditions": {name: evaluate_condition(...)}, ...}``) to ``output_dir``:
    ``results.json``, ``<condition>.png`` (success vs episode index, every agent, 95% bands),
    ``<condition>_trajectories.png`` (early and late path of the trained agent, when recorded) and
    ``summary.md``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    conditions = results["conditions"]
    for name, result in conditions.items():
        n_maps = len(result.get("maps", result.get("maps_a", ())))
        plot_icrl_curves(result["agents"], output_dir / f"{name}.png",
                         title=f"{_SHORT.get(name, name)}: {n_maps} maps")
        if "trajectory" in result:
            trajectory = result["trajectory"]
            plot_trajectories(trajectory["map"].split("/"), trajectory["paths"],
                              output_dir / f"{name}_trajectories.png",
                              title=f"{_SHORT.get(name, name)}: {TRAINED}, map 0")
    (output_dir / "summary.md").write_text(f"# In-context RL evaluation\n\n{_summary_table(conditions)}")
