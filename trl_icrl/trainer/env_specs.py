"""The ``EnvSpec`` of each env a run trains on, built once from its ``DQNConfig``."""

from __future__ import annotations

from collections.abc import Mapping

from transformers import PreTrainedTokenizerBase

from ..envs import SPLITS, evaluation_maps, split_maps
from ..envs.codec import EnvCodec, codec_for
from ..envs.families import map_family, trained_map_families
from ..envs.spec import EnvSpec
from ..protocol import TokenProtocol
from .collector import check_mixture
from .dqn_config import DQNConfig
from .rewards import env_goal_reward, env_reward_scale

__all__ = ["build_env_specs", "env_codecs", "protocol_signature"]


def env_codecs(args: DQNConfig) -> dict[str, EnvCodec]:
    """How each env trained on is written (the first is ``args.env_id``); one env: ``observation_format``
    (``None``: the env's own), a mixture: each env's own. Envs that cannot share one Q head, and a coordinate frame
    for an env written as state ids, are refused in one sentence."""
    codecs = {env_id: codec_for(env_id, None if args.train_env_ids else args.observation_format)
              for env_id in (args.train_env_ids or [args.env_id])}
    first = codecs[args.env_id]
    if args.coordinate_frame and not args.train_env_ids and first.observation_format != "coords":
        raise ValueError(f"coordinate_frame={args.coordinate_frame} places grids in a frame of coordinates, and "
                         f"{args.env_id} is written as state ids: set coordinate_frame 0")
    check_mixture(codecs, args.q_parameterisation)
    return codecs


def build_env_specs(args: DQNConfig, codecs: Mapping[str, EnvCodec],
                    protocols: Mapping[str, TokenProtocol]) -> dict[str, EnvSpec]:
    """Env id -> its spec: the family of training maps (``args.map_family`` for the first env, each other env's
    first), ``eval_maps`` maps of each split, the maps training never draws, the reward path's scale and goal."""
    families = trained_map_families(list(codecs), args.map_family)
    specs = {}
    for env_id, codec in codecs.items():
        family = map_family(env_id, families[env_id])
        coords = codec.observation_format == "coords"
        specs[env_id] = EnvSpec(
            env_id, codec, protocols[env_id], families[env_id], family,
            eval_maps={split: split_maps(split, family, args.eval_maps, args.seed)
                       if family is not None and args.eval_maps else [] for split in SPLITS},
            training_exclusions=evaluation_maps(env_id, args.seed),
            reward_scale=env_reward_scale(codec.reward_values, args.reward_normalisation, args.gamma),
            goal_reward=env_goal_reward(codec.reward_values, args.reward_normalisation),
            coordinate_frame=args.coordinate_frame if coords else 0,
            coordinate_frame_share=args.coordinate_frame_share if coords else 1.0)
    return specs


def protocol_signature(args: DQNConfig, codecs: Mapping[str, EnvCodec], tokenizer: PreTrainedTokenizerBase) -> str:
    """Which envs, formats and vocabulary a replay store's token ids belong to."""
    vocabulary = f"{type(tokenizer).__name__}:{len(tokenizer)}"
    observations = args.observation_format or "+".join(c.observation_format for c in codecs.values())
    return f"{'+'.join(codecs)}|{args.protocol_format}|{observations}|{vocabulary}"
