"""Held-out final-10 success against minutes of training, for several runs on one figure.

    python recipes/plot_learning_curves.py --output results/learning_curves.png \
        library=results/tiny_results_adapter/short_eval.json reference=results/reference/curve-40min.txt

A ``.json`` is a run's ``short_eval.json`` (its ``log_history`` holds ``heldout_final10`` against
``train_minutes`` when it trained with ``eval_every_minutes``; the final ``trained`` evaluation closes the
curve). Any other file is a log of lines ``eval0 {...}``, ``eval t <seconds> {...}`` and
``FINAL ... time <seconds> {...}`` with ``final10`` in each JSON, as the single-file reference experiment
writes them.
"""

import argparse
import json
import re
from pathlib import Path

from trl_icrl.plotting import plot_learning_curves


def run_curve(path: Path) -> list[tuple[float, float]]:
    """(minutes, final-10) points of one run."""
    if path.suffix == ".json":
        report = json.loads(path.read_text())
        history = report["log_history"]
        points = [(log["train_minutes"], log["heldout_final10"]) for log in history if "heldout_final10" in log]
        if "trained" in report and history:
            minutes = history[-1].get("train_runtime", 0.0) / 60
            points.append((minutes, report["trained"]["final10_success"]))
        if "untrained" in report:
            points.insert(0, (0.0, report["untrained"]["final10_success"]))
        return points
    points = []
    for line in path.read_text().splitlines():
        match = re.match(r"(eval0|eval t (\d+)|FINAL .*time (\d+)) (\{.*\})$", line)
        if match:
            seconds = float(match.group(2) or match.group(3) or 0)
            points.append((seconds / 60, json.loads(match.group(4))["final10"]))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="NAME=PATH, one per run")
    parser.add_argument("--output", required=True)
    parser.add_argument("--title", default="")
    cli = parser.parse_args()
    curves = {}
    for run in cli.runs:
        name, _, path = run.partition("=")
        curves[name] = run_curve(Path(path))
        print(name, [(round(m, 1), round(s, 3)) for m, s in curves[name]])
    plot_learning_curves(curves, cli.output, title=cli.title)


if __name__ == "__main__":
    main()
