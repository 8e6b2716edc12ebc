"""Held-out final-10 success against minutes or updates of training, for several runs on one figure.

    python experiments/plot_learning_curves.py --x updates --output experiments/runs/learning_curves.png \
        library=results/tiny_full_finetune_online/short_eval.json reference=experiments/runs/reference/curve-40min.txt

A ``.json`` is a run's ``short_eval.json`` (its ``log_history`` holds ``heldout_final10`` against
``train_minutes`` when it trained with ``eval_every_minutes``; the final ``trained`` evaluation closes the
curve). Any other file is a log of lines ``eval t <seconds> {...}`` and ``FINAL upd <updates> time <seconds> {...}``
with ``final10`` in each JSON, and ``it <n> t <seconds>s upd <updates>`` lines from which the updates at an
evaluation are read (the last ``it`` line before it), as the single-file reference experiment writes them.

``--per_env`` draws one panel per env of runs trained on several (``heldout_final10/<env id>`` in the log history,
``final10_by_env`` in the final evaluation):

    python experiments/plot_learning_curves.py --per_env --output experiments/runs/general_curves.png \
        tiny=experiments/runs/tiny_general/short_eval.json \
        general=experiments/runs/tiny_general_on_general_base/short_eval.json
"""

import argparse
import json
import re
from pathlib import Path

from trl_icrl.plotting import plot_learning_curve_panels, plot_learning_curves

XLABELS = {"minutes": "minutes of training (wall clock)", "updates": "DQN updates (batches of 8 trials)"}


def env_ids(path: Path) -> list[str]:
    """The envs a run's ``short_eval.json`` reports one by one (none for a run on one env or a log)."""
    if path.suffix != ".json":
        return []
    history = json.loads(path.read_text())["log_history"]
    return list(dict.fromkeys(key.partition("/")[2] for log in history for key in log
                              if key.startswith("heldout_final10/")))


def run_curve(path: Path, env_id: str | None = None) -> list[tuple[float, int, float]]:
    """(minutes, updates, final-10) points of one run: over every env, or over ``env_id`` alone."""
    if path.suffix == ".json":
        report = json.loads(path.read_text())
        history = report["log_history"]
        key = f"heldout_final10/{env_id}" if env_id else "heldout_final10"
        points = [(log["train_minutes"], log["step"], log[key]) for log in history if key in log]

        def final10(summary: dict) -> float:
            return summary["final10_by_env"][env_id] if env_id else summary["final10_success"]

        if "trained" in report and history:
            points.append((history[-1].get("train_runtime", 0.0) / 60, history[-1]["step"],
                           final10(report["trained"])))
        if "untrained" in report:
            points.insert(0, (0.0, 0, final10(report["untrained"])))
        return points
    if env_id:
        raise ValueError(f"{path} is a log of one env: --per_env reads runs' short_eval.json")
    points, updates = [], 0
    for line in path.read_text().splitlines():
        if match := re.match(r"it \d+ t \d+s upd (\d+)", line):
            updates = int(match.group(1))
        elif match := re.match(r"(eval t (\d+)|FINAL upd (\d+) time (\d+)) (\{.*\})$", line):
            seconds = float(match.group(2) or match.group(4))
            updates = int(match.group(3) or updates)
            points.append((seconds / 60, updates, json.loads(match.group(5))["final10"]))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="NAME=PATH, one per run")
    parser.add_argument("--output", required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--x", choices=("minutes", "updates"), default="minutes", help="the horizontal axis")
    parser.add_argument("--per_env", action="store_true", help="one panel per env of runs trained on several")
    cli = parser.parse_args()
    runs = {name: Path(path) for name, _, path in (run.partition("=") for run in cli.runs)}
    run_envs = {name: env_ids(path) for name, path in runs.items()}

    def curves(env_id: str | None) -> dict[str, list[tuple[float, float]]]:
        drawn = {}
        for name, path in runs.items():
            if env_id and env_id not in run_envs[name]:
                continue
            points = run_curve(path, env_id)
            print(env_id or "", name, [(round(m, 1), u, round(s, 3)) for m, u, s in points])
            drawn[name] = [(m if cli.x == "minutes" else u, s) for m, u, s in points]
        return drawn

    if not cli.per_env:
        plot_learning_curves(curves(None), cli.output, title=cli.title, xlabel=XLABELS[cli.x])
        return
    envs = list(dict.fromkeys(env for found in run_envs.values() for env in found))
    if not envs:
        parser.error("--per_env needs runs trained on several envs (heldout_final10/<env id> in their log history)")
    plot_learning_curve_panels({env: curves(env) for env in envs}, cli.output, xlabel=XLABELS[cli.x])


if __name__ == "__main__":
    main()
