"""msgspec Structs for `POST /v1/completions` (legacy text completions): request, response, chunks.

Strict on the way out (unknown keys refused, unset fields omitted), lenient on the way in.
"""

from __future__ import annotations

from typing import ClassVar, Union

from msgspec import UNSET, UnsetType, field

from .chat import StreamOptions
from .meta import PlainData, ResponseMeta
from .usage import Usage

__all__ = [
    "CompletionChoice",
    "CompletionChunk",
    "CompletionLogProbs",
    "CompletionRequest",
    "CompletionResponse",
]

# msgspec allows one array type in a union: texts, token ids or lists of token ids share it.
Prompt = Union[str, list[Union[str, int, list[int]]]]


class CompletionRequest(PlainData, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/completions`. `prompt` is text, texts, token ids or lists of them."""

    model: str
    prompt: Prompt
    best_of: int | None | UnsetType = UNSET
    echo: bool | None | UnsetType = UNSET
    frequency_penalty: float | None | UnsetType = UNSET
    logit_bias: dict[str, float] | None | UnsetType = UNSET
    logprobs: int | None | UnsetType = UNSET
    max_tokens: int | None | UnsetType = UNSET
    n: int | None | UnsetType = UNSET
    presence_penalty: float | None | UnsetType = UNSET
    seed: int | None | UnsetType = UNSET
    stop: str | list[str] | None | UnsetType = UNSET
    stream: bool | None | UnsetType = UNSET
    stream_options: StreamOptions | None | UnsetType = UNSET
    suffix: str | None | UnsetType = UNSET
    temperature: float | None | UnsetType = UNSET
    top_p: float | None | UnsetType = UNSET
    user: str | None | UnsetType = UNSET


class CompletionLogProbs(PlainData, gc=False):
    """Per-token log probabilities, as parallel lists."""

    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float | None] = field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] | None = None
    text_offset: list[int] = field(default_factory=list)


class CompletionChoice(PlainData, gc=False):
    """One answer of a legacy completion: its `text`, and why generation stopped (`finish_reason`)."""

    text: str = ""
    index: int = 0
    finish_reason: str | None = None
    logprobs: CompletionLogProbs | None = None
    stop_reason: int | str | None = None


class CompletionResponse(PlainData, dict=True):
    """A whole text completion. `meta` (not a wire field) is set by the SDK on what it returns;
    `response_hash` and `signature` are Atoma's verifiability fields (None elsewhere)."""

    meta: ClassVar[ResponseMeta | None] = None

    choices: list[CompletionChoice]
    id: str = ""
    object: str = "text_completion"
    created: int = 0
    model: str = ""
    usage: Usage | None = None
    system_fingerprint: str | None = None
    response_hash: str | None = None
    signature: str | None = None


class CompletionChunk(PlainData, gc=False):
    """One streamed event: `choices[i].text` is the next piece. The usage chunk has no choices."""

    choices: list[CompletionChoice]
    id: str = ""
    object: str = "text_completion"
    created: int = 0
    model: str = ""
    usage: Usage | None = None
    system_fingerprint: str | None = None
    response_hash: str | None = None
    signature: str | None = None
