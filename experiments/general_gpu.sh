#!/usr/bin/env bash
# The general model and its leave-one-family-out controls, side by side on one GPU machine (16 CPU cores; each run a
# process of its own, the GPU shared), then each evaluated on every family's held-out maps and gymnasium's own
# instances (recipes/evaluate_envs.py). Writes outputs/general_gpu/<run>/ (model, envs.json, envs.md), logs and the
# leave-one-out table and figure (experiments/leave_one_out.py: outputs/general_gpu/leave_one_out.md, .png).
#   general:       Frozen Lake (up to 8x8) + cliff walking + random MDPs   (recipes/configs/tiny_general.yaml)
#   without_<env>: the same recipe without one family, evaluated on it (does it learn that family in context?)
# Each run trains MINUTES of wall time, its learning rate decaying (cosine, to a tenth) over the last quarter of them;
# the default fits one device command (10 minutes) with its evaluations. Further arguments go to every training run.
#     bash experiments/general_gpu.sh [MINUTES] [DQNConfig ARGS...]   # e.g. 4 --per_device_train_batch_size 32
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-4}
shift || true
decay=$(python -c "print($minutes / 4)")
out=outputs/general_gpu
mkdir -p "$out"
lake=trl_icrl/ParametricFrozenLake-v0
cliff=trl_icrl/ParametricCliffWalking-v0
mdp=trl_icrl/RandomMDP-v0
declare -A runs=(
  [general]="$lake $cliff $mdp"
  [without_frozen_lake]="$cliff $mdp $lake"
  [without_cliff]="$lake $mdp $cliff"
  [without_mdps]="$lake $cliff $mdp"
)
for run in "${!runs[@]}"; do
  read -r -a envs <<< "${runs[$run]}"
  train=("${envs[@]}")
  [[ $run == without_* ]] && train=("${envs[@]:0:2}")  # the last env of the list is the one left out
  family=up_to_8; [[ ${train[0]} != "$lake" ]] && family=null  # null: the first env's own first family
  OMP_NUM_THREADS=4 python recipes/frozen_lake_dqn.py --config recipes/configs/tiny_general.yaml \
    --train_env_ids "${train[@]}" --map_family $family --max_train_minutes "$minutes" \
    --lr_decay_minutes "$decay" --max_steps 100000 --output_dir "$out/$run" "$@" > "$out/$run.log" 2>&1 &
done
wait
for run in "${!runs[@]}"; do
  OMP_NUM_THREADS=4 python recipes/evaluate_envs.py --model "$out/$run" --output_dir "$out/$run" > "$out/$run.eval.log" 2>&1 &
done
wait
for run in "${!runs[@]}"; do echo "## $run"; cat "$out/$run/envs.md"; done | tee "$out/summary.md"
python experiments/leave_one_out.py --general "$out/general" --left_out "$lake=$out/without_frozen_lake" \
  "$cliff=$out/without_cliff" "$mdp=$out/without_mdps" --output_dir "$out" | tee -a "$out/summary.md"
