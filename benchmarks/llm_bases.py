"""A real pretrained LLM beside the embedded tiny model, measured in one run on this machine (CPU or GPU).

For each base and format, a LoRA adapter + Q head (``DQNTrainer``'s default) with the same sizes (contexts of
``--context_tokens``, ``--rows`` trials per collection, batches of ``--batch`` trials):
1. collection: one ``TrialCollector.collect()`` of ``--rows`` trials (KV cache, env, protocol): env-steps/s;
2. its bound: one batched forward without cache over the very tokens collected (``--rows`` trials, ``--batch``
   at a time), read as env-steps/s at the collection's tokens per step; ``collect_vs_bound`` = 1 would be a
   rollout as cheap as encoding its finished trials;
3. training: ``--updates`` DQN updates inside ``DQNTrainer.train()`` after one warm-up: decisions/s (a decision is
   one env step trained on: the ``step`` format spends about 1.1 tokens on it, a chat model's ``chat`` format 18.5,
   so decisions, not tokens, are what compares);
4. evaluation: ``evaluate_in_context()`` on ``--eval_maps`` held-out maps x ``--eval_episodes`` episodes: seconds.
The last line is ``SUMMARY ...`` with each run's numbers, the LLM's collection against its bound, and the tiny
model's speed-ups over the LLM in the step format.

    python benchmarks/llm_bases.py                       # SmolLM2-135M-Instruct from the Hub (or the HF cache)
    python benchmarks/llm_bases.py --gguf PATH.gguf      # ... dequantised from a GGUF file first (offline)
    python benchmarks/llm_bases.py --llm_formats step chat   # the chat format too (18.5 tokens a step: slow)
    python benchmarks/llm_bases.py --llm meta-llama/Llama-3.1-8B-Instruct --bf16 true  # on a GPU
"""

import argparse
import time

import torch
from throughput import StepClock  # this folder's side-by-side benchmark

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.hub_cache import dequantise_gguf
from trl_icrl.replay_store import collate_trials

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


def peak_gib() -> float:
    """Peak GPU memory allocated since the last reset, GiB (0 on a CPU)."""
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


@torch.no_grad()
def forward_bound(trainer: DQNTrainer, rows: list[dict], batch: int) -> float:
    """Tokens/s of plain batched forwards (no cache, Q at every decision) over the collected ``rows``."""
    network, start, tokens = trainer.q_network, time.perf_counter(), 0
    network.eval()
    for i in range(0, len(rows), batch):
        inputs = collate_trials(rows[i:i + batch], trainer.pad_token_id)
        device = network.action_token_ids.device
        network(inputs["input_ids"].to(device), inputs["decision_positions"].to(device))
        tokens += sum(len(row["input_ids"]) for row in rows[i:i + batch])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    network.train()
    return tokens / (time.perf_counter() - start)


def measure(trainer: DQNTrainer, clock: StepClock, updates: int, bound_batch: int) -> dict[str, float]:
    """Collection and its forward bound, ``updates`` timed DQN updates (the trainer's ``max_steps`` is
    ``updates + 1``) and the held-out evaluation of ``trainer``: seconds, rates and peak GPU memory (GiB)."""
    reset_peak()
    start = time.perf_counter()
    rows, result = trainer.collector.collect()
    collect_s = time.perf_counter() - start
    tokens_per_step = sum(len(r["input_ids"]) for r in rows) / max(1, result.env_steps)
    m = {"collect_s": collect_s, "collect_env_steps_per_s": result.env_steps / collect_s,
         "collect_tokens_per_step": tokens_per_step, "collect_peak_gib": peak_gib()}
    m["bound_env_steps_per_s"] = forward_bound(trainer, rows, bound_batch) / tokens_per_step
    m["collect_vs_bound"] = m["collect_env_steps_per_s"] / m["bound_env_steps_per_s"]
    trainer.replay_store.append(rows)
    reset_peak()
    trainer.train()
    args = trainer.args
    decisions = sum(len(row["actions"]) for row in rows) / len(rows)
    batch = args.per_device_train_batch_size * args.gradient_accumulation_steps
    m["update_s"] = (clock.end - clock.start) / updates
    m["train_decisions_per_s"] = batch * decisions / m["update_s"]
    m["train_peak_gib"] = peak_gib()
    reset_peak()
    start = time.perf_counter()
    m["eval_final10"] = trainer.evaluate_in_context()["final10_success"]
    m["eval_s"] = time.perf_counter() - start
    m["eval_peak_gib"] = peak_gib()
    return m


