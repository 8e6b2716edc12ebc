"""``HistoryParser``: token ids back into episodes, the inverse of ``TokenProtocol.render``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formats import ProtocolError
from .trial import Episode

if TYPE_CHECKING:
    from .token_protocol import TokenProtocol


class IdTable(dict):
    """Id tuples -> what they stand for, with its key lengths, longest first (the parser takes the longest match)."""

    def __init__(self, items):
        super().__init__(items)
        self.lengths = sorted({len(key) for key in self}, reverse=True)


class HistoryParser:
    """Recursive-descent reader over one id sequence (the inverse of ``TokenProtocol.render``); the protocol's
    layout reads the episodes with these pieces."""

    def __init__(self, protocol: TokenProtocol, ids: list[int]):
        self.p, self.ids, self.i = protocol, ids, 0

    @property
    def done(self) -> bool:
        return self.i >= len(self.ids)

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

    def lookup(self, table: IdTable, what: str):
        """The value of the longest key of ``table`` that the ids continue with; moves past it."""
        key = self._longest_key(table)
        if key is None:
            raise self.fail(what)
        self.i += len(key)
        return table[key]

    def _longest_key(self, table: IdTable) -> tuple[int, ...] | None:
        for n in table.lengths:
            key = tuple(self.ids[self.i:self.i + n])
            if len(key) == n and key in table:
                return key
        return None

    def observation(self) -> str:
        p = self.p
        self.expect(p.observation_prefix, "an observation")
        text = self.lookup(p.observation_by_ids, "an observation")
        self.expect(p.observation_suffix + p.action_prefix, "the action prefix")
        return text

    def action(self) -> int | None:
        for a, ids in enumerate(self.p.action_ids):
            if self.take(ids):
                return a
        return None

    def episodes(self) -> list[Episode]:
        if not self.ids:
            raise ProtocolError("cannot parse an empty id sequence")
        return self.p.layout.read_episodes(self)

    def reward(self) -> float:
        """A reward piece when one follows, else 0 (rewards are written only when non-zero)."""
        p, start = self.p, self.i
        if p.reward_ids and self.take(p.reward_prefix):
            if self._longest_key(p.reward_by_ids) is not None:
                reward = self.lookup(p.reward_by_ids, "a reward")
                self.expect(p.reward_suffix, "the reward suffix")
                return reward
            if p.reward_prefix:
                raise self.fail("a reward")
            self.i = start
        return 0.0
