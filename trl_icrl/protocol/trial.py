"""What the protocol writes: episodes as text, and a trial's token ids with one entry per decision (its schema is the
replay store's)."""

from __future__ import annotations

from dataclasses import dataclass, field

CONTINUE, TERMINATED, TRUNCATED = 0, 1, 2


@dataclass
class Episode:
    """One episode as the protocol sees it; observations are already rendered to text.

    ``observations[t]`` is seen before ``actions[t]``; ``rewards[t]`` follows it. ``final_observation``
    is the observation after the last action; it is rendered only when the episode was truncated.
    """

    observations: list[str]
    actions: list[int]
    rewards: list[float]
    terminated: bool = False
    truncated: bool = False
    final_observation: str | None = None


@dataclass
class Trial:
    """Token ids of one growing multi-episode context, with one entry per decision.

    Lengths: ``input_ids`` (L,); ``decision_positions``, ``actions``, ``rewards``, ``dones``,
    ``next_positions``, ``episode_index`` (D,); ``episode_offsets`` (E,), the token index where
    each episode starts. ``dones[d]`` is CONTINUE, TERMINATED or TRUNCATED; ``next_positions[d]`` is
    where the next state's value is read (-1 after termination).
    """

    input_ids: list[int] = field(default_factory=list)
    decision_positions: list[int] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    dones: list[int] = field(default_factory=list)
    next_positions: list[int] = field(default_factory=list)
    episode_index: list[int] = field(default_factory=list)
    episode_offsets: list[int] = field(default_factory=list)

    @property
    def n_episodes(self) -> int:
        return len(self.episode_offsets)

    def window(self, start: int) -> Trial:
        """The trial from token ``start`` on (``start`` must be an episode offset); positions shift."""
        keep = [d for d, pos in enumerate(self.decision_positions) if pos >= start]
        first_episode = self.episode_offsets.index(start)
        return Trial(
            input_ids=self.input_ids[start:],
            decision_positions=[self.decision_positions[d] - start for d in keep],
            actions=[self.actions[d] for d in keep],
            rewards=[self.rewards[d] for d in keep],
            dones=[self.dones[d] for d in keep],
            next_positions=[self.next_positions[d] - start if self.next_positions[d] >= 0 else -1 for d in keep],
            episode_index=[self.episode_index[d] - first_episode for d in keep],
            episode_offsets=[o - start for o in self.episode_offsets[first_episode:]],
        )

    def to_row(self) -> dict[str, list]:
        return {name: list(getattr(self, name)) for name in TRIAL_FIELDS}


@dataclass(frozen=True)
class TrialField:
    """One field of a ``Trial``: how it is stored (a numpy/arrow dtype name) and what pads it in a batch of trials
    (``None``: the field is not per-decision, so batches do not carry it; ``input_ids`` pad with the pad token)."""

    name: str
    storage: str
    batch_pad: int | float | None = None


TRIAL_SCHEMA = (
    TrialField("input_ids", "int32"),
    TrialField("decision_positions", "int32", 0),
    TrialField("actions", "int8", 0),
    TrialField("rewards", "float32", 0.0),
    TrialField("dones", "int8", CONTINUE),
    TrialField("next_positions", "int32", -1),
    TrialField("episode_index", "int16", 0),
    TrialField("episode_offsets", "int32"),
)
"""The one description of a trial's columns: the replay store's features and the batch collation derive from it."""
TRIAL_FIELDS = tuple(f.name for f in TRIAL_SCHEMA)
