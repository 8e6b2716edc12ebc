"""The Llama-3.1-8B path on one GPU without the hub: the 8B architecture with random bf16 weights (weights change
neither time nor memory), the embedded word-level tokenizer with the Llama-3 header tokens, and a recipe config.

Measured in one run, on the config's own sizes (trials of ``max_context_tokens``, ``trials_per_rollout`` rows,
batch ``per_device_train_batch_size`` x ``gradient_accumulation_steps``, activation checkpointing):
1. collection: one ``TrialCollector.collect()``: seconds, env-steps/s, peak GPU memory;
2. training: ``--updates`` DQN updates inside ``DQNTrainer.train()`` (the first one, warm-up, not timed):
   seconds per update, trained decisions per second, peak GPU memory;
3. evaluation: ``evaluate_in_context()`` on ``--eval_maps`` held-out maps x ``eval_episodes`` (30), the paper's ramp,
   ``eval_context_tokens``: seconds, peak GPU memory.
The last line is ``SUMMARY ...``. Other flags override the config's keys; ``--layers``, ``--hidden`` and ``--vocab``
shrink the architecture to try the script on a CPU.

    python benchmarks/llama8b_gpu.py [--config recipes/configs/llama31_8b_paper_ia3.yaml] [--updates 4]
    python benchmarks/llama8b_gpu.py --config ... --max_context_tokens 512 --profile 30  # where collection's time goes
"""

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import torch
from llm_bases import measure  # this folder's benchmarks
from throughput import StepClock
from transformers import LlamaConfig, LlamaForCausalLM
from trl import TrlParser

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.tiny_model import llama3_tokenizer

CONFIGS = Path(__file__).resolve().parent.parent / "recipes" / "configs"


def llama31_8b_config(layers: int, hidden: int, vocab: int) -> LlamaConfig:
    """Llama-3.1-8B's architecture (32 layers, hidden 4096, GQA 32/8 heads, MLP 14336, vocab 128,256), or a
    narrower one with the same shape ratios."""
    return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 14336 // 4096,
                       num_hidden_layers=layers, num_attention_heads=hidden // 128,
                       num_key_value_heads=max(1, hidden // 512),
                       max_position_embeddings=131072, rope_theta=500000.0, rms_norm_eps=1e-5,
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                       bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(CONFIGS / "llama31_8b_lora.yaml"))
    parser.add_argument("--updates", type=int, default=4, help="timed DQN updates (after one warm-up update)")
    parser.add_argument("--eval_maps", type=int, default=50)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--output_dir", default="outputs/llama8b_gpu")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the collection, print its N costliest functions (cumulative, own), stop")
    cli, overrides = parser.parse_known_args()
    (args,) = TrlParser((DQNConfig,)).parse_args_and_config(
        ["--config", cli.config, "--output_dir", cli.output_dir, "--max_steps", str(cli.updates + 1),
         "--learning_starts", "1", "--rollout_interval", "1000000", "--eval_maps", str(cli.eval_maps),
         "--save_strategy", "no", "--logging_steps", "1", "--report_to", "none"]
        + ([] if torch.cuda.is_available() else ["--bf16", "false"]) + overrides)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    start = time.perf_counter()
    with torch.device(device):
        model = LlamaForCausalLM(llama31_8b_config(cli.layers, cli.hidden, cli.vocab)).to(dtype)
    model.name_or_path = args.model_name_or_path
    parameters = sum(p.numel() for p in model.parameters())
    clock = StepClock(skip=1)  # the first update warms up; each step's metrics (.item()) wait for the GPU
    trainer = DQNTrainer(model, args, processing_class=llama3_tokenizer(), callbacks=[clock])
    trainable = sum(p.numel() for p in trainer.q_network.parameters() if p.requires_grad)
    print(f"{parameters / 1e9:.2f}B parameters ({trainable / 1e6:.1f}M trainable, {args.adapter_type}) on {device} "
          f"({torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}), built in "
          f"{time.perf_counter() - start:.0f} s", flush=True)

    if cli.profile:
        profile = cProfile.Profile()
        rows, result = profile.runcall(trainer.collector.collect)
        print(f"collection: {len(rows)} trials, {result.env_steps} env steps", flush=True)
        for order in ("cumulative", "tottime"):
            pstats.Stats(profile).sort_stats(order).print_stats(cli.profile)
        return
    m = measure(trainer, clock, cli.updates)
    batch = args.per_device_train_batch_size * args.gradient_accumulation_steps
    print(f"collection: {args.trials_per_rollout} trials in {m['collect_s']:.1f} s "
          f"({m['collect_env_steps_per_s']:.1f} env-steps/s), peak {m['collect_peak_gib']:.1f} GiB", flush=True)
    print(f"training: {m['update_s']:.2f} s per update of {batch} trials ({m['train_decisions_per_s']:.0f} "
          f"decisions/s), peak {m['train_peak_gib']:.1f} GiB", flush=True)
    print(f"evaluation: {cli.eval_maps} maps x {args.eval_episodes} episodes in {m['eval_s']:.1f} s "
          f"(final-10 {m['eval_final10']:.2f}, random weights), peak {m['eval_peak_gib']:.1f} GiB", flush=True)
    print(f"SUMMARY parameters_b={parameters / 1e9:.2f} collect_s={m['collect_s']:.1f} "
          f"collect_env_steps_per_s={m['collect_env_steps_per_s']:.1f} collect_peak_gib={m['collect_peak_gib']:.1f} "
          f"update_s={m['update_s']:.2f} train_decisions_per_s={m['train_decisions_per_s']:.0f} "
          f"train_peak_gib={m['train_peak_gib']:.1f} eval_s={m['eval_s']:.1f} eval_peak_gib={m['eval_peak_gib']:.1f}")

if __name__ == "__main__":
    main()
