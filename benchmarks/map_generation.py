"""How fast each env family generates instances (the trainer draws one per trial, evaluations draw 400 reserved
maps per family), and how long a generator takes to give up on impossible parameters.

    python benchmarks/map_generation.py
"""

import time

from trl_icrl.envs import CLIFF_FAMILIES, FAMILIES, MDP_FAMILIES, generate_map


def main() -> None:
    for family in (*FAMILIES.values(), *CLIFF_FAMILIES.values(), *MDP_FAMILIES.values()):
        start = time.perf_counter()
        family.generate_many(1000, seed=2024)
        seconds = time.perf_counter() - start
        print(f"{family.name:>8}: 1,000 instances in {seconds:.2f} s ({1000 / seconds:,.0f} per second)")
    start = time.perf_counter()
    try:
        generate_map(0, width_range=(5, 5), height_range=(5, 5), min_hops=20, max_tries=500)
    except RuntimeError:
        print(f"giving up after 500 impossible tries: {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
