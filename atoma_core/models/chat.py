"""msgspec Structs for `POST /v1/chat/completions`: the request, the response and stream chunks.

Requests follow the Atoma v2 schema (OpenAI-compatible) strictly: unset fields are omitted and an
explicit None is sent as null. Responses decode leniently: unknown fields are ignored, enum-like
strings stay plain `str`, and only what a client needs (`choices`, `delta`) is required.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

from msgspec import UNSET, Struct, UnsetType, field

from .meta import ResponseMeta
from .usage import CompletionTokensDetails as CompletionTokensDetails  # re-exported: were defined here
from .usage import PromptTokensDetails as PromptTokensDetails
from .usage import Usage

__all__ = [
    "AssistantMessage",
    "ChatCompletionChoice",
    "ChatCompletionChunk",
    "ChatCompletionChunkChoice",
    "ChatCompletionChunkDelta",
    "ChatCompletionChunkDeltaToolCall",
    "ChatCompletionChunkDeltaToolCallFunction",
    "ChatCompletionLogProb",
    "ChatCompletionLogProbs",
    "ChatCompletionLogProbsContent",
    "ChatCompletionMessage",
    "ChatCompletionNamedFunction",
    "ChatCompletionNamedToolChoice",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatCompletionResponseMessage",
    "ContentPart",
    "DeveloperMessage",
    "FunctionDefinition",
    "ImageContentPart",
    "ImageURL",
    "JsonSchemaResponseFormat",
    "ResponseFormat",
    "StreamOptions",
    "SystemMessage",
    "TextContentPart",
    "Tool",
    "ToolCall",
    "ToolCallFunction",
    "ToolMessage",
    "UserMessage",
]

# ---------------------------------------------------------------- request side


class ImageURL(Struct, omit_defaults=True):
    """An image by URL or `data:` URI; `detail` is low, high or auto."""

    url: str
    detail: str | None | UnsetType = UNSET


class TextContentPart(Struct, tag_field="type", tag="text"):
    """`{"type": "text", "text": ...}`"""

    text: str


class ImageContentPart(Struct, tag_field="type", tag="image_url"):
    """`{"type": "image_url", "image_url": {"url": ...}}`"""

    image_url: ImageURL


ContentPart = Union[TextContentPart, ImageContentPart]
MessageContent = Union[str, list[ContentPart]]


class ToolCallFunction(Struct):
    """The function a model called; `arguments` is JSON text (not always valid JSON)."""

    name: str = ""
    arguments: str = ""


class ToolCall(Struct):
    """A tool call, in an assistant message or a response."""

    id: str = ""
    function: ToolCallFunction = field(default_factory=ToolCallFunction)
    type: str = "function"


class SystemMessage(Struct, tag_field="role", tag="system", omit_defaults=True, kw_only=True):
    """Instructions from the developer."""

    content: MessageContent | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET


class DeveloperMessage(Struct, tag_field="role", tag="developer", omit_defaults=True, kw_only=True):
    """OpenAI's newer name for system instructions (passed through; Atoma does not check roles)."""

    content: MessageContent | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET


class UserMessage(Struct, tag_field="role", tag="user", omit_defaults=True, kw_only=True):
    """A user turn: text or multimodal parts."""

    content: MessageContent | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET


class AssistantMessage(Struct, tag_field="role", tag="assistant", omit_defaults=True, kw_only=True):
    """A previous assistant turn, possibly carrying tool calls."""

    content: MessageContent | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET
    refusal: str | None | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET


class ToolMessage(Struct, tag_field="role", tag="tool", omit_defaults=True, kw_only=True):
    """The result of a tool call, answering `tool_call_id`."""

    content: MessageContent | None | UnsetType = UNSET
    tool_call_id: str | UnsetType = UNSET


ChatCompletionMessage = Union[SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage]


