"""The README's results tables, built from the evaluation files they cite.

    python experiments/readme_tables.py            # rewrite the tables in README.md from their files
    python experiments/readme_tables.py --check    # exit 1, naming the table, when one differs from its files

A table sits between ``<!-- table NAME -->`` and ``<!-- end table NAME -->``; every number in it is read from a
committed ``results.json`` (``recipes/evaluate_icrl.py``) or ``envs.json`` (``recipes/evaluate_envs.py``) named
in the table, so a number edited by hand fails ``tests/test_readme_numbers.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUNS = "experiments/runs"
ADAPTER = "results/tiny_adapter_offline"
FULL_FINE_TUNE = f"{RUNS}/tiny_results_offline"
SEEDS = {0: ADAPTER, 1: f"{RUNS}/tiny_adapter_offline_seed1", 2: f"{RUNS}/tiny_adapter_offline_seed2"}
CONDITIONS = (("in distribution, final-10", "in_distribution", "final10_success"),
              ("out of distribution (6-7 a side), final-10", "out_of_distribution", "final10_success"),
              ("non-stationary, map B final-10", "non_stationary", "map_b_final10_success"),
              ("stitching, the paper's map (greedy, of 5)", "stitching", "paper_map_successes"),
              ("stitching family, success", "stitching", "family_success_rate"))
"""The paper's conditions as rows: label, condition in ``results.json``, the number read."""

LAKE, CLIFF, MDP = ("trl_icrl/ParametricFrozenLake-v0 held-out", "trl_icrl/ParametricCliffWalking-v0 held-out",
                    "trl_icrl/RandomMDP-v0 held-out")
LAKE_4, LAKE_8 = "FrozenLake-v1 4x4", "FrozenLake-v1 8x8"
ENV_COLUMNS = (LAKE, CLIFF, MDP, LAKE_4, LAKE_8)
DRAWS = ("envs.json", "map_seed1/envs.json", "map_seed2/envs.json", "map_seed3/envs.json")
"""Four draws of held-out maps (map seeds 0-3) of a run evaluated on each."""


@cache
def read_json(path: str) -> dict:
    """The JSON file at ``path`` (relative to the repository root)."""
    return json.loads((ROOT / path).read_text())


def fmt(value: float | int | None, digits: int = 3) -> str:
    """A number as the tables print it: integers whole, rates with ``digits`` decimals, ``-`` for none."""
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def condition_value(run: str, agent: str, condition: str, key: str) -> float | int | None:
    """``key`` of ``agent`` under ``condition`` in ``run``'s ``results.json``, ``None`` when not evaluated."""
    return read_json(f"{run}/results.json")["conditions"][condition]["agents"].get(agent, {}).get(key)


