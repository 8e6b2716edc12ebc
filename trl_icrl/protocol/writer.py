"""``TrialWriter``: appends episodes to a trial step by step, returning the ids each call adds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formats import ProtocolError
from .trial import Episode, Trial

if TYPE_CHECKING:
    from .token_protocol import TokenProtocol


class TrialWriter:
    """Appends episodes step by step; each call returns the ids it added (for KV-cached rollouts)."""

    def __init__(self, protocol: TokenProtocol):
        self.protocol = protocol
        self.trial = Trial()
        self._in_episode = False

    def begin_episode(self, observation: str) -> list[int]:
        if self._in_episode:
            raise ProtocolError("begin_episode called inside an open episode")
        self._in_episode = True
        self.trial.episode_offsets.append(len(self.trial.input_ids))
        new = self.protocol.layout.begin(observation)
        self._extend(new)
        return new

    def step(self, action: int, reward: float, next_observation: str | None, terminated: bool = False,
             truncated: bool = False) -> list[int]:
        """Record one transition; opens the next decision unless the episode ended."""
        if not self._in_episode:
            raise ProtocolError("step called outside an episode; call begin_episode first")
        trial = self.trial
        new, done, next_decision = self.protocol.layout.step(action, reward, next_observation, terminated, truncated)
        trial.decision_positions.append(len(trial.input_ids) - 1)
        trial.actions.append(action)
        trial.rewards.append(float(reward))
        trial.episode_index.append(trial.n_episodes - 1)
        trial.dones.append(done)
        trial.next_positions.append(-1 if next_decision is None else len(trial.input_ids) + next_decision)
        self._in_episode = not (terminated or truncated)
        self._extend(new)
        return new

    def write_episode(self, episode: Episode) -> list[int]:
        """Record a whole, finished episode (e.g. a hand-written demonstration)."""
        if not episode.observations or len(episode.actions) != len(episode.observations) \
                or len(episode.rewards) != len(episode.actions):
            raise ProtocolError(f"an episode needs one observation, action and reward per step, got "
                                f"{len(episode.observations)}, {len(episode.actions)}, {len(episode.rewards)}")
        new = self.begin_episode(episode.observations[0])
        last = len(episode.actions) - 1
        for t, (action, reward) in enumerate(zip(episode.actions, episode.rewards)):
            end = t == last
            new += self.step(action, reward, episode.final_observation if end else episode.observations[t + 1],
                             terminated=end and episode.terminated, truncated=end and episode.truncated)
        return new

    def _extend(self, ids: list[int]) -> None:
        self.trial.input_ids.extend(ids)
