"""``TokenProtocol``: the ids of every piece of one env's histories in one tokenizer; renders and parses."""

from __future__ import annotations

from collections.abc import Sequence

from .chat_format import chat_format
from .formats import FORMATS, ProtocolError, ProtocolFormat, reward_text
from .layouts import LAYOUTS, MarkedPieces, StepWords
from .parser import HistoryParser, IdTable
from .trial import Episode, Trial
from .writer import TrialWriter


class TokenProtocol:
    """Renders histories of one kind of environment into ids of one tokenizer, and parses them back.

    Args:
        tokenizer: any ``PreTrainedTokenizerBase``.
        fmt: a ``ProtocolFormat`` or the name of a preset (``"step"``, ``"compact"``, ``"llama3"``), or ``"chat"``:
            the tokenizer's own chat template (``trl_icrl.protocol.chat_format``).
        action_words: one word per action, e.g. ``("left", "down", "right", "up")``.
        observation_texts: every observation text the environment can produce.
        reward_values: every non-zero reward the environment can produce.
    """

    def __init__(self, tokenizer, fmt: ProtocolFormat | str, action_words: Sequence[str],
                 observation_texts: Sequence[str], reward_values: Sequence[float]):
        if fmt == "chat":
            fmt = chat_format(tokenizer)
        self.format = FORMATS[fmt] if isinstance(fmt, str) else fmt
        self.action_words = tuple(action_words)
        self._tokenizer_name = type(tokenizer).__name__
        self._unk = getattr(tokenizer, "unk_token_id", None)
        self._tokenizer = tokenizer
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_token_id: int = pad if pad is not None else getattr(tokenizer, "eos_token_id", None) or 0
        """Pads batches and rollouts (never attended to): the tokenizer's pad token, else its eos token, else 0."""
        f = self.format
        self.episode_start = self.ids(f.episode_start)
        self.episode_end = self.ids(f.episode_end)
        self.truncation = self.ids(f.truncation)
        self.observation_prefix = self.ids(f.observation_prefix)
        self.observation_suffix = self.ids(f.observation_suffix)
        self.action_prefix = self.ids(f.action_prefix)
        self.action_suffix = self.ids(f.action_suffix)
        self.reward_prefix = self.ids(f.reward_prefix)
        self.reward_suffix = self.ids(f.reward_suffix)
        self.action_ids = [self.ids(word) for word in self.action_words]
        self.observation_ids = {text: self.ids(text) for text in observation_texts}
        self.reward_ids = {reward_text(r): self.ids(reward_text(r)) for r in reward_values if r != 0}
        for word, ids in zip(self.action_words, self.action_ids) if f.single_token_actions else ():
            if len(ids) != 1:
                raise ProtocolError(f"action word {word!r} is {len(ids)} tokens of {self._tokenizer_name} "
                                    f"({tokenizer.convert_ids_to_tokens(ids)}); the {f.name!r} format needs one "
                                    "token per action word: pick words the tokenizer keeps whole")
        first_tokens = [ids[0] for ids in self.action_ids]
        if len(set(first_tokens)) != len(first_tokens):
            raise ProtocolError(f"action words {self.action_words} must start with distinct tokens, "
                                f"got first tokens {first_tokens}")
        self.observation_by_ids = IdTable((tuple(ids), text) for text, ids in self.observation_ids.items())
        self.reward_by_ids = IdTable((tuple(ids), float(text)) for text, ids in self.reward_ids.items())
        if not self.truncation:
            raise ProtocolError("truncation must not be empty")
        if f.layout not in LAYOUTS:
            raise ProtocolError(f"format {f.name!r} has layout {f.layout!r}, not one of {sorted(LAYOUTS)}")
        self.layout: MarkedPieces | StepWords = LAYOUTS[f.layout](self, observation_texts, reward_values)
        """How a step is laid out in ids: the writer and the parser ask it."""

    @property
    def action_token_ids(self) -> list[int]:
        """The first token of each action word: where action-word logits are read, shape (n_actions,)."""
        return [ids[0] for ids in self.action_ids]

    @property
    def n_actions(self) -> int:
        return len(self.action_words)

    def ids(self, text: str) -> list[int]:
        """Ids of one piece of text; a tokenizer that writes part of it as its unknown token is refused."""
        return self.ids_of([text])[0]

    def ids_of(self, texts: Sequence[str]) -> list[list[int]]:
        """``ids`` of each of ``texts``, in one batched tokenizer call."""
        present = [text for text in texts if text]
        encoded = iter(self._tokenizer(present, add_special_tokens=False)["input_ids"] if present else [])
        result = [list(next(encoded)) if text else [] for text in texts]
        for text, ids in zip(texts, result):
            if text and (not ids or (self._unk is not None and self._unk in ids)):
                raise ProtocolError(f"tokenizer {self._tokenizer_name} lacks protocol token(s) in {text!r} "
                                    f"(got ids {ids}); build the tokenizer over the protocol's vocabulary")
        return result

    # -- rendering -------------------------------------------------------------------------

    def observation(self, text: str) -> list[int]:
        """Ids of an observation piece up to and including the action prefix (ends at a decision)."""
        try:
            obs = self.observation_ids[text]
        except KeyError:
            raise ProtocolError(f"unknown observation {text!r}: not among the protocol's "
                                f"{len(self.observation_ids)} observation texts") from None
        return self.observation_prefix + obs + self.observation_suffix + self.action_prefix

    def outcome(self, action: int, reward: float) -> list[int]:
        """Ids of an action word and, when non-zero, its reward."""
        if not 0 <= action < self.n_actions:
            raise ProtocolError(f"action {action} outside [0, {self.n_actions})")
        ids = self.action_ids[action] + self.action_suffix
        if reward != 0:
            key = reward_text(reward)
            if key not in self.reward_ids:
                raise ProtocolError(f"unknown reward {reward}: the protocol knows {sorted(self.reward_ids)}")
            ids = ids + self.reward_prefix + self.reward_ids[key] + self.reward_suffix
        return ids

    def new_trial(self) -> TrialWriter:
        return TrialWriter(self)

    def render(self, episodes: Sequence[Episode]) -> Trial:
        """Render whole episodes into one trial."""
        writer = self.new_trial()
        for episode in episodes:
            writer.write_episode(episode)
        return writer.trial

    # -- parsing ---------------------------------------------------------------------------

    def parse(self, input_ids: Sequence[int]) -> list[Episode]:
        """Parse ids back into episodes; raises ``ProtocolError`` naming the offending position."""
        return HistoryParser(self, list(input_ids)).episodes()