class FunctionDefinition(Struct, omit_defaults=True):
    """A function the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str | None | UnsetType = UNSET
    parameters: dict[str, Any] | None | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class Tool(Struct):
    """`{"type": "function", "function": {...}}`"""

    function: FunctionDefinition
    type: str = "function"


class ChatCompletionNamedFunction(Struct):
    name: str


class ChatCompletionNamedToolChoice(Struct):
    """Force one tool: `{"type": "function", "function": {"name": ...}}`."""

    function: ChatCompletionNamedFunction
    type: str = "function"


class JsonSchemaResponseFormat(Struct, omit_defaults=True):
    name: str
    description: str | None | UnsetType = UNSET
    schema: Any | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class ResponseFormat(Struct, omit_defaults=True):
    """`type` is text, json_object or json_schema."""

    type: str
    json_schema: JsonSchemaResponseFormat | None | UnsetType = UNSET


class StreamOptions(Struct, omit_defaults=True):
    include_usage: bool | None | UnsetType = UNSET


class ChatCompletionRequest(Struct, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/chat/completions` (the Atoma v2 / OpenAI schema).

    Unknown top-level keys are refused (a typo would otherwise be dropped silently): send
    server-specific extras with `RequestOptions(extra_body=...)`. `tool_choice` also accepts
    "required", which OpenAI-compatible servers understand.
    """

    model: str
    messages: list[ChatCompletionMessage]
    frequency_penalty: float | None | UnsetType = UNSET
    function_call: Any | UnsetType = UNSET
    functions: list[Any] | None | UnsetType = UNSET
    logit_bias: dict[str, float] | None | UnsetType = UNSET
    logprobs: bool | None | UnsetType = UNSET
    max_completion_tokens: int | None | UnsetType = UNSET
    max_tokens: int | None | UnsetType = UNSET
    n: int | None | UnsetType = UNSET
    parallel_tool_calls: bool | None | UnsetType = UNSET
    presence_penalty: float | None | UnsetType = UNSET
    response_format: ResponseFormat | None | UnsetType = UNSET
    seed: int | None | UnsetType = UNSET
    service_tier: str | None | UnsetType = UNSET
    stop: str | list[str] | None | UnsetType = UNSET
    stream: bool | None | UnsetType = UNSET
    stream_options: StreamOptions | None | UnsetType = UNSET
    temperature: float | None | UnsetType = UNSET
    tool_choice: str | ChatCompletionNamedToolChoice | None | UnsetType = UNSET
    tools: list[Tool] | None | UnsetType = UNSET
    top_logprobs: int | None | UnsetType = UNSET
    top_p: float | None | UnsetType = UNSET
    user: str | None | UnsetType = UNSET


# --------------------------------------------------------------- response side
# gc=False: these are acyclic plain data, so the cyclic GC need not track them (faster decode).


class ChatCompletionLogProb(Struct, gc=False):
    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None


class ChatCompletionLogProbsContent(Struct, gc=False):
    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None
    top_logprobs: list[ChatCompletionLogProb] = []


class ChatCompletionLogProbs(Struct, gc=False):
    content: list[ChatCompletionLogProbsContent] | None = None
    refusal: list[ChatCompletionLogProbsContent] | None = None


class ChatCompletionResponseMessage(Struct, gc=False):
    """The assistant's message in a response (or accumulated from a stream)."""

    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None

    def to_param(self) -> AssistantMessage:
        """This message as a request message, to send back in a tool-calling loop."""
        return AssistantMessage(
            content=self.content,
            refusal=UNSET if self.refusal is None else self.refusal,
            tool_calls=UNSET if not self.tool_calls else self.tool_calls,
        )


class ChatCompletionChoice(Struct, gc=False):
    message: ChatCompletionResponseMessage
    index: int = 0
    finish_reason: str | None = None
    logprobs: ChatCompletionLogProbs | None = None
    stop_reason: int | str | None = None


class ChatCompletionResponse(Struct, dict=True):
    """A whole chat completion. Extra wire fields (`response_hash`, `signature`) are ignored.

    `meta` (not a wire field) is set by the SDK on what it returns; None on a hand-made instance.
    """

    meta: ClassVar[ResponseMeta | None] = None

    choices: list[ChatCompletionChoice]
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None


class ChatCompletionChunkDeltaToolCallFunction(Struct, gc=False):
    name: str | None = None
    arguments: str | None = None


class ChatCompletionChunkDeltaToolCall(Struct, gc=False):
    """A piece of a tool call: `id`, `type` and `name` come once; `arguments` concatenate."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: ChatCompletionChunkDeltaToolCallFunction | None = None


class ChatCompletionChunkDelta(Struct, gc=False):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChatCompletionChunkDeltaToolCall] | None = None


class ChatCompletionChunkChoice(Struct, gc=False):
    delta: ChatCompletionChunkDelta
    index: int = 0
    finish_reason: str | None = None
    logprobs: ChatCompletionLogProbs | None = None
    stop_reason: int | str | None = None


class ChatCompletionChunk(Struct, gc=False):
    """One streamed event. The final usage chunk has `choices == []`."""

    choices: list[ChatCompletionChunkChoice]
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