def benchmark_config(cli: argparse.Namespace, name: str, protocol_format: str, precision: str) -> DQNConfig:
    """The ``DQNConfig`` of one measured run: sizes from the command line, no time limit, no saving."""
    return DQNConfig(
        output_dir=f"{cli.output_dir}/{name}", protocol_format=protocol_format, max_steps=cli.updates + 1,
        learning_starts=1, rollout_interval=1_000_000, trials_per_rollout=cli.rows, episodes_per_trial=1000,
        per_device_train_batch_size=cli.batch, max_context_tokens=cli.context_tokens,
        eval_context_tokens=cli.eval_context_tokens, eval_maps=cli.eval_maps, eval_episodes=cli.eval_episodes,
        dtype="bfloat16" if cli.bf16 == "true" else "float32", bf16=cli.bf16 == "true", precision=precision,
        save_strategy="no", logging_steps=1, disable_tqdm=True, report_to="none", max_train_minutes=None)


def run(cli: argparse.Namespace, name: str, base: str, protocol_format: str, precision: str = "auto",
        device: str = "") -> dict[str, float]:
    """Build a trainer for ``base`` in ``protocol_format`` and measure it; prints one line."""
    clock = StepClock(skip=1)  # the first update warms up
    start = time.perf_counter()
    trainer = DQNTrainer(base, benchmark_config(cli, name, protocol_format, precision), callbacks=[clock])
    parameters = sum(p.numel() for n, p in trainer.q_network.causal_lm.named_parameters()
                     if not any(part in n for part in ("lora_", "modules_to_save", "q_head")))  # the base's
    print(f"{name}: {base} ({parameters / 1e6:.1f}M parameters, {protocol_format} format, {trainer.precision}) on "
          f"{device}, loaded in {time.perf_counter() - start:.0f} s", flush=True)
    m = measure(trainer, clock, cli.updates, cli.bound_batch)
    print(f"{name}: " + " ".join(f"{k}={v:.4g}" for k, v in m.items()), flush=True)
    return m


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", default=SMOLLM2, help="the LLM's Hub id (or a local dir)")
    parser.add_argument("--gguf", default=None, help="dequantise this GGUF file into the HF cache as --llm first")
    parser.add_argument("--llm_formats", nargs="+", default=["step"], choices=["step", "chat"])
    parser.add_argument("--context_tokens", type=int, default=512)
    parser.add_argument("--rows", type=int, default=32, help="trials per collection")
    parser.add_argument("--batch", type=int, default=4, help="trials per DQN update")
    parser.add_argument("--bound_batch", type=int, default=4, help="trials per forward of the bound")
    parser.add_argument("--updates", type=int, default=2, help="timed DQN updates (after one warm-up update)")
    parser.add_argument("--eval_maps", type=int, default=8)
    parser.add_argument("--eval_episodes", type=int, default=10)
    parser.add_argument("--eval_context_tokens", type=int, default=1280)
    parser.add_argument("--bf16", default="false", help="'true' on a GPU: the bases in bf16")
    parser.add_argument("--output_dir", default="outputs/llm_bases")
    cli = parser.parse_args()
    if cli.gguf:
        dequantise_gguf(cli.gguf, cli.llm)
    device = device_name()
    results = {"tiny": run(cli, "tiny", "tiny", "step", device=device)}
    for fmt in cli.llm_formats:
        results[f"llm_{fmt}"] = run(cli, f"llm_{fmt}", cli.llm, fmt, device=device)
    tiny, llm = results["tiny"], results[f"llm_{cli.llm_formats[0]}"]
    ratios = {"collect_speedup": tiny["collect_env_steps_per_s"] / llm["collect_env_steps_per_s"],
              "train_speedup": tiny["train_decisions_per_s"] / llm["train_decisions_per_s"],
              "eval_speedup": llm["eval_s"] / tiny["eval_s"]}
    numbers = {f"{name}_{key}": results[name][key] for name in results
               for key in ("collect_env_steps_per_s", "bound_env_steps_per_s", "collect_vs_bound",
                           "train_decisions_per_s", "eval_s")}
    print(f"SUMMARY device={device.replace(' ', '_')} llm={cli.llm} "
          + " ".join(f"{k}={v:.4g}" for k, v in {**numbers, **ratios}.items()))


if __name__ == "__main__":
    main()
