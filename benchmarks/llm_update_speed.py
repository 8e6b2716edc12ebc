"""SmolLM2's DQN update with LoRA on every layer against the top K layers over cached lower states, measured side by
side in one process on this machine.

For each ``--layers`` entry (``all``: today's recipe, LoRA on every layer and the embeddings, no cache; an integer K:
only the top K layers train, the states below them computed once per trial) and each ``--precisions`` entry: the
seconds of one update inside ``DQNTrainer.train()`` (forward + backward + AdamW on ``--batch`` trials of up to
``--context_tokens`` tokens, and the target network's forward), median of ``--updates`` after one warm-up, on a store
of ``--trials`` trials (few, so that the cached entries run on states already computed, as most updates of a long
run do). ``--profile`` prints torch.profiler's top operators of the first entry's
updates. The last line is ``SUMMARY ...`` with every entry's numbers and its speed-up over ``all`` at that precision.

    HF_HUB_OFFLINE=1 python benchmarks/llm_update_speed.py                      # all, 10, 6 layers; bf16 and fp32
    HF_HUB_OFFLINE=1 python benchmarks/llm_update_speed.py --layers all 10 --precisions fp32 --profile
"""

import argparse
import json
import statistics
import time

import torch
from transformers import TrainerCallback

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.precision import cpu_supports_bf16

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens"]


class UpdateClock(TrainerCallback):
    """Seconds of each optimizer step."""

    def __init__(self):
        self.seconds: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self.start)


def measure(cli: argparse.Namespace, layers: str, precision: str, profile: bool) -> dict:
    trainable = None if layers == "all" else int(layers)
    args = DQNConfig(output_dir=f"{cli.output_dir}/{layers}_{precision}", model_name_or_path=cli.model,
                     protocol_format="step", offline_data="q_learning", offline_trials=cli.trials,
                     max_context_tokens=cli.context_tokens, per_device_train_batch_size=cli.batch,
                     lora_target_modules=LORA_MODULES, trainable_layers=trainable,
                     cache_frozen_states=trainable is not None, precision=precision, max_steps=cli.updates + 1,
                     max_train_minutes=None, eval_maps=0, logging_steps=cli.updates + 1, disable_tqdm=True,
                     report_to="none", save_strategy="no")
    clock = UpdateClock()
    trainer = DQNTrainer(cli.model, args, callbacks=[clock])
    if profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            trainer.train()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), flush=True)
    else:
        trainer.train()
    result = {"layers": layers, "precision": precision, "s_per_update": statistics.median(clock.seconds[1:])}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=SMOLLM2)
    parser.add_argument("--layers", nargs="+", default=["all", "10", "6"])
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    parser.add_argument("--trials", type=int, default=16, help="offline trials in the replay store")
    parser.add_argument("--context_tokens", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--output_dir", default="outputs/llm_update_speed")
    cli = parser.parse_args()
    precisions = [p for p in cli.precisions if p == "fp32" or torch.cuda.is_available() or cpu_supports_bf16()]
    results = [measure(cli, layers, precision, cli.profile and not i)
               for i, (precision, layers) in enumerate((p, k) for p in precisions for k in cli.layers)]
    baseline = {r["precision"]: r["s_per_update"] for r in results if r["layers"] == "all"}
    for r in results:
        r["speedup_vs_all"] = baseline[r["precision"]] / r["s_per_update"] if r["precision"] in baseline else None
    print("SUMMARY " + json.dumps(results))


if __name__ == "__main__":
    main()
