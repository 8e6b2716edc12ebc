"""The evaluation report: ``results.json``, success curves and trajectory pictures (PNG), ``summary.md``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from ..plotting import plot_icrl_curves, plot_trajectories
from .conditions import STITCHING_EPISODES, TRAINED

_SHORT = {"in_distribution": "ID", "out_of_distribution": "OOD", "non_stationary": "non-stationary",
          "stitching": "stitching", "data_quality": "data quality"}


def summary_table(conditions: Mapping[str, Mapping]) -> str:
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
    (output_dir / "summary.md").write_text(f"# In-context RL evaluation\n\n{summary_table(conditions)}")
