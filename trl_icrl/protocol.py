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

FORMATS = {f.name: f for f in (LLAMA3, COMPACT)}


def reward_text(reward: float) -> str:
    """How a reward is written: ``1.0``, ``-10.0``."""
    return f"{reward:.1f}"


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


TRIAL_FIELDS = ("input_ids", "decision_positions", "actions", "rewards", "dones", "next_positions",
                "episode_index", "episode_offsets")


class TokenProtocol:
    """Renders histories of one kind of environment into ids of one tokenizer, and parses them back.

    Args:
        tokenizer: any ``PreTrainedTokenizerBase``.
        fmt: a ``ProtocolFormat`` or the name of a preset (``"compact"``, ``"llama3"``).
        action_words: one word per action, e.g. ``("left", "down", "right", "up")``.
        observation_texts: every observation text the environment can produce.
        reward_values: every non-zero reward the environment can produce.
    """

    def __init__(self, tokenizer, fmt: ProtocolFormat | str, action_words: Sequence[str],
                 observation_texts: Sequence[str], reward_values: Sequence[float]):
        self.format = FORMATS[fmt] if isinstance(fmt, str) else fmt
        self.action_words = tuple(action_words)
        self._tokenizer_name = type(tokenizer).__name__
        self._unk = getattr(tokenizer, "unk_token_id", None)
        self._tokenizer = tokenizer
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
        first_tokens = [ids[0] for ids in self.action_ids]
        if len(set(first_tokens)) != len(first_tokens):
            raise ProtocolError(f"action words {self.action_words} must start with distinct tokens, "
                                f"got first tokens {first_tokens}")
        if not self.episode_start or not self.episode_end or not self.truncation:
            raise ProtocolError("episode_start, episode_end and truncation must not be empty")
        self._observation_by_ids = {tuple(ids): text for text, ids in self.observation_ids.items()}
        self._reward_by_ids = {tuple(ids): float(text) for text, ids in self.reward_ids.items()}

    @property
    def action_token_ids(self) -> list[int]:
        """The first token of each action word: where action-word logits are read, shape (n_actions,)."""
        return [ids[0] for ids in self.action_ids]

    @property
    def n_actions(self) -> int:
        return len(self.action_words)

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
        new = p.episode_start + p.observation(observation)
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
