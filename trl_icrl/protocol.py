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
tile where each episode ended (and how) is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

CONTINUE, TERMINATED, TRUNCATED = 0, 1, 2


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
    one_word_per_step: bool = False
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

STEP = ProtocolFormat(name="step", episode_start="", episode_end="", truncation="<trunc>", one_word_per_step=True)
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


class TokenProtocol:
    """Renders histories of one kind of environment into ids of one tokenizer, and parses them back.

    Args:
        tokenizer: any ``PreTrainedTokenizerBase``.
        fmt: a ``ProtocolFormat`` or the name of a preset (``"step"``, ``"compact"``, ``"llama3"``), or ``"chat"``:
            the tokenizer's own chat template (``trl_icrl.chat_format``).
        action_words: one word per action, e.g. ``("left", "down", "right", "up")``.
        observation_texts: every observation text the environment can produce.
        reward_values: every non-zero reward the environment can produce.
    """

    def __init__(self, tokenizer, fmt: ProtocolFormat | str, action_words: Sequence[str],
                 observation_texts: Sequence[str], reward_values: Sequence[float]):
        if fmt == "chat":
            from .chat_format import chat_format  # it builds on this module's ProtocolFormat

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
        self.episode_start = self._ids(f.episode_start)
        self.episode_end = self._ids(f.episode_end)
        self.truncation = self._ids(f.truncation)
        self.observation_prefix = self._ids(f.observation_prefix)
        self.observation_suffix = self._ids(f.observation_suffix)
        self.action_prefix = self._ids(f.action_prefix)
        self.action_suffix = self._ids(f.action_suffix)
        self.reward_prefix = self._ids(f.reward_prefix)
        self.reward_suffix = self._ids(f.reward_suffix)
        self.action_ids = [self._ids(word) for word in self.action_words]
        self.observation_ids = {text: self._ids(text) for text in observation_texts}
        self.reward_ids = {reward_text(r): self._ids(reward_text(r)) for r in reward_values if r != 0}
        for word, ids in zip(self.action_words, self.action_ids) if f.single_token_actions else ():
            if len(ids) != 1:
                raise ProtocolError(f"action word {word!r} is {len(ids)} tokens of {self._tokenizer_name} "
                                    f"({tokenizer.convert_ids_to_tokens(ids)}); the {f.name!r} format needs one "
                                    "token per action word: pick words the tokenizer keeps whole")
        first_tokens = [ids[0] for ids in self.action_ids]
        if len(set(first_tokens)) != len(first_tokens):
            raise ProtocolError(f"action words {self.action_words} must start with distinct tokens, "
                                f"got first tokens {first_tokens}")
        if not self.truncation or not f.one_word_per_step and (not self.episode_start or not self.episode_end):
            raise ProtocolError("episode_start, episode_end and truncation must not be empty")
        self._observation_by_ids = {tuple(ids): text for text, ids in self.observation_ids.items()}
        self._reward_by_ids = {tuple(ids): float(text) for text, ids in self.reward_ids.items()}
        self.step_ids: dict[tuple[str, int | None, float, bool], list[int]] = {}
        """``step`` format: (observation, previous action or None, reward, terminated) -> ids of its word."""
        if f.one_word_per_step:
            rewards = [0.0, *(float(r) for r in reward_values if r != 0)]
            for text in observation_texts:
                self.step_ids[(text, None, 0.0, False)] = self._ids(step_word(text, None))
                for a, word in enumerate(self.action_words):
                    for r in rewards:
                        for end in (False, True):
                            self.step_ids[(text, a, r, end)] = self._ids(step_word(text, word, r, end))
        self._step_by_ids = {tuple(ids): key for key, ids in self.step_ids.items()}

    @property
    def action_token_ids(self) -> list[int]:
        """The first token of each action word: where action-word logits are read, shape (n_actions,)."""
        return [ids[0] for ids in self.action_ids]

    @property
    def n_actions(self) -> int:
        return len(self.action_words)

    @property
    def one_word_per_step(self) -> bool:
        return self.format.one_word_per_step

    def step_token_budget(self, observation_texts: Sequence[str], reward_values: Sequence[float]) -> int:
        """The most tokens one env step can add: its outcome, the end of its episode and the next one's start."""
        if self.one_word_per_step:
            longest_word = max(len(ids) for ids in self.step_ids.values())
            return 2 * longest_word + len(self.truncation)
        longest_outcome = max(len(self.outcome(a, r)) for a in range(self.n_actions) for r in (0.0, *reward_values))
        longest_observation = max(len(self.observation(t)) for t in observation_texts)
        return longest_outcome + len(self.truncation) + len(self.episode_end) + len(self.episode_start) \
            + 2 * longest_observation

    def step_word_ids(self, observation: str, previous_action: int | None, reward: float = 0.0,
                      terminated: bool = False) -> list[int]:
        """``step`` format: ids of the word for arriving at ``observation`` (see ``step_word``)."""
        try:
            return list(self.step_ids[(observation, previous_action, float(reward), terminated)])
        except KeyError:
            raise ProtocolError(f"no step word for observation {observation!r}, previous action {previous_action}, "
                                f"reward {reward}: the protocol knows {len(self.observation_ids)} observation "
                                f"texts, {self.n_actions} actions and rewards {sorted(self.reward_ids)}") from None

    def _ids(self, text: str) -> list[int]:
        if not text:
            return []
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids or (self._unk is not None and self._unk in ids):
            raise ProtocolError(f"tokenizer {self._tokenizer_name} lacks protocol token(s) in {text!r} "
                                f"(got ids {ids}); build the tokenizer over the protocol's vocabulary")
        return list(ids)

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
        return _Parser(self, list(input_ids)).episodes()


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


class _Parser:
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
