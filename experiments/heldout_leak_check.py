"""How many maps an evaluation plays were training maps of a model trained before training excluded every
evaluation map (it excluded only the first ``eval_maps`` in-distribution held-out maps), and each condition's
final-10 with and without those maps.

    python experiments/heldout_leak_check.py --model experiments/runs/tiny_results_offline \
        --config recipes/configs/tiny_results_offline.yaml

Only offline-data models are checked: their training maps are the offline data's, remade here from the model's
recipe config with the old exclusion; the per-map numbers come from the model's ``results.json``. A record without
its tokenizer (``experiments/runs/``) is read with its base's, which holds every Frozen Lake word.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer
from trl import TrlParser

from trl_icrl import DQNConfig, ExplorationSchedule
from trl_icrl.agent.config import AgentConfig
from trl_icrl.envs import heldout_maps
from trl_icrl.evaluation import CONDITIONS, make_condition
from trl_icrl.offline_data import offline_trials
from trl_icrl.tiny_model import resolve_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", required=True, help="the recipe config the model was trained with")
    args = parser.parse_args()
    model = Path(args.model)
    (train,) = TrlParser((DQNConfig,)).parse_args_and_config(["--config", args.config])
    config = AgentConfig.load(model)
    tokenizer = AutoTokenizer.from_pretrained(model if (model / "tokenizer.json").is_file()
                                              else resolve_model_path(config.base_model))
    old_exclusion = frozenset(heldout_maps(train.map_family, train.eval_maps, train.seed))
    rows = offline_trials(config.token_protocol(tokenizer), config.env_codec(), train.env_id, train.offline_data,
                          train.offline_trials, family=train.map_family, seed=train.seed * 1000,
                          exclude_maps=old_exclusion, max_context_tokens=train.max_context_tokens,
                          episodes_per_trial=train.episodes_per_trial, coordinate_frame=train.coordinate_frame,
                          coordinate_frame_share=train.coordinate_frame_share,
                          map_switches=train.offline_map_switches, progress=False)
    trained = {part for row in rows for part in row["env_map"].split(" from ")[0].split(" then ")}
    report = json.loads((model / "results.json").read_text())
    out = {"model": str(model), "training_maps": len(trained)}
    for name in CONDITIONS:
        if name not in report["conditions"]:
            continue
        result = report["conditions"][name]
        n_maps = result["agents"]["icrl"]["n_maps"] - (name == "stitching")  # stitching adds the paper's map
        condition = make_condition(name, n_maps, 30, ExplorationSchedule.parse("paper_ramp"), train.seed)
        played = [("/".join(m),) for m in condition.maps]
        if name == "non_stationary":  # what leaked there is map B, the map the condition scores
            played = [(b,) for b in condition.info["maps_b"]]
        elif name == "stitching":
            played = [(m,) for m in ["/".join(condition.maps[0]), *condition.info["maps"]]]
        leaked = [i for i, (m,) in enumerate(played) if m in trained]
        per_map = np.asarray(result["agents"]["icrl"]["final10_per_map"])
        clean = np.delete(per_map, leaked)
        out[name] = {"maps": len(played), "leaked": leaked, "final10": float(per_map.mean()),
                     "final10_without_leaked": float(clean.mean())}
        print(f"{name}: {len(leaked)} of {len(played)} evaluation maps were training maps {leaked}; final-10 "
              f"{per_map.mean():.3f}, without them {clean.mean():.3f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
