"""``HistoryParser``: token ids back into episodes, the inverse of ``TokenProtocol.render``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formats import ProtocolError
from .trial import Episode

if TYPE_CHECKING:
    from .token_protocol import TokenProtocol


class HistoryParser:
    """Recursive-descent reader over one id sequence (the inverse of ``TokenProtocol.render``)."""

    def __init__(self, protocol: TokenProtocol, ids: list[int]):
        self.p, self.ids, self.i = protocol, ids, 0
        self._obs_lengths = sorted({len(k) for k in protocol._observation_by_ids}, reverse=True)
        self._reward_lengths = sorted({len(k) for k in protocol._reward_by_ids}, reverse=True)
        self._step_lengths = sorted({len(k) for k in protocol._step_by_ids}, reverse=True)

    def fail(self, expected: str) -> ProtocolError:
        found = self.ids[self.i:self.i + 4]
        return ProtocolError(f"cannot parse ids at position {self.i}: expected {expected}, found {found}")

    def take(self, piece: list[int]) -> bool:
        if self.ids[self.i:self.i + len(piece)] == piece:
            self.i += len(piece)
            return True
        return False

    def expect(self, piece: list[int], what: str) -> None:
        if not self.take(piece):
            raise self.fail(what)

    def lookup(self, table: dict, lengths: list[int], what: str):
        for n in lengths:
            key = tuple(self.ids[self.i:self.i + n])
            if len(key) == n and key in table:
                self.i += n
                return table[key]
        raise self.fail(what)

    def observation(self) -> str:
        p = self.p
        self.expect(p.observation_prefix, "an observation")
        text = self.lookup(p._observation_by_ids, self._obs_lengths, "an observation")
        self.expect(p.observation_suffix + p.action_prefix, "the action prefix")
        return text

    def action(self) -> int | None:
        for a, ids in enumerate(self.p.action_ids):
            if self.take(ids):
                return a
        return None

    def episodes(self) -> list[Episode]:
        p, episodes = self.p, []
        if not self.ids:
            raise ProtocolError("cannot parse an empty id sequence")
        if p.one_word_per_step:
            return self.step_episodes()
        while self.i < len(self.ids):
            self.expect(p.episode_start, "an episode start")
            episode = Episode(observations=[self.observation()], actions=[], rewards=[])
            while True:
                action = self.action()
                if action is None:
                    if episode.actions and self.take(p.truncation):
                        episode.truncated = True
                        episode.final_observation = episode.observations.pop()
                        self.expect(p.episode_end, "the episode end")
                        break
                    raise self.fail("an action word")
                self.expect(p.action_suffix, "the action suffix")
                reward = self.reward()
                episode.actions.append(action)
                episode.rewards.append(reward)
                if self.take(p.episode_end):
                    episode.terminated = True
                    break
                episode.observations.append(self.observation())
            episodes.append(episode)
        return episodes

    def step_word(self) -> tuple[str, int | None, float, bool]:
        return self.lookup(self.p._step_by_ids, self._step_lengths, "a step word")

    def step_episodes(self) -> list[Episode]:
        """``step`` format: a start word, then one word per step; ``end`` or ``<trunc>`` closes an episode."""
        episodes = []
        while self.i < len(self.ids):
            start = self.i
            observation, previous, _, _ = self.step_word()
            if previous is not None:
                self.i = start
                raise self.fail("an episode's start word")
            episode = Episode(observations=[observation], actions=[], rewards=[])
            while True:
                if episode.actions and self.take(self.p.truncation):
                    episode.truncated = True
                    episode.final_observation = episode.observations.pop()
                    break
                if self.i >= len(self.ids):
                    raise self.fail("a step word or the truncation marker")
                start = self.i
                observation, action, reward, terminated = self.step_word()
                if action is None:
                    self.i = start
                    raise self.fail("a step word, not a start word")
                episode.actions.append(action)
                episode.rewards.append(reward)
                if terminated:
                    episode.terminated, episode.final_observation = True, observation
                    break
                episode.observations.append(observation)
            episodes.append(episode)
        return episodes

    def reward(self) -> float:
        """A reward piece when one follows, else 0 (rewards are written only when non-zero)."""
        p, start = self.p, self.i
        if p.reward_ids and self.take(p.reward_prefix):
            if any(tuple(self.ids[self.i:self.i + n]) in p._reward_by_ids for n in self._reward_lengths):
                reward = self.lookup(p._reward_by_ids, self._reward_lengths, "a reward")
                self.expect(p.reward_suffix, "the reward suffix")
                return reward
            if p.reward_prefix:
                raise self.fail("a reward")
            self.i = start
        return 0.0
