"""Offline datasets from scripted behaviour policies, written into a ``ReplayStore`` (data-quality experiments).

Quality presets (per trial, on fresh training maps; every behaviour plays under the paper's ramp, so each context
opens with the random episodes an evaluation's context opens with):
- ``low``: epsilon-optimal with quality 0.3 (where the ramp lets it choose, the optimal action 30% of the time);
- ``high``: epsilon-optimal with quality 0.9;
- ``mixed``: half the trials ``low``, half ``high``;
- ``q_learning``: the learning history of an optimistic tabular Q-learner;
- ``random``: uniformly random actions throughout (no policy: the pretraining corpus of the embedded base).

With ``map_switches`` a share of the batches switch every trial to a second training map after an episode drawn
in ``SWITCH_EPISODES`` (the behaviour keeps what it learned; the ramp starts again), as the non-stationary
evaluation switches maps mid-context.

``save_histories`` writes trials as a dataset of histories with its card (``load_dataset(folder)`` reads it, and
``DQNConfig.dataset_name`` / ``DQNTrainer(train_dataset=...)`` train on it); ``push_histories`` publishes it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import datasets
import numpy as np
from huggingface_hub import DatasetCard, DatasetCardData, HfApi
from tqdm.auto import tqdm

from .agent.exploration import ExplorationSchedule
from .baselines import EpsilonOptimalAgent, QLearningAgent, UniformRandomAgent, play_agents
from .choices import QUALITIES
from .envs import TRAIN_SEED_LIMIT, make_env
from .envs.codec import EnvCodec
from .envs.families import map_family
from .envs.spec import EnvSpec
from .protocol import TokenProtocol
from .replay_store import FEATURES, ReplayStore

SWITCH_EPISODES = (10, 30)
"""First and last episode (counted from 0) at which a switching trial's second map starts."""


def _ramp_from(switch: int | None, n_episodes: int) -> ExplorationSchedule:
    """The paper's ramp, started again at episode ``switch`` (``None``: once)."""
    ramp = ExplorationSchedule.parse("paper_ramp")
    if switch is None:
        return ramp
    return ExplorationSchedule([ramp.greedy_probability(e) for e in range(switch)]
                               + [ramp.greedy_probability(e) for e in range(max(n_episodes - switch, 1))])


def offline_trials(protocol: TokenProtocol, codec: EnvCodec, env_id: str, quality: str, n_trials: int,
                   episodes_per_trial: int = 30, family: str = "id", seed: int = 0,
                   exclude_maps=frozenset(), batch: int = 32, max_context_tokens: int | None = None,
                   coordinate_frame: int = 0, coordinate_frame_share: float = 1.0, map_switches: float = 0.0,
                   progress: bool = True) -> list[dict]:
    """Replay rows of ``n_trials`` trials played by the behaviour policy of ``quality`` on fresh maps of ``family``
    (``env_id`` must have generated maps: the policies read the map). With ``max_context_tokens`` a trial ends when
    that many tokens are full, like the trials the trainer collects online; ``coordinate_frame`` and
    ``coordinate_frame_share`` as in ``make_env``;
    ``map_switches``: the share of batches whose trials switch maps (see the module docstring)."""
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {sorted(QUALITIES)}, got {quality!r}")
    maps_of = map_family(env_id, family)
    if maps_of is None:
        raise ValueError(f"offline data needs an env with generated maps; {env_id} has none: leave offline_data unset "
                         "(recipes/configs/tiny_online.yaml for the main job)")
    rng = np.random.default_rng([seed, 2])
    rows: list[dict] = []
    with tqdm(total=n_trials, desc=f"offline data ({quality})", unit="trial", disable=not progress) as bar:
        while len(rows) < n_trials:
            n = min(batch, n_trials - len(rows))
            seeds = [int(s) for s in rng.integers(TRAIN_SEED_LIMIT, size=n)]
            maps = [maps_of.generate(s, exclude=exclude_maps) for s in seeds]
            switch, reset_options, second = None, None, [None] * n
            if map_switches and rng.random() < map_switches:
                switch = int(rng.integers(SWITCH_EPISODES[0], SWITCH_EPISODES[1] + 1))
                second = [maps_of.generate(int(s), exclude=exclude_maps)
                          for s in rng.integers(TRAIN_SEED_LIMIT, size=n)]

                def reset_options(i: int, episode: int, second=second, switch=switch) -> dict | None:
                    return {"desc": second[i]} if episode == switch else None
            envs = [make_env(env_id, desc=m, coordinate_frame=coordinate_frame,
                             coordinate_frame_share=coordinate_frame_share) for m in maps]
            if quality == "q_learning":
                agents = [QLearningAgent(env.observation_space.n, codec.n_actions, init=1.0, rng=rng) for env in envs]
                tags = ["q_learning_optimistic"] * n
            elif quality == "random":
                agents = [UniformRandomAgent(codec.n_actions, rng) for _ in envs]
                tags = ["random"] * n
            else:
                levels = [QUALITIES[quality][(len(rows) + i) % len(QUALITIES[quality])] for i in range(n)]
                agents = [EpsilonOptimalAgent(env, q, rng) for env, q in zip(envs, levels)]
                tags = [f"epsilon_optimal_{q:g}" for q in levels]
            result = play_agents(agents, envs, episodes_per_trial, _ramp_from(switch, episodes_per_trial), rng,
                                 reset_seeds=seeds, reset_options=reset_options, protocol=protocol, codec=codec,
                                 max_context_tokens=max_context_tokens)
            for trial, m, b, s, tag in zip(result.trials, maps, second, seeds, tags):
                env_map = "/".join(m) if b is None else f"{'/'.join(m)} then {'/'.join(b)} from episode {switch}"
                rows.append(dict(trial.to_row(), env_id=env_id, env_map=env_map, seed=s, policy=tag))
            bar.update(n)
    return rows


