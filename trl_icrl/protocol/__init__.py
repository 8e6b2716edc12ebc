"""The token protocol: multi-episode histories of one environment <-> token ids.

A history is rendered piece by piece. Every fixed piece (markers, observation texts, action
words, reward texts) is tokenized once when the protocol is built; rendering concatenates ids.

Per episode (``{...}`` are the format's strings, ``[...]`` optional)::

    {episode_start}
    {observation_prefix} obs_0 {observation_suffix} {action_prefix}   <- decision 0 is read here
    action_0 {action_suffix} [{reward_prefix} r_0 {reward_suffix}]    (reward only when non-zero)
    ... more steps ...
    [on truncation: {observation_prefix} obs_T {observation_suffix} {action_prefix} {truncation}]
    {episode_end}

A *decision position* is the last token before an action word: the position whose next-token
logits predict the action and where Q-values are read. On truncation the final observation is
rendered up to the same kind of position, so the value of the truncated state can be bootstrapped.

The ``step`` format (the embedded model's default) writes one word per env step instead: the
observation joined with the action that led to it, the reward when non-zero, and ``end`` when the
episode terminated there; the first word of an episode has ``start`` for an action::

    r0_c0:start r0_c1:right r1_c1:down:end r0_c0:start r0_c0:left <trunc> ...

Every word but an ``end`` word is a decision position, so a decision costs one position, and the
tile where each episode ended (and how) is written. A format names its layout (``layouts``: marked pieces
or step words); the writer and the parser ask the protocol's layout and never branch on the format.
"""

from .formats import (
           COMPACT,
           END,
           FORMATS,
           LLAMA3,
           START,
           STEP,
           ProtocolError,
           ProtocolFormat,
           reward_text,
           step_word,
           step_words,
)
from .layouts import LAYOUTS, MarkedPieces, StepWords
from .parser import HistoryParser
from .token_protocol import TokenProtocol
from .trial import CONTINUE, TERMINATED, TRIAL_FIELDS, TRIAL_SCHEMA, TRUNCATED, Episode, Trial, TrialField
from .writer import TrialWriter

__all__ = [
    "COMPACT", "CONTINUE", "END", "FORMATS", "LAYOUTS", "LLAMA3", "START", "STEP", "TERMINATED", "TRIAL_FIELDS",
    "TRIAL_SCHEMA", "TRUNCATED", "Episode", "HistoryParser", "MarkedPieces", "ProtocolError", "ProtocolFormat",
    "StepWords", "TokenProtocol", "Trial", "TrialField", "TrialWriter", "reward_text", "step_word", "step_words",
]
