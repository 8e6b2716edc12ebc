"""A Hub model's architecture and tokenizer, randomly initialised: the control of the paper's question (does language
pretraining help an in-context learner?). The folder it writes trains like any base, with the same recipe:

    python recipes/random_init_base.py --model HuggingFaceTB/SmolLM2-135M-Instruct --output_dir outputs/smollm2_random
    accelerate launch recipes/frozen_lake_dqn.py --config recipes/configs/smollm2_cpu.yaml \\
        --model_name_or_path outputs/smollm2_random --output_dir outputs/smollm2_random_cpu
"""

import argparse

from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, set_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Hub id or folder of the model whose architecture to copy")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation")
    cli = parser.parse_args()
    set_seed(cli.seed)
    config = AutoConfig.from_pretrained(cli.model)
    model = AutoModelForCausalLM.from_config(config)  # the architecture's own initialisation (initializer_range)
    model.save_pretrained(cli.output_dir)
    AutoTokenizer.from_pretrained(cli.model).save_pretrained(cli.output_dir)
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"{cli.model}'s architecture ({parameters:.1f}M parameters), randomly initialised with seed {cli.seed}, "
          f"written to {cli.output_dir}")


if __name__ == "__main__":
    main()
