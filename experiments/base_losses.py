"""Held-out corpus loss of the embedded bases per env family, side by side: how well each base predicts random play
of each family (nats per token), on trials no base trained on (corpus seed 7; every evaluation map excluded).

A base meets the words it lacks with the embeddings a DQN run would compose for it (``extend_vocabulary``):
``trl-icrl/tiny-llama`` the cliff's and the MDPs', a base pretrained without a family that family's.

    python experiments/base_losses.py --trials 24 \
        --output experiments/runs/tiny_general_on_general_base/base_losses.json
    python experiments/base_losses.py --bases tiny-general outputs/base_without_cliff --output base_losses.json
"""

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_icrl.envs import CLIFF_ENV_ID, ENV_ID, MDP_ENV_ID
from trl_icrl.envs.codec import codec_for
from trl_icrl.pretraining import random_play_corpus
from trl_icrl.tiny_model import resolve_model_path
from trl_icrl.vocabulary import extend_vocabulary, words_to_add

FAMILIES = ((ENV_ID, "id"), (ENV_ID, "up_to_8"), (CLIFF_ENV_ID, "cliff"), (MDP_ENV_ID, "mdp"))
BASES = ("tiny", "tiny-general")


def corpus_loss(model, corpus) -> float:
    """Mean next-token loss over every position of every trial of ``corpus`` (nats per token)."""
    total, count = 0.0, 0
    for ids in corpus["input_ids"]:
        x = torch.tensor([ids])
        with torch.no_grad():
            total += model(x, labels=x).loss.item() * (len(ids) - 1)
        count += len(ids) - 1
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32, help="Trials of random play per family.")
    parser.add_argument("--context_tokens", type=int, default=1280)
    parser.add_argument("--bases", nargs="+", default=list(BASES), help="Shipped bases' names or base folders.")
    parser.add_argument("--output", default=None, help="A JSON file for the table.")
    args = parser.parse_args()
    table = {}
    for base in args.bases:
        path = resolve_model_path(base)
        tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
        words = [word for env_id in dict.fromkeys(env_id for env_id, _ in FAMILIES)
                 for word in words_to_add(tokenizer, "step", codec_for(env_id))]
        tokenizer = extend_vocabulary(model, tokenizer, words)
        table[base] = {f"{env_id} ({family})": round(corpus_loss(model, random_play_corpus(
            tokenizer, args.trials, env_id=env_id, family=family, context_tokens=args.context_tokens,
            coordinate_frame=8 if env_id == ENV_ID else 0, seed=7)), 3) for env_id, family in FAMILIES}
    print("| family | " + " | ".join(args.bases) + " |\n|---|" + "---|" * len(args.bases))
    for key in table[args.bases[0]]:
        print(f"| {key} | " + " | ".join(f"{table[base][key]:.3f}" for base in args.bases) + " |")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
