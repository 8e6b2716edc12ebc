"""How a format lays one env step out in ids: marked pieces, or one word per step (the ``step`` format).

A ``TokenProtocol`` builds one layout (``LAYOUTS[format.layout]``); the writer and the parser ask it for the ids of
an episode's start and of a step, and to read episodes back, so neither branches on the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .formats import ProtocolError, step_word, step_words
from .parser import HistoryParser, IdTable
from .trial import CONTINUE, TERMINATED, TRUNCATED, Episode

if TYPE_CHECKING:
    from .token_protocol import TokenProtocol

StepIds = tuple[list[int], int, int | None]
"""What a step adds: its ids, its done code, and the index in those ids of the next decision (None: terminal)."""


class MarkedPieces:
    """Each piece framed by the format's markers: ``<ep> r0 c0 right r0 c1 down 1.0 </ep>``."""

    def __init__(self, protocol: TokenProtocol, observation_texts: Sequence[str], reward_values: Sequence[float]):
        if not protocol.episode_start or not protocol.episode_end:
            raise ProtocolError("episode_start and episode_end must not be empty")
        self.protocol = protocol
        self.token_budget = self._token_budget(observation_texts, reward_values)
        """The most ids one env step can add: its outcome, the end of its episode and the next one's start."""

    @staticmethod
    def words(action_words: Sequence[str], observation_texts: Sequence[str],
              reward_values: Sequence[float]) -> list[str]:
        """Words this layout writes beyond the pieces themselves: none."""
        return []

    def _token_budget(self, observation_texts: Sequence[str], reward_values: Sequence[float]) -> int:
        p = self.protocol
        longest_outcome = max(len(p.outcome(a, r)) for a in range(p.n_actions) for r in (0.0, *reward_values))
        longest_observation = max(len(p.observation(t)) for t in observation_texts)
        return longest_outcome + len(p.truncation) + len(p.episode_end) + len(p.episode_start) \
            + 2 * longest_observation

    def begin(self, observation: str) -> list[int]:
        return self.protocol.episode_start + self.protocol.observation(observation)

    def step(self, action: int, reward: float, next_observation: str | None, terminated: bool,
             truncated: bool) -> StepIds:
        p = self.protocol
        new = p.outcome(action, reward)
        if terminated:
            return new + p.episode_end, TERMINATED, None
        if next_observation is None:
            raise ProtocolError("a non-terminal step needs its next observation")
        new = new + p.observation(next_observation)
        next_decision = len(new) - 1
        if truncated:
            new = new + p.truncation + p.episode_end
        return new, TRUNCATED if truncated else CONTINUE, next_decision

    def read_episodes(self, reader: HistoryParser) -> list[Episode]:
        p, episodes = self.protocol, []
        while not reader.done:
            reader.expect(p.episode_start, "an episode start")
            episode = Episode(observations=[reader.observation()], actions=[], rewards=[])
            while True:
                action = reader.action()
                if action is None:
                    if episode.actions and reader.take(p.truncation):
                        episode.truncated = True
                        episode.final_observation = episode.observations.pop()
                        reader.expect(p.episode_end, "the episode end")
                        break
                    raise reader.fail("an action word")
                reader.expect(p.action_suffix, "the action suffix")
                episode.actions.append(action)
                episode.rewards.append(reader.reward())
                if reader.take(p.episode_end):
                    episode.terminated = True
                    break
                episode.observations.append(reader.observation())
            episodes.append(episode)
        return episodes


class StepWords:
    """One word per env step: the observation arrived at, the action that led there, the reward when non-zero and
    ``end`` when the episode terminated there (``r0_c0:start r0_c1:right r1_c1:down:1.0:end``)."""

    def __init__(self, protocol: TokenProtocol, observation_texts: Sequence[str], reward_values: Sequence[float]):
        self.protocol = protocol
        rewards = [0.0, *(float(r) for r in reward_values if r != 0)]
        words: dict[tuple[str, int | None, float, bool], str] = {}
        for text in observation_texts:
            words[(text, None, 0.0, False)] = step_word(text, None)
            for a, word in enumerate(protocol.action_words):
                for r in rewards:
                    for end in (False, True):
                        words[(text, a, r, end)] = step_word(text, word, r, end)
        self.word_ids = dict(zip(words, protocol.ids_of(list(words.values()))))
        """(observation, previous action or None, reward, terminated) -> ids of its word."""
        self.word_by_ids = IdTable((tuple(ids), key) for key, ids in self.word_ids.items())
        self.token_budget = 2 * max(len(ids) for ids in self.word_ids.values()) + len(protocol.truncation)
        """The most ids one env step can add: its word, the truncation marker and the next episode's start word."""

    words = staticmethod(step_words)

    def step_word_ids(self, observation: str, previous_action: int | None, reward: float = 0.0,
                      terminated: bool = False) -> list[int]:
        """Ids of the word for arriving at ``observation`` (see ``step_word``)."""
        try:
            return list(self.word_ids[(observation, previous_action, float(reward), terminated)])
        except KeyError:
            p = self.protocol
            raise ProtocolError(f"no step word for observation {observation!r}, previous action {previous_action}, "
                                f"reward {reward}: the protocol knows {len(p.observation_ids)} observation "
                                f"texts, {p.n_actions} actions and rewards {sorted(p.reward_ids)}") from None

    def begin(self, observation: str) -> list[int]:
        return self.step_word_ids(observation, None)

    def step(self, action: int, reward: float, next_observation: str | None, terminated: bool,
             truncated: bool) -> StepIds:
        p = self.protocol
        if next_observation is None:
            raise ProtocolError("the step format writes the tile every step ends on: pass its observation "
                                "(Episode.final_observation for a terminated episode)")
        if not 0 <= action < p.n_actions:
            raise ProtocolError(f"action {action} outside [0, {p.n_actions})")
        new = self.step_word_ids(next_observation, action, reward, terminated)
        if terminated:
            return new, TERMINATED, None
        next_decision = len(new) - 1
        if truncated:
            return new + p.truncation, TRUNCATED, next_decision
        return new, CONTINUE, next_decision

    def read_episodes(self, reader: HistoryParser) -> list[Episode]:
        """A start word, then one word per step; ``end`` or the truncation marker closes an episode."""
        episodes = []
        while not reader.done:
            start = reader.i
            observation, previous, _, _ = reader.lookup(self.word_by_ids, "a step word")
            if previous is not None:
                reader.i = start
                raise reader.fail("an episode's start word")
            episode = Episode(observations=[observation], actions=[], rewards=[])
            while True:
                if episode.actions and reader.take(self.protocol.truncation):
                    episode.truncated = True
                    episode.final_observation = episode.observations.pop()
                    break
                if reader.done:
                    raise reader.fail("a step word or the truncation marker")
                start = reader.i
                observation, action, reward, terminated = reader.lookup(self.word_by_ids, "a step word")
                if action is None:
                    reader.i = start
                    raise reader.fail("a step word, not a start word")
                episode.actions.append(action)
                episode.rewards.append(reward)
                if terminated:
                    episode.terminated, episode.final_observation = True, observation
                    break
                episode.observations.append(observation)
            episodes.append(episode)
        return episodes


LAYOUTS = {"marked": MarkedPieces, "step_words": StepWords}
"""``ProtocolFormat.layout`` -> the layout class a ``TokenProtocol`` builds."""
