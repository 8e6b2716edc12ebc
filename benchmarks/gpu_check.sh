#!/usr/bin/env bash
# The LLM paths on one GPU, in one go (about 10 minutes on an H100/H200; needs the Hub for SmolLM2, or the model
# already in the HF cache). Writes outputs/gpu_check/*.log; each benchmark's last line is its SUMMARY.
#   1. Llama-3.1-8B's architecture (random bf16 weights), LoRA and IA3: collection env-steps/s at 32 rows
#      (target >= 1,000), seconds per update, evaluation;
#   2. SmolLM2-135M beside the tiny model (collection, decisions/s, evaluation) at 32 rows;
#   3. a SmolLM2-135M LoRA run of recipes/configs/smollm2_lora.yaml for 6 minutes: the held-out curve.
#     bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=outputs/gpu_check
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
for config in llama31_8b_lora llama31_8b_paper_ia3; do
  python benchmarks/llama8b_gpu.py --config "recipes/configs/$config.yaml" --updates 2 --eval_maps 8 \
    --trials_per_rollout 32 --max_context_tokens 2048 2>&1 | tee "$out/$config.log" | grep -E "^(collection|training|evaluation|SUMMARY)"
done
python benchmarks/llm_bases.py --bf16 true --rows 32 --batch 8 --context_tokens 2048 --eval_context_tokens 4096 \
  --eval_maps 50 --eval_episodes 30 2>&1 | tee "$out/llm_bases.log" | grep -E "SUMMARY"
accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/frozen_lake_dqn.py \
  --config recipes/configs/smollm2_lora.yaml --max_train_minutes 6 --output_dir "$out/smollm2_lora" 2>&1 \
  | tee "$out/smollm2_lora.log" | grep -E "heldout_final10|short evaluation"
