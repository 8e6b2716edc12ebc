"""Evaluate a trained agent on any Discrete env: the held-out maps of each env family and gymnasium's canonical
instances, against tabular Q-learning and random play on the same envs and episodes.

    python recipes/evaluate_envs.py --model outputs/tiny_general --output_dir outputs/tiny_general
    python recipes/evaluate_envs.py --model outputs/tiny_general --families trl_icrl/RandomMDP-v0 --canonical
    python recipes/evaluate_envs.py --model outputs/tiny_mdp_only --observation_format index \
        --action_words north east south west --output_dir outputs/tiny_mdp_only/as_mdps

The held-out maps of an env family are those of the family the model trained on for that env (else the env's
first family; ``--map_families`` chooses). ``--observation_format`` and ``--action_words`` write every env another
way than its own, e.g. each grid as state ids with the actions named as a model trained on random MDPs knows them.
Each row plays one context of ``n_episodes`` per env under ``schedule`` (the paper's ramp) and once greedily;
success is an episode that ends at a goal (for CliffWalking, whose rewards are all negative, reaching the goal;
its mean return is reported too, -13 being optimal). Writes ``envs.json``, ``envs.md`` (final-10 success and return
under each schedule; first-10, final-10 and episodes to the first success under the first) and ``envs.png`` (success
per episode in context under the first schedule: the agent against tabular Q-learning and random play) to
``output_dir``.
"""

import argparse
import json
from pathlib import Path

from trl_icrl.agent import ICRLAgent
from trl_icrl.envs import CLIFF_ENV_ID, ENV_ID, MDP_ENV_ID
from trl_icrl.envs.families import first_family, trained_map_families
from trl_icrl.evaluation.envs import (
    CANONICAL_ENVS,
    ENV_BASELINES,
    canonical_envs,
    evaluate_envs,
    heldout_envs,
    in_context_cell,
)
from trl_icrl.plotting import plot_icrl_panels

FAMILY_ENVS = (ENV_ID, CLIFF_ENV_ID, MDP_ENV_ID)
CANONICAL_ENV_IDS = {"FrozenLake-v1 4x4": "FrozenLake-v1", "FrozenLake-v1 8x8": "FrozenLake-v1",
                     "CliffWalking-v1": "CliffWalking-v1"}


def table(results: dict) -> str:
    """One markdown row per (envs, schedule): final-10 success (and return) of the agent and each baseline."""
    names = ["icrl", *ENV_BASELINES]
    lines = ["| envs | schedule | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for row, schedules in results.items():
        for schedule, agents in schedules.items():
            cells = [f"{agents[n]['final10_success']:.3f} ({agents[n]['final10_return']:.1f})" if n in agents else "-"
                     for n in names]
            lines.append(f"| {row} | {schedule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def in_context_table(results: dict, schedule: str) -> str:
    """One markdown row per envs under ``schedule``: each player's ``in_context_cell``."""
    names = ["icrl", *ENV_BASELINES]
    lines = [f"| envs ({schedule}: first-10 / final-10 / episodes to first success) | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for row, schedules in results.items():
        agents = schedules[schedule]
        cells = [in_context_cell(agents[n]) if n in agents else "-" for n in names]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heldout_families(agent: ICRLAgent, env_ids: list[str], chosen: list[str]) -> dict[str, str]:
    """The family of held-out maps of each env: ``ENV_ID=FAMILY`` in ``chosen``, else the family the agent trained
    on for it, else the env's first."""
    trained = trained_map_families(agent.config.trained_env_ids or [agent.config.env_id], agent.config.map_family)
    families = {env_id: trained.get(env_id, first_family(env_id)) for env_id in env_ids}
    for spec in chosen:
        env_id, _, family = spec.partition("=")
        if env_id not in families or not family:
            raise ValueError(f"--map_families takes ENV_ID=FAMILY with ENV_ID one of {env_ids}, got {spec!r}")
        families[env_id] = family
    return families


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="directory (or hub id) written by DQNTrainer")
    parser.add_argument("--families", nargs="*", default=list(FAMILY_ENVS), help="env ids with generated maps")
    parser.add_argument("--canonical", nargs="*", default=list(CANONICAL_ENVS), choices=list(CANONICAL_ENVS),
                        help="gymnasium instances to play")
    parser.add_argument("--map_families", nargs="*", default=[], metavar="ENV_ID=FAMILY",
                        help="family of held-out maps of an env (default: the one the model trained on)")
    parser.add_argument("--observation_format", choices=["coords", "index"], help="write every env this way")
    parser.add_argument("--action_words", nargs="+", help="name every env's actions with these words")
    parser.add_argument("--n_maps", type=int, default=50, help="held-out maps per family")
    parser.add_argument("--n_contexts", type=int, default=16, help="contexts per canonical instance")
    parser.add_argument("--n_episodes", type=int, default=30)
    parser.add_argument("--schedules", nargs="+", default=["paper_ramp", "greedy"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args()
    agent = ICRLAgent.from_pretrained(args.model)
    families = heldout_families(agent, args.families, args.map_families)
    rows = {f"{env_id} held-out": (env_id, heldout_envs(env_id, family, args.n_maps, args.seed))
            for env_id, family in families.items()}
    rows.update({name: (CANONICAL_ENV_IDS[name], canonical_envs(name, args.n_contexts)) for name in args.canonical})
    results = {}
    for row, (env_id, make_envs) in rows.items():
        player = agent.for_env(env_id, args.observation_format, action_words=args.action_words)
        results[row] = {schedule: evaluate_envs(player, make_envs, args.n_episodes, schedule, args.seed)
                        for schedule in args.schedules}
        print(f"{row}: " + ", ".join(f"{s} {r['icrl']['final10_success']:.3f}" for s, r in results[row].items()),
              flush=True)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    written = {"observation_format": args.observation_format, "action_words": args.action_words}
    (output / "envs.json").write_text(json.dumps({"model": args.model, "n_episodes": args.n_episodes,
                                                  "seed": args.seed, "map_families": families, **written,
                                                  "rows": results}, indent=1))
    first = args.schedules[0]
    setting = "Held-out maps: " + ", ".join(f"{env_id} `{family}`" for env_id, family in families.items()) + "."
    if args.observation_format or args.action_words:
        setting += (f" Every env written with observation_format={args.observation_format or 'its own'}, "
                    f"action_words={' '.join(args.action_words) if args.action_words else 'its own'}.")
    (output / "envs.md").write_text(setting + "\n\n" + table(results) + "\n\n" + in_context_table(results, first)
                                    + "\n")
    plot_icrl_panels({row: {name: results[row][first][name] for name in ("icrl", "q_learning_optimistic", "random")}
                      for row in results}, output / "envs.png")
    print(table(results), in_context_table(results, first), sep="\n\n")


if __name__ == "__main__":
    main()
