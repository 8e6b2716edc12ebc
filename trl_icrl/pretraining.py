"""Pretraining a base by next-token prediction on histories of random play: a world model, not an agent.

The corpus holds trials of uniformly random actions on training maps (never a map any evaluation plays), written
in the token protocol; the base learns what follows an action, where episodes end and what rewards look like. No
behaviour in it prefers any action, so whatever in-context RL the agent shows later comes from the DQN fine-tune.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import datasets
from transformers import PreTrainedTokenizerBase

from .envs import evaluation_maps
from .envs.codec import codec_for
from .envs.families import map_families
from .offline_data import offline_trials
from .protocol import TokenProtocol


def _corpus_shards(shards: list[int], tokenizer: PreTrainedTokenizerBase, env_id: str, protocol_format: str,
                  observation_format: str, trials_per_shard: int, context_tokens: int, coordinate_frame: int,
                  coordinate_frame_share: float, map_switches: float, seed: int,
                  reserved_seeds: int) -> Iterator[dict]:
    codec = codec_for(env_id, observation_format)
    protocol = TokenProtocol(tokenizer, protocol_format, codec.action_words, codec.observation_texts(),
                             codec.reward_values)
    exclude = frozenset().union(*(evaluation_maps(env_id, s) for s in range(reserved_seeds)))
    for shard in shards:
        rows = offline_trials(protocol, codec, env_id, "random", trials_per_shard, episodes_per_trial=10_000,
                              seed=seed * 100_003 + shard, exclude_maps=exclude, max_trial_tokens=context_tokens,
                              coordinate_frame=coordinate_frame, coordinate_frame_share=coordinate_frame_share,
                              map_switches=map_switches, progress=shard == 0)
        for row in rows:
            yield {"input_ids": row["input_ids"], "env_map": row["env_map"]}


def random_play_corpus(tokenizer: PreTrainedTokenizerBase, n_trials: int,
                       env_id: str = "trl_icrl/ParametricFrozenLake-v0", protocol_format: str = "step",
                       observation_format: str = "coords", context_tokens: int = 1280,
                       coordinate_frame: int = 7, coordinate_frame_share: float = 0.5, map_switches: float = 0.5,
                       seed: int = 0, reserved_seeds: int = 5, num_proc: int = 1) -> datasets.Dataset:
    """``n_trials`` trials of random play, each filling ``context_tokens`` tokens (``input_ids``, with ``env_map``).

    Maps are training maps of ``env_id``'s families with every map reserved for evaluation under the seeds
    ``0 .. reserved_seeds - 1`` excluded; ``coordinate_frame``, ``coordinate_frame_share`` and ``map_switches`` as
    for offline data. ``num_proc`` processes each make an equal shard.
    """
    if not map_families(env_id):
        raise ValueError(f"a random-play corpus needs an env with generated maps; {env_id} has none")
    shards = max(1, num_proc)
    kwargs = dict(tokenizer=tokenizer, env_id=env_id, protocol_format=protocol_format,
                  observation_format=observation_format, trials_per_shard=-(-n_trials // shards),
                  context_tokens=context_tokens, coordinate_frame=coordinate_frame,
                  coordinate_frame_share=coordinate_frame_share, map_switches=map_switches, seed=seed,
                  reserved_seeds=reserved_seeds)
    corpus = datasets.Dataset.from_generator(_corpus_shards, gen_kwargs={"shards": list(range(shards)), **kwargs},
                                             num_proc=shards if shards > 1 else None)
    return corpus.select(range(min(n_trials, len(corpus))))


def write_base_card(output_dir: str, stats: dict, hub_model_id: str | None = None) -> None:
    """``output_dir/README.md``: what the base is, its corpus, its cost and losses (``stats`` from the recipe)."""
    corpus, name = stats["corpus"], hub_model_id or "trl-icrl/tiny-llama"
    text = f"""---
library_name: transformers
license: apache-2.0
pipeline_tag: text-generation
tags: [trl-icrl, in-context-rl, frozen-lake, world-model]
---

# {name}

The embedded base of `trl_icrl`: a ~1.5M-parameter Llama (hidden 128, 4 layers, 4 heads, MLP 512) over a
word-level vocabulary of the token protocol, pretrained by next-token prediction on histories of **random play**.
It models the world (what follows an action, where episodes end, what rewards look like); it is no agent: no
behaviour in its corpus prefers any action. DQN then trains a peft adapter and a Q head on it (`DQNTrainer("tiny")`).

## Corpus
{corpus["corpus_trials"]:,} trials ({stats["corpus_tokens"]:,} tokens with the {corpus["eval_trials"]} held out)
of uniformly random actions on generated parametric Frozen Lake maps (3-5 a side, the paper's generator), each
trial {corpus["context_tokens"]} tokens of the `step` format (`coords` observations); a share
{corpus["coordinate_frame_share"]:g} of the trials place their map at a random offset in a
{corpus["coordinate_frame"]} x {corpus["coordinate_frame"]} frame, a share {corpus["map_switches"]:g} switch to a
second map mid-trial. Every map that an evaluation of `trl_icrl` plays under seeds 0-{corpus["reserved_seeds"] - 1}
(in distribution, out of distribution, non-stationary maps A and B, the stitching family) is excluded.

## Training
{stats["optimizer_steps"]} optimizer steps (batch {stats["batch_size"]}, lr {stats["learning_rate"]:g}, cosine),
held-out corpus loss {stats["eval_loss_before"]:.3f} -> **{stats["eval_loss_after"]:.3f}** nats per token;
corpus {stats["corpus_minutes"]:.1f} min, training {stats["train_minutes"]:.1f} min on {stats["device"]}.

    python recipes/pretrain_tiny_base.py --config recipes/configs/tiny_base.yaml

## Use
```python
import trl_icrl  # makes the name resolve offline
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained("{name}")
```
"""
    (Path(output_dir) / "README.md").write_text(text)
