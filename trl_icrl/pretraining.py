"""Pretraining a base by next-token prediction on histories of random play: a world model, not an agent.

The corpus holds trials of uniformly random actions on training maps (never a map any evaluation plays), written
in the token protocol; the base learns what follows an action, where episodes end and what rewards look like. No
behaviour in it prefers any action, so whatever in-context RL the agent shows later comes from the DQN fine-tune.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import datasets
from transformers import PreTrainedTokenizerBase

from .envs import ENV_ID, evaluation_maps
from .envs.codec import codec_for
from .envs.families import first_family, map_families, map_family
from .offline_data import offline_trials
from .protocol import TokenProtocol
from .tiny_model import BASE_ALIASES, TINY_BASE_NAME, canonical_model_name


def _corpus_shards(shards: list[int], tokenizer: PreTrainedTokenizerBase, env_id: str, family: str,
                  protocol_format: str, observation_format: str | None, trials_per_shard: int, context_tokens: int,
                  coordinate_frame: int, coordinate_frame_share: float, map_switches: float, seed: int,
                  reserved_seeds: int) -> Iterator[dict]:
    codec = codec_for(env_id, observation_format)
    protocol = TokenProtocol(tokenizer, protocol_format, codec.action_words, codec.observation_texts(),
                             codec.reward_values)
    exclude = frozenset().union(*(evaluation_maps(env_id, s) for s in range(reserved_seeds)))
    for shard in shards:
        rows = offline_trials(protocol, codec, env_id, "random", trials_per_shard, episodes_per_trial=10_000,
                              family=family, seed=seed * 100_003 + shard, exclude_maps=exclude,
                              max_context_tokens=context_tokens,
                              coordinate_frame=coordinate_frame if codec.observation_format == "coords" else 0,
                              coordinate_frame_share=coordinate_frame_share, map_switches=map_switches,
                              progress=shard == 0)
        for row in rows:
            yield {"input_ids": row["input_ids"], "env_map": row["env_map"]}


def random_play_corpus(tokenizer: PreTrainedTokenizerBase, n_trials: int,
                       env_id: str = ENV_ID, family: str | None = None,
                       protocol_format: str = "step", observation_format: str | None = None, context_tokens: int = 1280,
                       coordinate_frame: int = 7, coordinate_frame_share: float = 0.5, map_switches: float = 0.5,
                       seed: int = 0, reserved_seeds: int = 5, num_proc: int = 1) -> datasets.Dataset:
    """``n_trials`` trials of random play, each filling ``context_tokens`` tokens (``input_ids``, with ``env_map``).

    Maps are training maps of ``env_id``'s ``family`` (default its first) with every map reserved for evaluation
    under the seeds ``0 .. reserved_seeds - 1`` excluded; observations written the env's own way
    (``observation_format=None``: coordinates for a grid, state ids otherwise); ``coordinate_frame`` (grids written
    as coordinates only), ``coordinate_frame_share`` and ``map_switches`` as for offline data. ``num_proc``
    processes each make an equal shard.
    """
    family = corpus_families([env_id], None if family is None else [family])[env_id]
    shards = max(1, num_proc)
    kwargs = dict(tokenizer=tokenizer, env_id=env_id, family=family, protocol_format=protocol_format,
                  observation_format=observation_format, trials_per_shard=-(-n_trials // shards),
                  context_tokens=context_tokens, coordinate_frame=coordinate_frame,
                  coordinate_frame_share=coordinate_frame_share, map_switches=map_switches, seed=seed,
                  reserved_seeds=reserved_seeds)
    corpus = datasets.Dataset.from_generator(_corpus_shards, gen_kwargs={"shards": list(range(shards)), **kwargs},
                                             num_proc=shards if shards > 1 else None)
    return corpus.select(range(min(n_trials, len(corpus))))


def corpus_families(env_ids: Sequence[str], families: Sequence[str] | None = None) -> dict[str, str]:
    """Env id -> its family of maps in a corpus (``families`` in order, else each env's first); an env without
    generated maps, an unknown family or a count that does not match is one ``ValueError``."""
    if families is not None and len(families) != len(env_ids):
        raise ValueError(f"map_families names {len(families)} families for {len(env_ids)} env ids: give one per "
                         "env id, or none")
    chosen = {}
    for env_id, family in zip(env_ids, families or [None] * len(env_ids)):
        if not map_families(env_id):
            raise ValueError(f"a random-play corpus needs envs with generated maps; {env_id} has none")
        chosen[env_id] = family or first_family(env_id)
        map_family(env_id, chosen[env_id])  # one sentence naming the families there are
    return chosen


def mixture_corpus(tokenizer: PreTrainedTokenizerBase, n_trials: int, env_families: Mapping[str, str | None],
                   seed: int = 0, **kwargs) -> datasets.Dataset:
    """``random_play_corpus`` of each env id of ``env_families`` (env id -> family, ``None``: its first) in equal
    shares, ``n_trials`` in all, shuffled (seeded), with an ``env_id`` column; ``kwargs`` as for
    ``random_play_corpus``."""
    if not env_families:
        raise ValueError("a corpus needs at least one env id")
    shares = [n_trials // len(env_families) + (i < n_trials % len(env_families)) for i in range(len(env_families))]
    parts = [random_play_corpus(tokenizer, share, env_id=env_id, family=family, seed=seed, **kwargs)
             .add_column("env_id", [env_id] * share)
             for share, (env_id, family) in zip(shares, env_families.items())]
    return datasets.concatenate_datasets(parts).shuffle(seed=seed).flatten_indices()


def _corpus_envs(corpus: dict) -> str:
    """The envs of a corpus in words: ``trl_icrl/ParametricFrozenLake-v0`` (family ``id``) and so on."""
    families = corpus_families(corpus.get("env_ids") or [ENV_ID], corpus.get("map_families"))
    names = [f"`{env_id}` (family `{family}`)" for env_id, family in families.items()]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}, in equal shares"


def _initialisation(corpus: dict) -> str:
    """Where the weights started: a sentence for a base continued from another, nothing for a random start."""
    if not corpus.get("init_from"):
        return ""
    return (f" The weights started from `{canonical_model_name(corpus['init_from'])}`'s, its vocabulary grown by "
            "the words of these envs it lacked, each embedding the sum of its parts' (`trl_icrl.vocabulary`).")


def write_base_card(output_dir: str, stats: dict, hub_model_id: str | None = None) -> None:
    """``output_dir/README.md``: what the base is, its corpus, its cost and losses (``stats`` from the recipe)."""
    corpus, name = stats["corpus"], hub_model_id or TINY_BASE_NAME
    alias = next((alias for alias, shipped in BASE_ALIASES.items() if shipped == name), name)
    command = stats.get("command", "--config recipes/configs/tiny_base.yaml")
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
behaviour in its corpus prefers any action. DQN then trains a peft adapter and a Q head on it (`DQNTrainer("{alias}")`).

## Corpus
{corpus["corpus_trials"]:,} trials ({stats["corpus_tokens"]:,} tokens with the {corpus["eval_trials"]} held out)
of uniformly random actions on generated maps of {_corpus_envs(corpus)}, each trial
{corpus["context_tokens"]} tokens of the `step` format (grids as coordinates, other envs as state ids); a share
{corpus["coordinate_frame_share"]:g} of the grid trials place their map at a random offset in a
{corpus["coordinate_frame"]} x {corpus["coordinate_frame"]} frame, a share {corpus["map_switches"]:g} switch to a
second map mid-trial. Every map that an evaluation of `trl_icrl` plays under seeds 0-{corpus["reserved_seeds"] - 1}
(each family's held-out maps; for Frozen Lake in distribution, out of distribution, non-stationary maps A and B and
the stitching family; gymnasium's own FrozenLake-v1 and CliffWalking-v1 maps) is excluded.{_initialisation(corpus)}

## Training
{stats["optimizer_steps"]} optimizer steps (batch {stats["batch_size"]}, lr {stats["learning_rate"]:g}, cosine),
held-out corpus loss {stats["eval_loss_before"]:.3f} -> **{stats["eval_loss_after"]:.3f}** nats per token;
corpus {stats["corpus_minutes"]:.1f} min, training {stats["train_minutes"]:.1f} min on {stats["device"]}.

    python recipes/pretrain_tiny_base.py {command}

## Use
```python
import trl_icrl  # makes the name resolve offline
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained("{name}")
```
"""
    (Path(output_dir) / "README.md").write_text(text)
