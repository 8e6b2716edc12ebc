"""fp32 against bf16 autocast, side by side in one run on this machine: the embedded base and, when it loads (from
the Hub or the HF cache), SmolLM2-135M-Instruct, both in the ``step`` format with a LoRA adapter + Q head.

For each base and precision (``llm_bases.measure``): decisions/s in DQN updates, env-steps/s in collection, seconds
for the short evaluation. The last line is ``SUMMARY ...`` with the bf16 / fp32 ratios (above 1: bf16 faster).

    python benchmarks/precision.py                       # the embedded base, and SmolLM2 if installed
    python benchmarks/precision.py --gguf PATH.gguf      # SmolLM2 dequantised from a GGUF file first (offline)
"""

import argparse

from llm_bases import SMOLLM2, device_name, run  # this folder's LLM benchmark
from transformers import AutoConfig

from trl_icrl.hub_cache import dequantise_gguf
from trl_icrl.precision import cpu_bf16_units

PRECISIONS = ("fp32", "bf16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", default=SMOLLM2)
    parser.add_argument("--gguf", default=None, help="dequantise this GGUF file into the HF cache as --llm first")
    parser.add_argument("--context_tokens", type=int, default=576)
    parser.add_argument("--rows", type=int, default=32, help="trials per collection")
    parser.add_argument("--batch", type=int, default=8, help="trials per DQN update (the LLM: a quarter)")
    parser.add_argument("--bound_batch", type=int, default=4)
    parser.add_argument("--updates", type=int, default=4)
    parser.add_argument("--eval_maps", type=int, default=50)
    parser.add_argument("--eval_episodes", type=int, default=30)
    parser.add_argument("--eval_context_tokens", type=int, default=1280)
    parser.add_argument("--bf16", default="false")
    parser.add_argument("--output_dir", default="outputs/precision")
    cli = parser.parse_args()
    if cli.gguf:
        dequantise_gguf(cli.gguf, cli.llm)
    bases = {"tiny": "tiny"}
    try:
        AutoConfig.from_pretrained(cli.llm)
        bases["llm"] = cli.llm
    except (OSError, ValueError) as err:
        print(f"{cli.llm} not measured: {err}")
    device = f"{device_name()}, bf16 units: {', '.join(cpu_bf16_units()) or 'none'}"
    results = {}
    for name, base in bases.items():
        sizes = argparse.Namespace(**{**vars(cli), "batch": cli.batch if name == "tiny" else max(1, cli.batch // 4),
                                      "rows": cli.rows if name == "tiny" else max(1, cli.rows // 2),
                                      "eval_maps": cli.eval_maps if name == "tiny" else max(1, cli.eval_maps // 5)})
        for precision in PRECISIONS:
            results[(name, precision)] = run(sizes, f"{name}_{precision}", base, "step", precision, device)
    ratios = {}
    for name in bases:
        fp32, bf16 = results[(name, "fp32")], results[(name, "bf16")]
        ratios[f"{name}_update_speedup"] = bf16["train_decisions_per_s"] / fp32["train_decisions_per_s"]
        ratios[f"{name}_collect_speedup"] = bf16["collect_env_steps_per_s"] / fp32["collect_env_steps_per_s"]
        ratios[f"{name}_eval_speedup"] = fp32["eval_s"] / bf16["eval_s"]
    print(f"SUMMARY device={device.replace(' ', '_')} " + " ".join(f"{k}={v:.3g}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
