"""The evaluation suite: a trained in-context agent against baselines on the same maps, seeds and exploration
schedule, per condition (:mod:`~trl_icrl.evaluation.conditions`).

Every agent plays through :func:`~trl_icrl.agent.play.play` with the seeds of
:func:`~trl_icrl.agent.play.play_seeds`, so all see the same start tiles. Baselines are those of
:data:`~trl_icrl.baselines.BASELINES`; the oracle always acts greedily (it is the reference of the regret, a ramp
would only measure the ramp). The tabular learners cannot read a context, so on stitching they ``observe`` the
demonstrations' transitions before play.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext

import numpy as np

from ..agent.exploration import ExplorationSchedule
from ..agent.icrl_agent import ICRLAgent
from ..agent.play import RolloutResult, play_seeds
from ..agent.rollout_engine import RolloutEngine
from ..baselines import BASELINES, play_agents
from ..envs import ENV_ID, Map, frozen_lake_envs, make_env
from ..protocol import Episode
from .conditions import GREEDY, TRAINED, UNTRAINED, WIPED, Condition, demonstration_episode, make_condition
from .metrics import condition_summary, trajectory

DEFAULT_BASELINES = ("random", "q_learning_zero_init", "q_learning_optimistic", "oracle")


def evaluate_model(engine: RolloutEngine, maps: Sequence[Map], n_episodes: int = 30,
                   schedule: ExplorationSchedule | str = "paper_ramp", seed: int = 0, use_adapter: bool = True,
                   reset_options: Callable[[int, int], dict | None] | None = None,
                   prefixes: Sequence[Sequence[Episode]] | None = None, wipe_context: bool = False,
                   is_slippery: bool = False, progress: bool = False, env_id: str = ENV_ID) -> RolloutResult:
    """Play ``n_episodes`` per map of ``env_id`` (the parametric Frozen Lake by default, or another env with generated
    maps) in one context per map (or a fresh context per episode if ``wipe_context``).

    ``use_adapter=False`` plays the untrained model: the base with the adapter (and its Q head) at init, or,
    with full fine-tuning, the initial weights.
    Seeds: :func:`~trl_icrl.agent.play.play_seeds` of ``seed``.
    """
    schedule = ExplorationSchedule.parse(schedule) if isinstance(schedule, str) else schedule
    envs = [make_env(env_id, is_slippery=is_slippery, desc=m) for m in maps]
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


def _play_baseline(name: str, condition: Condition, seed: int, is_slippery: bool) -> RolloutResult:
    """A baseline on the condition's maps; learners first observe its demonstrations."""
    envs = frozen_lake_envs(condition.maps, is_slippery)
    agent_rng = np.random.default_rng([seed, 1])
    agents = [BASELINES[name](env, agent_rng) for env in envs]
    for agent, m, demos in zip(agents, condition.maps, condition.demonstrations or [()] * len(agents), strict=True):
        for demo in demos:
            for transition in demo.transitions(m):
                agent.observe(*transition)
    rng, reset_seeds = play_seeds(seed, len(envs))
    return play_agents(agents, envs, condition.n_episodes, GREEDY if name == "oracle" else condition.schedule, rng,
                       reset_seeds=reset_seeds, reset_options=condition.reset_options)


def _play_model(agent: ICRLAgent, condition: Condition, seed: int, use_adapter: bool = True,
                wipe_context: bool = False, progress: bool = False) -> RolloutResult:
    """The model on the condition's maps, the demonstrations written into each context first."""
    prefixes = None
    if condition.demonstrations:
        prefixes = [[demonstration_episode(d, m, agent.env_codec) for d in demos]
                    for m, demos in zip(condition.maps, condition.demonstrations, strict=True)]
    return evaluate_model(agent.engine(), condition.maps, condition.n_episodes, condition.schedule, seed=seed,
                          use_adapter=use_adapter, reset_options=condition.reset_options, prefixes=prefixes,
                          wipe_context=wipe_context, is_slippery=agent.config.is_slippery,
                          progress=progress)


def _evaluate(condition: Condition, models: Mapping[str, tuple[ICRLAgent, dict]], baselines: Sequence[str], seed: int,
              is_slippery: bool, progress: bool) -> dict:
    """Play every model (``name -> (agent, evaluate_model options)``) and baseline; the condition's result."""
    runs = {name: _play_model(agent, condition, seed, progress=progress, **options)
            for name, (agent, options) in models.items()}
    runs.update({name: _play_baseline(name, condition, seed, is_slippery) for name in baselines})
    out = {"condition": condition.condition, "n_episodes": condition.n_episodes,
           "schedule": list(condition.schedule.probabilities), **condition.info,
           "agents": {name: condition_summary(condition, result) for name, result in runs.items()}}
    if TRAINED in runs:
        out["trajectory"] = trajectory(models[TRAINED][0].protocol, condition, runs[TRAINED])
    return out


def evaluate_condition(agent: ICRLAgent | None, condition: str, n_maps: int = 50, n_episodes: int = 30,
                       schedule: ExplorationSchedule | str = "paper_ramp", seed: int = 0,
                       baselines: Sequence[str] = DEFAULT_BASELINES, include_untrained: bool = True,
                       include_wiped: bool = True, progress: bool = True, split: str = "heldout") -> dict:
    """One condition of the suite (:mod:`~trl_icrl.evaluation.conditions`) on the maps of ``split``
    (``"heldout"`` or ``"validation"``); JSON-able.

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
    played = make_condition(condition, n_maps, n_episodes, schedule, seed, split)
    models: dict[str, tuple[ICRLAgent, dict]] = {}
    if agent is not None:
        models[TRAINED] = (agent, {})
        if include_untrained:
            models[UNTRAINED] = (agent, {"use_adapter": False})
        if include_wiped and condition in ("in_distribution", "out_of_distribution"):
            models[WIPED] = (agent, {"wipe_context": True})
    is_slippery = agent.config.is_slippery if agent is not None else False
    return _evaluate(played, models, baselines, seed, is_slippery, progress)


def evaluate_data_quality(agents: Mapping[str, ICRLAgent], n_maps: int = 50, n_episodes: int = 30,
                          schedule: ExplorationSchedule | str = "paper_ramp", seed: int = 0,
                          baselines: Sequence[str] = ("random", "oracle"), progress: bool = True) -> dict:
    """The ID condition for models trained on offline data of different quality (e.g. ``{"low": ...,
    "mixed": ..., "high": ...}``): one curve per model, plus ``baselines`` as references. JSON-able, shaped
    as :func:`evaluate_condition`'s result with condition ``"data_quality"`` and no trajectory."""
    schedule = ExplorationSchedule.parse(schedule) if isinstance(schedule, str) else schedule
    condition = make_condition("in_distribution", n_maps, n_episodes, schedule, seed)
    condition.condition = "data_quality"
    is_slippery = any(a.config.is_slippery for a in agents.values())
    models = {name: (agent, {}) for name, agent in agents.items()}
    return _evaluate(condition, models, baselines, seed, is_slippery, progress)