def spec_offline_trials(spec: EnvSpec, quality: str, n_trials: int, **kwargs) -> list[dict]:
    """``offline_trials`` of a run's env: its protocol, codec, family of training maps, exclusions and coordinate
    frame from its ``EnvSpec`` (``kwargs``: the others)."""
    return offline_trials(spec.protocol, spec.codec, spec.env_id, quality, n_trials, family=spec.family_name,
                          exclude_maps=spec.training_exclusions, **spec.frame, **kwargs)


def offline_store(protocol: TokenProtocol, codec: EnvCodec, env_id: str, quality: str, n_trials: int,
                  protocol_signature: str, capacity: int | None = None, **kwargs) -> ReplayStore:
    """A replay store holding ``offline_trials``, with room for ``capacity`` trials (default: just these; trials
    appended later evict the oldest)."""
    store = ReplayStore(capacity=max(n_trials, capacity or 0), protocol_signature=protocol_signature)
    store.append(offline_trials(protocol, codec, env_id, quality, n_trials, **kwargs))
    return store


HISTORIES_FILE = "data/train-00000-of-00001.parquet"
"""Where ``save_histories`` writes the trials: the ``train`` split by ``datasets``' naming of data files."""


def histories_card(dataset: datasets.Dataset, protocol_signature: str, base_model: str,
                   specs: Mapping[str, EnvSpec], seed: int, max_context_tokens: int,
                   episodes_per_trial: int) -> DatasetCard:
    """The card of a dataset of histories: which behaviour played them (each ``policy`` and its number of
    trials), how many trials, on which envs and map families (``specs``: the run's envs), which maps were excluded
    (each spec's ``training_exclusions``: the maps the evaluations with ``seed`` play, never drawn for training),
    and the protocol and tokenizer (``base_model``'s) the ids belong to."""
    policies = ", ".join(f"`{policy}` ({n} trials)" for policy, n in sorted(Counter(dataset["policy"]).items()))
    envs = Counter(dataset["env_id"])
    maps = ", ".join(f"`{env_id}` ({n} trials, " + (f"generated maps of the `{specs[env_id].family_name}` family)"
                                                     if env_id in specs and specs[env_id].family else "its own map)")
                     for env_id, n in envs.items())
    excluded = ", ".join(f"the {len(spec.training_exclusions)} maps of `{env_id}` that the evaluations with seed "
                         f"{seed} play" for env_id, spec in specs.items())
    data = DatasetCardData(license="apache-2.0", task_categories=["reinforcement-learning"],
                           tags=["trl-icrl", "in-context-rl", "reinforcement-learning", *envs],
                           size_categories=["1K<n<10K" if len(dataset) >= 1000 else "n<1K"])
    columns = "\n".join(f"- `{name}`" for name in FEATURES)
    text = f"""---
{data.to_yaml()}
---

# Histories for in-context reinforcement learning

{len(dataset)} trials, each one growing context of several episodes (at most {episodes_per_trial}, ending when
{max_context_tokens} tokens are full), written as token ids by `trl_icrl`'s protocol `{protocol_signature}` over the
tokenizer of `{base_model}`.

- **Behaviour:** {policies}: the scripted behaviour policies of `trl_icrl.offline_data`, under the paper's
  exploration ramp.
- **Environments and maps:** {maps}; each trial's map is in `env_map`.
- **Held-out maps excluded:** {excluded or "none"} (`trl_icrl.envs.evaluation_maps`): no trial plays them.

## Columns

{columns}

One row per trial: the `Trial` fields of `trl_icrl.protocol` (token ids, decision positions, actions, rewards,
episode ends), then where the trial came from.

## Use

```python
from datasets import load_dataset
from trl_icrl import DQNConfig, DQNTrainer

histories = load_dataset(REPO_ID, split="train")  # or DQNConfig(dataset_name=REPO_ID)
trainer = DQNTrainer("{base_model}", DQNConfig(online_collection=False), train_dataset=histories)
```
"""
    return DatasetCard(text)


def save_histories(dataset: datasets.Dataset, output_dir: str | os.PathLike, card: DatasetCard) -> Path:
    """Write ``dataset`` (the replay store's columns) as parquet, ``HISTORIES_FILE``, with its ``card`` as README.md
    into ``output_dir``, which ``datasets.load_dataset`` then reads; returns ``output_dir``."""
    output_dir = Path(output_dir)
    (output_dir / HISTORIES_FILE).parent.mkdir(parents=True, exist_ok=True)
    dataset.cast(FEATURES).to_parquet(str(output_dir / HISTORIES_FILE))
    card.save(output_dir / "README.md")
    return output_dir


def push_histories(output_dir: str | os.PathLike, repo_id: str, token: str | None = None,
                   private: bool | None = None) -> str:
    """Upload a folder written by ``save_histories`` to the Hub dataset repo ``repo_id`` (made if needed); returns
    its URL."""
    from .model_card import push_token  # the Hub side; offline data needs it only to publish

    api = HfApi(token=push_token(token))
    url = api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
    api.upload_folder(folder_path=str(output_dir), repo_id=url.repo_id, repo_type="dataset",
                      allow_patterns=[HISTORIES_FILE, "README.md"], commit_message="Upload histories made by trl_icrl")
    return str(url)
