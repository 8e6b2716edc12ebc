"""The token protocol's formats: the strings that frame each piece of a history, and the ``step`` format's words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ProtocolError(ValueError):
    """A tokenizer, a history or an id sequence that does not fit the protocol."""


@dataclass(frozen=True)
class ProtocolFormat:
    """The strings that frame each piece of a history."""

    name: str
    episode_start: str
    episode_end: str
    truncation: str
    observation_prefix: str = ""
    observation_suffix: str = ""
    action_prefix: str = ""
    action_suffix: str = ""
    reward_prefix: str = ""
    reward_suffix: str = ""
    layout: str = "marked"
    """How a step is laid out: ``"marked"`` pieces framed by these strings, or ``"step_words"``, one word per env
    step (``trl_icrl.protocol.layouts``)."""
    single_token_actions: bool = False
    """Every action word must be one token (the ``chat`` format: Q-values and logits are read per action token)."""

    def marker_words(self) -> list[str]:
        """Whitespace-separated words of every fixed piece (the vocabulary a word-level tokenizer needs)."""
        pieces = (self.episode_start, self.episode_end, self.truncation, self.observation_prefix,
                  self.observation_suffix, self.action_prefix, self.action_suffix, self.reward_prefix,
                  self.reward_suffix)
        return [word for piece in pieces for word in piece.split()]


LLAMA3 = ProtocolFormat(
    name="llama3",
    episode_start="<|begin_of_text|>",
    episode_end="<|end_of_text|>",
    truncation="<|start_header_id|>edit<|end_header_id|><|eot_id|>",
    observation_prefix="<|start_header_id|>observation<|end_header_id|>",
    observation_suffix="<|eot_id|>",
    action_prefix="<|start_header_id|>action<|end_header_id|>",
    action_suffix="<|eot_id|>",
    reward_prefix="<|start_header_id|>reward<|end_header_id|>",
    reward_suffix="<|eot_id|>",
)
"""The paper's format: Llama-3 header tokens as role markers, no natural-language prompt."""

COMPACT = ProtocolFormat(name="compact", episode_start="<ep>", episode_end="</ep>", truncation="<trunc>")
"""One word per marker, for the embedded word-level tokenizer: ``<ep> r0 c1 right ... 1.0 </ep>``."""

STEP = ProtocolFormat(name="step", episode_start="", episode_end="", truncation="<trunc>", layout="step_words")
"""One word per env step, for the embedded word-level tokenizer: ``r0_c0:start r0_c1:right r1_c1:down:end``."""

FORMATS = {f.name: f for f in (LLAMA3, COMPACT, STEP)}
START, END = "start", "end"


def reward_text(reward: float) -> str:
    """How a reward is written: ``1.0``, ``-10.0``."""
    return f"{reward:.1f}"


def step_word(observation: str, previous_action: str | None, reward: float = 0.0, terminated: bool = False) -> str:
    """The ``step`` format's word for arriving at ``observation``: ``r1_c1:down``, ``r3_c3:right:1.0:end``,
    ``r0_c0:start`` (``previous_action=None``: the first observation of an episode)."""
    parts = ["_".join(observation.split()), previous_action or START]
    if reward != 0:
        parts.append(reward_text(reward))
    if terminated:
        parts.append(END)
    return ":".join(parts)


def step_words(action_words: Sequence[str], observation_texts: Sequence[str],
               reward_values: Sequence[float]) -> list[str]:
    """Every word of the ``step`` format for these actions, observations and non-zero rewards."""
    rewards = [0.0, *(r for r in reward_values if r != 0)]
    words = []
    for text in observation_texts:
        words.append(step_word(text, None))
        words += [step_word(text, a, r, end) for a in action_words for r in rewards for end in (False, True)]
    return words
