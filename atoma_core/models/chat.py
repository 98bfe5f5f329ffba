"""msgspec Structs for `POST /v1/chat/completions`: the request, the response and stream chunks.

Requests follow the Atoma v2 schema (OpenAI-compatible) strictly: unset fields are omitted and an
explicit None is sent as null. Responses decode leniently: unknown fields are ignored, enum-like
strings stay plain `str`, and only what a client needs (`choices`, `delta`) is required.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Union, cast

from msgspec import UNSET, UnsetType, field

from .meta import PlainData, ResponseMeta
from .usage import CompletionTokensDetails as CompletionTokensDetails  # re-exported: were defined here
from .usage import PromptTokensDetails as PromptTokensDetails
from .usage import Usage

if TYPE_CHECKING:
    from ..types import AssistantMessageParam

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


class ImageURL(PlainData, omit_defaults=True):
    """An image by URL or `data:` URI; `detail` is low, high or auto."""

    url: str
    detail: str | None | UnsetType = UNSET


class TextContentPart(PlainData, tag_field="type", tag="text"):
    """`{"type": "text", "text": ...}`"""

    text: str


class ImageContentPart(PlainData, tag_field="type", tag="image_url"):
    """`{"type": "image_url", "image_url": {"url": ...}}`"""

    image_url: ImageURL


ContentPart = Union[TextContentPart, ImageContentPart]
"""A part of a multimodal user message: text or an image."""
MessageContent = Union[str, list[ContentPart]]


class ToolCallFunction(PlainData):
    """The function a model called; `arguments` is JSON text (not always valid JSON)."""

    name: str = ""
    arguments: str = ""


class ToolCall(PlainData):
    """A tool call, in an assistant message or a response."""

    id: str = ""
    function: ToolCallFunction = field(default_factory=ToolCallFunction)
    type: str = "function"


class SystemMessage(PlainData, tag_field="role", tag="system", omit_defaults=True, kw_only=True):
    """Instructions from the developer."""

    content: MessageContent | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET


class DeveloperMessage(PlainData, tag_field="role", tag="developer", omit_defaults=True, kw_only=True):
    """OpenAI's newer name for system instructions (passed through; Atoma does not check roles)."""

    content: MessageContent | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET


class UserMessage(PlainData, tag_field="role", tag="user", omit_defaults=True, kw_only=True):
    """A user turn: text or multimodal parts."""

    content: MessageContent | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET


class AssistantMessage(PlainData, tag_field="role", tag="assistant", omit_defaults=True, kw_only=True):
    """A previous assistant turn, possibly carrying tool calls."""

    content: MessageContent | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET
    refusal: str | None | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET


class ToolMessage(PlainData, tag_field="role", tag="tool", omit_defaults=True, kw_only=True):
    """The result of a tool call, answering `tool_call_id`."""

    content: MessageContent | None | UnsetType = UNSET
    tool_call_id: str | UnsetType = UNSET


ChatCompletionMessage = Union[SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage]
"""Any message of a chat request, told apart by its `role`."""


