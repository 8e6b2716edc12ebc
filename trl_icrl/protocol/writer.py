"""``TrialWriter``: appends episodes to a trial step by step, returning the ids each call adds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formats import ProtocolError
from .trial import CONTINUE, TERMINATED, TRUNCATED, Episode, Trial

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
        p, trial = self.protocol, self.trial
        self._in_episode = True
        trial.episode_offsets.append(len(trial.input_ids))
        new = p.step_word_ids(observation, None) if p.one_word_per_step else \
            p.episode_start + p.observation(observation)
        self._extend(new)
        return new

    def step(self, action: int, reward: float, next_observation: str | None, terminated: bool = False,
             truncated: bool = False) -> list[int]:
        """Record one transition; opens the next decision unless the episode ended."""
        if not self._in_episode:
            raise ProtocolError("step called outside an episode; call begin_episode first")
        p, trial = self.protocol, self.trial
        trial.decision_positions.append(len(trial.input_ids) - 1)
        trial.actions.append(action)
        trial.rewards.append(float(reward))
        trial.episode_index.append(trial.n_episodes - 1)
        if p.one_word_per_step:
            return self._step_word(action, reward, next_observation, terminated, truncated)
        new = p.outcome(action, reward)
        if terminated:
            new = new + p.episode_end
            trial.dones.append(TERMINATED)
            trial.next_positions.append(-1)
        else:
            if next_observation is None:
                raise ProtocolError("a non-terminal step needs its next observation")
            new = new + p.observation(next_observation)
            trial.next_positions.append(len(trial.input_ids) + len(new) - 1)
            if truncated:
                new = new + p.truncation + p.episode_end
            trial.dones.append(TRUNCATED if truncated else CONTINUE)
        self._in_episode = not (terminated or truncated)
        self._extend(new)
        return new

    def _step_word(self, action: int, reward: float, next_observation: str | None, terminated: bool,
                   truncated: bool) -> list[int]:
        """``step`` format: the word of the next observation carries the action, the reward and the end."""
        p, trial = self.protocol, self.trial
        if next_observation is None:
            raise ProtocolError("the step format writes the tile every step ends on: pass its observation "
                                "(Episode.final_observation for a terminated episode)")
        if not 0 <= action < p.n_actions:
            raise ProtocolError(f"action {action} outside [0, {p.n_actions})")
        new = p.step_word_ids(next_observation, action, reward, terminated)
        trial.dones.append(TERMINATED if terminated else TRUNCATED if truncated else CONTINUE)
        trial.next_positions.append(-1 if terminated else len(trial.input_ids) + len(new) - 1)
        if truncated and not terminated:
            new = new + p.truncation
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
