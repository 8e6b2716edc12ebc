"""The leave-one-family-out table and figure, from ``evaluate_envs.py`` outputs: for each env family, the model
trained without it against the model trained on every family, random play and tabular Q-learning, on that family's
held-out maps under the first schedule the evaluations share.

    python experiments/leave_one_out.py --general experiments/runs/tiny_general_normalised \\
        --left_out trl_icrl/ParametricFrozenLake-v0=experiments/runs/tiny_general_without_frozen_lake \\
                   trl_icrl/ParametricCliffWalking-v0=experiments/runs/tiny_general_without_cliff \\
                   trl_icrl/RandomMDP-v0=experiments/runs/tiny_general_without_mdps_seed1 \\
        --output_dir experiments/runs/leave_one_out

Each directory holds the ``envs.json`` of ``evaluate_envs.py`` run with every family. Writes ``leave_one_out.md``
(first-10 / final-10 success and episodes to the first success) and ``leave_one_out.png`` (success per episode in
context) to ``output_dir``.
"""

import argparse
import json
from pathlib import Path

from trl_icrl.evaluation.envs import ENV_BASELINES, in_context_cell
from trl_icrl.plotting import plot_icrl_panels


def read_evaluation(directory: str) -> dict:
    """``directory/envs.json``: its ``rows`` and the ``map_families`` they played."""
    path = Path(directory) / "envs.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run recipes/evaluate_envs.py --output_dir {directory} first")
    return json.loads(path.read_text())


def players(env_id: str, left_out: dict, general: dict, schedule: str) -> dict:
    """Summary per player on ``env_id``'s held-out maps: the model left without it, the general model, baselines;
    both evaluations must have played the same family of maps."""
    row = f"{env_id} held-out"
    for name, evaluation in (("left out", left_out), ("general", general)):
        if row not in evaluation["rows"] or schedule not in evaluation["rows"][row]:
            raise ValueError(f"the {name} model's evaluation has no {row!r} row under {schedule!r}: evaluate it "
                             f"with --families {env_id}")
    families = [(evaluation.get("map_families") or {}).get(env_id) for evaluation in (left_out, general)]
    if None not in families and families[0] != families[1]:
        raise ValueError(f"the left-out model played {env_id}'s {families[0]!r} maps and the general model its "
                         f"{families[1]!r} maps: evaluate both with --map_families {env_id}=FAMILY")
    left_out_row, general_row = left_out["rows"][row][schedule], general["rows"][row][schedule]
    return {"left out": left_out_row["icrl"], "trained on all": general_row["icrl"],
            **{name: general_row[name] for name in ENV_BASELINES}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--general", required=True, help="evaluation of the model trained on every family")
    parser.add_argument("--left_out", nargs="+", required=True, metavar="ENV_ID=DIR",
                        help="a family's env id and the evaluation of the model trained without it")
    parser.add_argument("--schedule", default="paper_ramp")
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args()
    pairs = [spec.split("=", 1) for spec in args.left_out]
    if any(len(pair) != 2 for pair in pairs):
        parser.error("--left_out takes ENV_ID=DIR pairs")
    general = read_evaluation(args.general)
    panels = {env_id: players(env_id, read_evaluation(directory), general, args.schedule)
              for env_id, directory in pairs}
    names = list(next(iter(panels.values())))
    lines = [f"| held-out family ({args.schedule}: first-10 / final-10 / episodes to first success) | "
             + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {env_id} | " + " | ".join(in_context_cell(curves[n]) for n in names) + " |"
              for env_id, curves in panels.items()]
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "leave_one_out.md").write_text("\n".join(lines) + "\n")
    plot_icrl_panels({f"{env_id} (left out)": {n: curves[n] for n in ("left out", "trained on all", "random",
                                                                       "q_learning_optimistic")}
                      for env_id, curves in panels.items()}, output / "leave_one_out.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
