"""Evaluate a trained in-context RL agent on the paper's evaluation suite, against baselines on the same maps.

    python recipes/evaluate_icrl.py --model outputs/frozen_lake_dqn --output_dir outputs/frozen_lake_dqn
    python recipes/evaluate_icrl.py --model outputs/frozen_lake_dqn --conditions in_distribution stitching \
        --n_maps 50 --n_episodes 30 --output_dir outputs/frozen_lake_dqn
    python recipes/evaluate_icrl.py --model outputs/frozen_lake_dqn --conditions in_distribution --video
    python recipes/evaluate_icrl.py --model outputs/frozen_lake_dqn --conditions in_distribution --split validation
    python recipes/evaluate_icrl.py --baselines_only --output_dir outputs/baselines
    python recipes/evaluate_icrl.py --data_quality low=outputs/offline_low mixed=outputs/offline_mixed \
        high=outputs/offline_high --output_dir outputs/data_quality      # recipes/configs/tiny_offline.yaml

Writes ``results.json``, one ``<condition>.png`` per condition, ``<condition>_trajectories.png`` and
``summary.md`` to ``output_dir`` (see ``trl_icrl.evaluation.write_report``); ``--data_quality`` alone evaluates
only those models, on the ID maps; with ``--video``, ``replay.gif``: the first held-out map played through
``n_episodes`` in one context.
"""

import argparse
from pathlib import Path

import torch

from trl_icrl.agent import ICRLAgent
from trl_icrl.envs import SPLITS, ParametricFrozenLake, heldout_maps
from trl_icrl.evaluation import CONDITIONS, DEFAULT_BASELINES, evaluate_condition, evaluate_data_quality, write_report
from trl_icrl.evaluation.replay import replay_frames, write_replay_gif


def load_agent(path: str, device: str, dtype: str = "float32") -> ICRLAgent:
    """``ICRLAgent.from_pretrained`` in ``dtype`` on ``device``."""
    agent = ICRLAgent.from_pretrained(path, dtype=getattr(torch, dtype))
    agent.network.to(device)
    return agent


def write_video(agent: ICRLAgent, args: argparse.Namespace) -> Path:
    """``output_dir/replay.gif``: the first held-out ID map of ``seed``, ``n_episodes`` in one context."""
    desc = heldout_maps("id", 1, args.seed)[0]
    result = agent.play(ParametricFrozenLake(desc=desc), args.n_episodes, args.schedule, seed=args.seed)
    frames = replay_frames(desc, result.trials[0].actions, result.lengths[0].astype(int).tolist(),
                           result.successes[0].tolist(), reset_seed=args.seed)
    return write_replay_gif(frames, Path(args.output_dir) / "replay.gif", args.n_episodes,
                            title=f"{Path(args.model).name}, {args.schedule}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="directory (or hub id) written by DQNTrainer")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    parser.add_argument("--n_maps", type=int, default=50, help="maps per condition (stitching: family size)")
    parser.add_argument("--n_episodes", type=int, default=30, help="episodes per map in one context")
    parser.add_argument("--schedule", default="paper_ramp", help="exploration schedule (ExplorationSchedule.parse)")
    parser.add_argument("--seed", type=int, default=0, help="held-out map seed; match the training seed")
    parser.add_argument("--split", default="heldout", choices=SPLITS,
                        help="maps to play: heldout (to report) or validation (to choose a recipe or checkpoint on)")
    parser.add_argument("--baselines", nargs="*", default=list(DEFAULT_BASELINES))
    parser.add_argument("--baselines_only", action="store_true", help="play the baselines only, load no model")
    parser.add_argument("--no_untrained", action="store_true", help="skip the model with its adapter off")
    parser.add_argument("--no_wiped", action="store_true", help="skip the model with its context wiped")
    parser.add_argument("--data_quality", nargs="+", metavar="NAME=PATH",
                        help="also evaluate these models on the ID maps, one curve each")
    parser.add_argument("--video", action="store_true", help="also write replay.gif of one held-out map")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="dtype of the model's weights (bfloat16 for an 8B base: 16 GB instead of 32)")
    parser.add_argument("--output_dir", default="results")
    args = parser.parse_args()
    if not args.model and not args.baselines_only and not args.data_quality:
        parser.error("give --model, --baselines_only or --data_quality")
    if any("=" not in spec for spec in args.data_quality or ()):
        parser.error("--data_quality takes NAME=PATH pairs")
    if args.video and (not args.model or args.baselines_only):
        parser.error("--video plays the model: give --model")
    if args.split == "validation" and (args.data_quality or "stitching" in args.conditions):
        parser.error("--split validation: the data-quality and stitching conditions play held-out maps only")

    agent = load_agent(args.model, args.device, args.dtype) if args.model and not args.baselines_only else None
    common = dict(n_maps=args.n_maps, n_episodes=args.n_episodes, schedule=args.schedule, seed=args.seed)
    results = {"model": None if agent is None else args.model, **common, "split": args.split, "conditions": {}}
    for condition in args.conditions if agent is not None or args.baselines_only else ():
        print(f"evaluating {condition} ...")
        results["conditions"][condition] = evaluate_condition(
            agent, condition, baselines=args.baselines, include_untrained=not args.no_untrained,
            include_wiped=not args.no_wiped, split=args.split, **common)
    if args.data_quality:
        models = dict(spec.split("=", 1) for spec in args.data_quality)
        results["data_quality_models"] = models
        results["conditions"]["data_quality"] = evaluate_data_quality(
            {name: load_agent(path, args.device, args.dtype) for name, path in models.items()}, **common)
    write_report(results, args.output_dir)
    print((Path(args.output_dir) / "summary.md").read_text())
    if args.video:
        print(f"replay written to {write_video(agent, args)}")


if __name__ == "__main__":
    main()