class FunctionDefinition(PlainData, omit_defaults=True):
    """A function the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str | None | UnsetType = UNSET
    parameters: dict[str, Any] | None | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class Tool(PlainData):
    """`{"type": "function", "function": {...}}`"""

    function: FunctionDefinition
    type: str = "function"


class ChatCompletionNamedFunction(PlainData):
    """The function named by a forced tool choice."""

    name: str


class ChatCompletionNamedToolChoice(PlainData):
    """Force one tool: `{"type": "function", "function": {"name": ...}}`."""

    function: ChatCompletionNamedFunction
    type: str = "function"


class JsonSchemaResponseFormat(PlainData, omit_defaults=True):
    """The `json_schema` of a `response_format`: a name and the JSON Schema the answer must follow."""

    name: str
    description: str | None | UnsetType = UNSET
    schema: Any | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class ResponseFormat(PlainData, omit_defaults=True):
    """`type` is text, json_object or json_schema. `schema` with json_object is llama-cpp-python's
    (and some hosts') way to constrain the object to a JSON Schema; servers without it ignore it."""

    type: str
    json_schema: JsonSchemaResponseFormat | None | UnsetType = UNSET
    schema: Any | UnsetType = UNSET


class StreamOptions(PlainData, omit_defaults=True):
    """Stream settings; the SDK always sends `include_usage: true`, so every stream ends with usage."""

    include_usage: bool | None | UnsetType = UNSET


class ChatCompletionRequest(PlainData, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
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


class ChatCompletionLogProb(PlainData, gc=False):
    """One candidate token and its log probability."""

    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None


class ChatCompletionLogProbsContent(PlainData, gc=False):
    """A generated token, its log probability and the most likely alternatives."""

    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None
    top_logprobs: list[ChatCompletionLogProb] = field(default_factory=list)


class ChatCompletionLogProbs(PlainData, gc=False):
    """Log probabilities of a choice (when the request set `logprobs`)."""

    content: list[ChatCompletionLogProbsContent] | None = None
    refusal: list[ChatCompletionLogProbsContent] | None = None


class ChatCompletionResponseMessage(PlainData, gc=False):
    """The assistant's message in a response (or accumulated from a stream)."""

    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None

    def to_param(self) -> AssistantMessageParam:
        """This message as a request message (a plain dict, so a history stays `json.dumps`-able),
        to send back in a tool-calling loop. A tool-call turn gets `content: ""`: the Atoma proxy
        answers 400 to null content."""
        content = self.content
        if content is None and self.tool_calls:
            content = ""
        param = AssistantMessage(
            content=content,
            refusal=UNSET if self.refusal is None else self.refusal,
            tool_calls=UNSET if not self.tool_calls else self.tool_calls,
        ).to_dict()
        return cast("AssistantMessageParam", param)


class ChatCompletionChoice(PlainData, gc=False):
    """One answer of a chat completion: the message, and why generation stopped (`finish_reason`)."""

    message: ChatCompletionResponseMessage
    index: int = 0
    finish_reason: str | None = None
    logprobs: ChatCompletionLogProbs | None = None
    stop_reason: int | str | None = None


class ChatCompletionResponse(PlainData, dict=True):
    """A whole chat completion. `response_hash` and `signature` are Atoma's verifiability fields
    (None from other servers, and on a response accumulated from a stream: each chunk has its own).

    `meta` (not a wire field) is set by the SDK on what it returns; None on a hand-made instance.
    `to_dict()` / `to_json()` give the wire shape, without `meta`.
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
    response_hash: str | None = None
    signature: str | None = None


class ChatCompletionChunkDeltaToolCallFunction(PlainData, gc=False):
    """A piece of a streamed tool call's function: the name once, then pieces of `arguments`."""

    name: str | None = None
    arguments: str | None = None


class ChatCompletionChunkDeltaToolCall(PlainData, gc=False):
    """A piece of a tool call: `id`, `type` and `name` come once; `arguments` concatenate."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: ChatCompletionChunkDeltaToolCallFunction | None = None


class ChatCompletionChunkDelta(PlainData, gc=False):
    """What one stream chunk adds to a choice: `role` first, then pieces of `content` or tool calls."""

    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChatCompletionChunkDeltaToolCall] | None = None


class ChatCompletionChunkChoice(PlainData, gc=False):
    """One choice of a stream chunk; `finish_reason` is set on its last chunk."""

    delta: ChatCompletionChunkDelta
    index: int = 0
    finish_reason: str | None = None
    logprobs: ChatCompletionLogProbs | None = None
    stop_reason: int | str | None = None


class ChatCompletionChunk(PlainData, gc=False):
    """One streamed event. The final usage chunk has `choices == []`. From Atoma, every chunk
    carries its own `response_hash` and `signature`."""

    choices: list[ChatCompletionChunkChoice]
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    response_hash: str | None = None
    signature: str | None = None
