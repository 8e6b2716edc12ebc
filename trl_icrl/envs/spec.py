"""``EnvSpec``: everything a run decides about one env it trains on, decided once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .codec import EnvCodec
from .frozen_lake_maps import Map, MapFamily
from .splits import SPLITS

if TYPE_CHECKING:
    from ..protocol import TokenProtocol

__all__ = ["EnvSpec"]


@dataclass(frozen=True)
class EnvSpec:
    """One env of a run: how it is written, which maps it trains and is evaluated on, and its rewards' path.

    Attributes:
        env_id: the gymnasium id.
        codec: how its observations, actions and rewards are written.
        protocol: its token protocol over the run's tokenizer.
        family_name: its family of training maps (``"id"`` names none for an env without generated maps).
        family: that family (``None``: the env plays its own tasks as gymnasium makes them).
        eval_maps: split (``"validation"``, ``"heldout"``) -> the maps its evaluations play (empty without a family
            or with ``eval_maps=0``).
        training_exclusions: every map an evaluation with the run's seed may play, in any family: never trained on.
        reward_scale: its rewards' multiplier in the TD targets (before ``DQNConfig.reward_scale``).
        goal_reward: what its terminal steps add to the TD targets (``reward_normalisation="goal"``).
        coordinate_frame, coordinate_frame_share: ``make_env``'s random offsets of its maps (0 unless written in
            coordinates).
    """

    env_id: str
    codec: EnvCodec
    protocol: TokenProtocol
    family_name: str
    family: MapFamily | None
    eval_maps: dict[str, list[Map]] = field(default_factory=lambda: {split: [] for split in SPLITS})
    training_exclusions: frozenset[Map] = frozenset()
    reward_scale: float = 1.0
    goal_reward: float = 0.0
    coordinate_frame: int = 0
    coordinate_frame_share: float = 1.0

    @property
    def heldout_maps(self) -> list[Map]:
        """The held-out maps its reported results play."""
        return self.eval_maps["heldout"]

    @property
    def frame(self) -> dict:
        """``make_env``'s coordinate-frame keyword arguments (none for an env written without coordinates)."""
        if self.codec.observation_format != "coords":
            return {}
        return {"coordinate_frame": self.coordinate_frame, "coordinate_frame_share": self.coordinate_frame_share}
