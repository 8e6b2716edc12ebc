"""The ``chat`` protocol format: histories framed by a chat model's own chat template.

The paper's ``llama3`` format, generalised: every piece of a history is a message of its own role, framed the way
the tokenizer's ``chat_template`` frames messages, with its special tokens. On SmolLM2's ChatML template one step
and the end of an episode read::

    <|im_start|>observation\\nr0 c1<|im_end|>\\n<|im_start|>action\\n   <- the decision is read here
    right<|im_end|>\\n<|im_start|>reward\\n1.0<|im_end|>\\n<|im_start|>episode\\nend<|im_end|>\\n

Episodes open and close with ``episode`` messages (``start``, ``end``); a truncated episode closes its last
action message empty and says ``truncated``. The template's preamble (a default system prompt, a begin-of-text
token) is not written: a context is the history alone.
"""

from __future__ import annotations

from jinja2 import TemplateError
from transformers import PreTrainedTokenizerBase

from .formats import ProtocolError, ProtocolFormat

ROLES = ("observation", "action", "reward", "episode")
_FIRST, _SECOND = "\x1fFIRST\x1f", "\x1fSECOND\x1f"  # contents no template rewrites (templates may trim spaces)


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[tuple[str, str]]) -> str:
    try:
        return tokenizer.apply_chat_template([{"role": role, "content": content} for role, content in messages],
                                             tokenize=False, add_generation_prompt=False)
    except TemplateError as err:
        raise ProtocolError(f"the chat template of {type(tokenizer).__name__} does not take messages of the roles "
                            f"{ROLES}: {err}; use protocol_format='llama3' or 'compact'") from None


def role_framing(tokenizer: PreTrainedTokenizerBase, role: str) -> tuple[str, str]:
    """The text the chat template puts before and after the content of a ``role`` message that follows another
    message (so no preamble): ``("<|im_start|>action\\n", "<|im_end|>\\n")`` for ChatML."""
    alone = _render(tokenizer, [(role, _FIRST)])
    suffix = alone.split(_FIRST, 1)[1]
    pair = _render(tokenizer, [(role, _FIRST), (role, _SECOND)])
    between = pair.split(_FIRST, 1)[1].split(_SECOND, 1)[0]
    if not between.startswith(suffix) or not pair.endswith(_SECOND + suffix):
        raise ProtocolError(f"the chat template of {type(tokenizer).__name__} frames {role!r} messages "
                            f"differently in different places ({alone!r}, {pair!r}); use protocol_format='llama3' "
                            "or 'compact'")
    return between[len(suffix):], suffix


def chat_format(tokenizer: PreTrainedTokenizerBase) -> ProtocolFormat:
    """The ``chat`` format of ``tokenizer``: each piece a message of its own role, framed by its chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ProtocolError(f"protocol_format='chat' needs a tokenizer with a chat template; "
                            f"{type(tokenizer).__name__} {getattr(tokenizer, 'name_or_path', '')!r} has none: "
                            "use protocol_format='llama3' or 'compact'")
    framing = {role: role_framing(tokenizer, role) for role in ROLES}

    def message(role: str, content: str) -> str:
        return framing[role][0] + content + framing[role][1]

    return ProtocolFormat(
        name="chat",
        episode_start=message("episode", "start"),
        episode_end=message("episode", "end"),
        truncation=framing["action"][1] + message("episode", "truncated"),
        observation_prefix=framing["observation"][0], observation_suffix=framing["observation"][1],
        action_prefix=framing["action"][0], action_suffix=framing["action"][1],
        reward_prefix=framing["reward"][0], reward_suffix=framing["reward"][1],
        single_token_actions=True,
    )
