"""Held-out final-10 success against minutes or updates of training, for several runs on one figure.

    python recipes/plot_learning_curves.py --x updates --output results/learning_curves.png \
        library=results/tiny_full_finetune_online/short_eval.json reference=results/reference/curve-40min.txt

A ``.json`` is a run's ``short_eval.json`` (its ``log_history`` holds ``heldout_final10`` against
``train_minutes`` when it trained with ``eval_every_minutes``; the final ``trained`` evaluation closes the
curve). Any other file is a log of lines ``eval t <seconds> {...}`` and ``FINAL upd <updates> time <seconds> {...}``
with ``final10`` in each JSON, and ``it <n> t <seconds>s upd <updates>`` lines from which the updates at an
evaluation are read (the last ``it`` line before it), as the single-file reference experiment writes them.
"""

import argparse
import json
import re
from pathlib import Path

from trl_icrl.plotting import plot_learning_curves

XLABELS = {"minutes": "minutes of training (wall clock)", "updates": "DQN updates (batches of 8 trials)"}


def run_curve(path: Path) -> list[tuple[float, int, float]]:
    """(minutes, updates, final-10) points of one run."""
    if path.suffix == ".json":
        report = json.loads(path.read_text())
        history = report["log_history"]
        points = [(log["train_minutes"], log["step"], log["heldout_final10"])
                  for log in history if "heldout_final10" in log]
        if "trained" in report and history:
            points.append((history[-1].get("train_runtime", 0.0) / 60, history[-1]["step"],
                           report["trained"]["final10_success"]))
        if "untrained" in report:
            points.insert(0, (0.0, 0, report["untrained"]["final10_success"]))
        return points
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
    cli = parser.parse_args()
    curves = {}
    for run in cli.runs:
        name, _, path = run.partition("=")
        points = run_curve(Path(path))
        print(name, [(round(m, 1), u, round(s, 3)) for m, u, s in points])
        curves[name] = [(m if cli.x == "minutes" else u, s) for m, u, s in points]
    plot_learning_curves(curves, cli.output, title=cli.title, xlabel=XLABELS[cli.x])


if __name__ == "__main__":
    main()
