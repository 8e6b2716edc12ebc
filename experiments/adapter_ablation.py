"""The adapter ablation: what trains (adapter or every weight) on which base (pretrained or random), same recipe and
number of updates, side by side on one machine; the runs go in parallel, each in its own process.

    python experiments/adapter_ablation.py --runs pt_lora rand_lora pt_full rand_full --parallel 1 \
        --output_dir outputs/ablation

Every run is ``recipes/frozen_lake_dqn.py --config recipes/configs/tiny_results_offline.yaml`` with a run's overrides
(``RUNS``); ``--extra`` adds flags to all. Writes ``ablation.json`` and ``ablation.md`` (final-10 of the short
evaluation trained and with a fresh Q head and no DQN, minutes, updates, trainable share) and
``ablation.png`` (held-out final-10 while training against updates) into ``--output_dir``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "frozen_lake_dqn.py"
CONFIG = ROOT / "recipes" / "configs" / "tiny_results_offline.yaml"
PRETRAINED, RANDOM = "tiny", "tiny-random"

RUNS: dict[str, list[str]] = {
    "pt_lora": ["--model_name_or_path", PRETRAINED, "--adapter_type", "lora"],
    "pt_lora_lr2e-3": ["--model_name_or_path", PRETRAINED, "--adapter_type", "lora", "--learning_rate", "2e-3"],
    "pt_lora_r64": ["--model_name_or_path", PRETRAINED, "--adapter_type", "lora", "--lora_r", "64",
                    "--lora_alpha", "64"],
    "pt_lora_r64_lr2e-3": ["--model_name_or_path", PRETRAINED, "--adapter_type", "lora", "--lora_r", "64",
                           "--lora_alpha", "64", "--learning_rate", "2e-3"],
    "pt_ia3": ["--model_name_or_path", PRETRAINED, "--adapter_type", "ia3", "--learning_rate", "1e-2"],
    "pt_full": ["--model_name_or_path", PRETRAINED, "--adapter_type", "none"],
    "rand_lora": ["--model_name_or_path", RANDOM, "--adapter_type", "lora"],
    "rand_lora_lr2e-3": ["--model_name_or_path", RANDOM, "--adapter_type", "lora", "--learning_rate", "2e-3"],
    "rand_full": ["--model_name_or_path", RANDOM, "--adapter_type", "none"],
}


def summary(run_dir: Path, minutes: float) -> dict:
    """One row of the table from a finished run's ``short_eval.json``."""
    report = json.loads((run_dir / "short_eval.json").read_text())
    steps = [e["step"] for e in report["log_history"]]
    curve = [(e["step"], e["heldout_final10"]) for e in report["log_history"] if "heldout_final10" in e]
    return {"final10": report["trained"]["final10_success"], "final10_no_dqn": report["untrained"]["final10_success"],
            "updates": max(steps, default=0), "minutes": round(minutes, 1), "curve": curve,
            "trainable_share": report.get("trainable_share")}


def plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, row in rows.items():
        if row.get("curve"):
            steps, values = zip(*row["curve"])
            ax.plot(steps, values, marker="o", label=name)
    ax.set(xlabel="DQN updates", ylabel="held-out final-10 success", ylim=(0, 1), title="adapter ablation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["pt_lora", "rand_lora", "pt_full", "rand_full"],
                        choices=sorted(RUNS))
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per run")
    parser.add_argument("--output_dir", default="outputs/adapter_ablation")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags for every run")
    args = parser.parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pending, running, rows = list(args.runs), {}, {}
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            command = [sys.executable, str(RECIPE), "--config", str(CONFIG), *RUNS[name], "--output_dir",
                       str(out / name), *(["--cpu_threads", str(args.threads)] if args.threads else []), *args.extra]
            log = open(out / f"{name}.log", "w")
            running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), time.time())
            print(f"started {name}: {' '.join(command)}", flush=True)
        for name, (process, start) in list(running.items()):
            if process.poll() is not None:
                del running[name]
                minutes = (time.time() - start) / 60
                rows[name] = summary(out / name, minutes) if process.returncode == 0 else {"failed": process.returncode}
                print(f"{name}: {rows[name]}", flush=True)
        time.sleep(2)
    (out / "ablation.json").write_text(json.dumps(rows, indent=2))
    lines = ["| run | final-10 trained | final-10 fresh Q head, no DQN | updates | minutes | trainable share |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        if "failed" in row:
            lines.append(f"| {name} | failed ({row['failed']}) | | | | |")
            continue
        share = f"{row['trainable_share']:.1%}" if row["trainable_share"] is not None else ""
        lines.append(f"| {name} | {row['final10']:.3f} | {row['final10_no_dqn']:.3f} | {row['updates']} | "
                     f"{row['minutes']} | {share} |")
    (out / "ablation.md").write_text("\n".join(lines) + "\n")
    plot(rows, out / "ablation.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