def adapter_table() -> str:
    """The adapter results model under the paper's conditions beside its controls and the full fine-tune."""
    header = ("| condition (50 held-out maps, 30 episodes, the ramp) | adapter | context wiped | base, fresh Q head, "
              "no DQN | random | Q-learning zero / optimistic | oracle | full fine-tune, random base |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for label, condition, key in CONDITIONS:
        def value(agent: str, run: str = ADAPTER, condition: str = condition, key: str = key) -> str:
            return fmt(condition_value(run, agent, condition, key))
        lines.append(f"| {label} | **{value('icrl')}** | {value('icrl_wiped')} | {value('untrained')} | "
                     f"{value('random')} | {value('q_learning_zero_init')} / {value('q_learning_optimistic')} | "
                     f"{value('oracle')} | {value('icrl', FULL_FINE_TUNE)} |")
    return "\n".join(lines)


SEED_LABELS = ("in distribution", "out of distribution", "map B", "the paper's map (of 5)", "the family")


def seeds_table() -> str:
    """The adapter recipe's three training seeds under the paper's conditions: range and mean, as one sentence."""
    values = [[condition_value(run, "icrl", condition, key) for run in SEEDS.values()]
              for _, condition, key in CONDITIONS]
    parts = []
    for label, seeds in zip(SEED_LABELS, values):
        digits = 1 if isinstance(seeds[0], int) else 3
        parts.append(f"{label} {fmt(min(seeds))}-{fmt(max(seeds))} (mean {fmt(float(np.mean(seeds)), digits)})")
    runs = ", ".join(f"`{run}`" for run in SEEDS.values())
    return f"Three training seeds ({runs}): " + ", ".join(parts) + "."


def env_final10(path: str, row: str, agent: str = "icrl") -> float | None:
    """Final-10 of ``agent`` on ``row`` under the paper's ramp in the ``envs.json`` at ``path``."""
    players = read_json(path)["rows"].get(row, {}).get("paper_ramp", {})
    return players[agent]["final10_success"] if agent in players else None


def one(path: str) -> Callable[[str], str]:
    """A cell reader: final-10 on a row from one evaluation."""
    return lambda row: fmt(env_final10(path, row), 2)


def mean_of_draws(run: str, agent: str = "icrl", spread: bool = True) -> Callable[[str], str]:
    """A cell reader: the mean (and, with ``spread``, range) of ``agent``'s final-10 on a row over ``DRAWS`` of
    ``run``, or its first draw's alone when only that one played the row."""
    def cell(row: str) -> str:
        values = [v for draw in DRAWS if (v := env_final10(f"{run}/{draw}", row, agent)) is not None]
        if len(values) == 1:
            return fmt(values[0], 2)
        mean = fmt(float(np.mean(values)), 2)
        return f"{mean} ({fmt(min(values), 2)}-{fmt(max(values), 2)})" if spread else mean
    return cell


def run_cells(run: str, lake_3_to_5: str | None = None, draws: bool = False) -> dict[str, str]:
    """Each env column's cell of ``run``; Frozen Lake read from ``lake_3_to_5`` (a run evaluated on maps up to 8x8
    keeps its 3-5 evaluation in ``id/``)."""
    read = mean_of_draws(run) if draws else one(f"{run}/envs.json")
    cells = {row: read(row) for row in ENV_COLUMNS}
    if lake_3_to_5:
        cells[LAKE] = one(f"{run}/{lake_3_to_5}/envs.json")(LAKE)
    return cells


def general_rows() -> list[tuple[str, str, str | None, list[dict[str, str]]]]:
    """The general table's rows: label, machine, the env left out (its cells in italics), each run's cells."""
    def run(name: str, **kwargs) -> dict[str, str]:
        return run_cells(f"{RUNS}/{name}", **kwargs)
    return [
        ("all three, 2,800 updates (`tiny_general_normalised`)", "2-core CPU", None, [run("tiny_general_normalised")]),
        ("all three, 7,000 updates (`tiny_general_2_5x`)", "2-core CPU", None, [run("tiny_general_2_5x", draws=True)]),
        ("all three on `tiny-general`, 2,800 updates (`tiny_general_on_general_base`)", "AVX2 CPU", None,
         [run("tiny_general_on_general_base", lake_3_to_5="id")]),
        ("all three on `tiny-general`, `\"goal\"`, 7,000 updates (`results/tiny_general_goal`)", "AVX2 CPU", None,
         [run_cells("results/tiny_general_goal", lake_3_to_5="id")]),
        ("without Frozen Lake (`tiny_general_without_frozen_lake`; `_base`: a base without it)",
         "2-core CPU; AVX2 CPU", LAKE,
         [run("tiny_general_without_frozen_lake"), run("tiny_general_without_frozen_lake_base", lake_3_to_5="id")]),
        ("without the cliff (`tiny_general_without_cliff`; `_base`)", "2-core CPU; AVX2 CPU", CLIFF,
         [run("tiny_general_without_cliff"), run("tiny_general_without_cliff_base", lake_3_to_5="id")]),
        ("without the MDPs (`tiny_general_without_mdps_seed1`; `_base`)", "2-core CPU; AVX2 CPU", MDP,
         [run("tiny_general_without_mdps_seed1"), run("tiny_general_without_mdps_base", lake_3_to_5="id")]),
        ("random MDPs alone, 6,000 updates (`tiny_mdp_only`)", "2-core CPU", "all but MDPs",
         [run("tiny_mdp_only", draws=True)]),
    ]


def general_table() -> str:
    """The models trained on several env families and on all but one, on every family's held-out maps."""
    lines = ["| trained on (runs in `experiments/runs/` unless said) | machine | Frozen Lake 3-5 | cliff walking | "
             "random MDPs | FrozenLake-v1 4x4 / 8x8 |", "|---|---|---|---|---|---|"]
    for label, machine, left_out, runs in general_rows():
        cells = []
        for row in (LAKE, CLIFF, MDP):
            text = "; ".join(cell[row] for cell in runs)
            italic = left_out == row or (left_out == "all but MDPs" and row != MDP)
            cells.append(f"*{text}*" if italic else text)
        cells.append("; ".join(f"{cell[LAKE_4]} / {cell[LAKE_8]}" for cell in runs))
        lines.append(f"| {label} | {machine} | " + " | ".join(cells) + " |")
    baselines = [[mean_of_draws(f"{RUNS}/tiny_general_2_5x", agent, spread=False)(row) for row in ENV_COLUMNS]
                 for agent in ("random", "q_learning_zero_init", "q_learning_optimistic")]
    cells = [" / ".join(values) for values in zip(*baselines)]
    lines.append("| random play / Q-learning zero / optimistic (means on the maps of `tiny_general_2_5x`) | - | "
                 f"{cells[0]} | {cells[1]} | {cells[2]} | {cells[3]}; {cells[4]} |")
    return "\n".join(lines)


TABLES: dict[str, Callable[[], str]] = {"adapter": adapter_table, "seeds": seeds_table, "general": general_table}


def table_pattern(name: str) -> re.Pattern:
    """The README block of table ``name``: its opening marker, the table, its closing marker."""
    return re.compile(rf"(<!-- table {name} -->\n)(.*?)(<!-- end table {name} -->)", re.S)


def differing_tables(text: str) -> list[str]:
    """The tables of ``TABLES`` whose block in ``text`` is missing or differs from what their files give."""
    differing = []
    for name, build in TABLES.items():
        found = table_pattern(name).search(text)
        if found is None or found.group(2) != build() + "\n":
            differing.append(name)
    return differing


def write_tables(text: str) -> str:
    """``text`` with every table block rebuilt from its files."""
    for name, build in TABLES.items():
        table = build() + "\n"
        text = table_pattern(name).sub(lambda m, table=table: m.group(1) + table + m.group(3), text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a table differs")
    parser.add_argument("--readme", type=Path, default=README, help="the page holding the tables")
    args = parser.parse_args()
    text = args.readme.read_text()
    if args.check:
        differing = differing_tables(text)
        if differing:
            sys.exit(f"{args.readme}: table(s) {', '.join(differing)} differ from their files; "
                     "run python experiments/readme_tables.py")
        return
    args.readme.write_text(write_tables(text))


if __name__ == "__main__":
    main()
