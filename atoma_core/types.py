"""TypedDicts for request shapes, so a type checker and an editor see the keys of a dict request.

    from atoma_core.types import ChatCompletionMessageParam, ChatCompletionRequestParam

    request: ChatCompletionRequestParam = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}

They only describe what the request Structs (`atoma_core.models`) accept: at run time every
request is still validated strictly by its Struct, and any `Mapping` is accepted (a dict from
JSON, say). Statically, the standalone functions take a request Struct or one of these, so a
misspelt key (`"mesages"`) or a wrong value type is a type error. Data typed `Any` (from
`json.loads`) passes as it is; a `dict[str, Any]` needs an annotation or a `cast` to one of these.

Each request has a `...Param` (required keys required) and a `...Keywords` (every key optional)
that types the keyword arguments of `AtomaSDK`'s methods, where a request may also come whole as
one positional argument. Written with `total=False` bases rather than `NotRequired`, so they work
on Python 3.10 without typing_extensions at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence, TypedDict, Union

if TYPE_CHECKING:
    from .config import Timeouts
    from .models.chat import ChatCompletionMessage

__all__ = [
    "AssistantMessageParam",
    "ChatCompletionKeywords",
    "ChatCompletionMessageParam",
    "ChatCompletionNamedToolChoiceParam",
    "ChatCompletionRequestParam",
    "OpenAIKeywords",
    "CompletionKeywords",
    "CompletionRequestParam",
    "ContentPartParam",
    "DeveloperMessageParam",
    "EmbeddingKeywords",
    "EmbeddingRequestParam",
    "FunctionDefinitionParam",
    "ImageContentPartParam",
    "ImageGenerationKeywords",
    "ImageGenerationRequestParam",
    "ImageURLParam",
    "JsonSchemaParam",
    "NodesCreateLockKeywords",
    "NodesCreateLockRequestParam",
    "NodesCreateKeywords",
    "NodesCreateRequestParam",
    "NodePublicAddressAssignmentParam",
    "ResponseFormatParam",
    "StreamOptionsParam",
    "SystemMessageParam",
    "TextContentPartParam",
    "ToolCallFunctionParam",
    "ToolCallParam",
    "ToolMessageParam",
    "ToolParam",
    "UserMessageParam",
]

# ---------------------------------------------------------------- message content


class _ImageURLOptions(TypedDict, total=False):
    detail: Literal["low", "high", "auto"] | None


class ImageURLParam(_ImageURLOptions):
    """An image by URL or `data:` URI."""

    url: str


class TextContentPartParam(TypedDict):
    """`{"type": "text", "text": ...}`"""

    type: Literal["text"]
    text: str


class ImageContentPartParam(TypedDict):
    """`{"type": "image_url", "image_url": {"url": ...}}`"""

    type: Literal["image_url"]
    image_url: ImageURLParam


ContentPartParam = Union[TextContentPartParam, ImageContentPartParam]
"""A part of a multimodal user message: text or an image."""
MessageContentParam = Union[str, Sequence[ContentPartParam]]

# ---------------------------------------------------------------- messages


class ToolCallFunctionParam(TypedDict, total=False):
    """The function of a tool call: its `name` and `arguments` (JSON text)."""

    name: str
    arguments: str  # JSON text


class ToolCallParam(TypedDict, total=False):
    """A tool call the assistant made, sent back in the history."""

    id: str
    type: Literal["function"]
    function: ToolCallFunctionParam


class _NameOption(TypedDict, total=False):
    name: str | None


class SystemMessageParam(_NameOption):
    """`{"role": "system", "content": ...}`: instructions from the developer."""

    role: Literal["system"]
    content: MessageContentParam


class DeveloperMessageParam(_NameOption):
    """`{"role": "developer", "content": ...}`: instructions, the newer name for system."""

    role: Literal["developer"]
    content: MessageContentParam


class UserMessageParam(_NameOption):
    """`{"role": "user", "content": ...}`: text, or a list of text and image parts."""

    role: Literal["user"]
    content: MessageContentParam


class _AssistantOptions(_NameOption, total=False):
    content: MessageContentParam | None
    refusal: str | None
    tool_calls: Sequence[ToolCallParam]


class AssistantMessageParam(_AssistantOptions):
    """A previous assistant turn; a tool-call turn carries `tool_calls` (content may be left out)."""

    role: Literal["assistant"]


class ToolMessageParam(TypedDict):
    """The result of a tool call, answering `tool_call_id`."""

    role: Literal["tool"]
    content: MessageContentParam
    tool_call_id: str


# A message Struct (`message.to_param()` gives an AssistantMessage) fits in a history too.
ChatCompletionMessageParam = Union[
    SystemMessageParam,
    DeveloperMessageParam,
    UserMessageParam,
    AssistantMessageParam,
    ToolMessageParam,
    "ChatCompletionMessage",
]
"""Any message of a chat request, told apart by its `role` (a message Struct fits too)."""

# ---------------------------------------------------------------- chat request


class _FunctionOptions(TypedDict, total=False):
    description: str | None
    parameters: Mapping[str, Any] | None  # a JSON Schema object
    strict: bool | None


class FunctionDefinitionParam(_FunctionOptions):
    """A function the model may call: `name`, and a JSON Schema in `parameters`."""

    name: str


class _ToolOptions(TypedDict, total=False):
    type: Literal["function"]


class ToolParam(_ToolOptions):
    """`{"type": "function", "function": {"name": ..., "parameters": {...}}}`"""

    function: FunctionDefinitionParam


class _NamedFunctionParam(TypedDict):
    name: str


class ChatCompletionNamedToolChoiceParam(_ToolOptions):
    """Force one tool: `{"type": "function", "function": {"name": ...}}`."""

    function: _NamedFunctionParam


class _JsonSchemaOptions(TypedDict, total=False):
    description: str | None
    schema: Any
    strict: bool | None


class JsonSchemaParam(_JsonSchemaOptions):
    """The `json_schema` of a `response_format`: a `name` and the `schema` the answer must follow."""

    name: str


class _ResponseFormatOptions(TypedDict, total=False):
    json_schema: JsonSchemaParam | None


class ResponseFormatParam(_ResponseFormatOptions):
    """`{"type": "text" | "json_object" | "json_schema", ...}`: the shape of the answer."""

    type: Literal["text", "json_object", "json_schema"]


class StreamOptionsParam(TypedDict, total=False):
    """Stream settings; the SDK always sends `include_usage: true`."""

    include_usage: bool | None


class _ChatCompletionOptions(TypedDict, total=False):
    frequency_penalty: float | None
    function_call: Any
    functions: Sequence[Any] | None
    logit_bias: Mapping[str, float] | None
    logprobs: bool | None
    max_completion_tokens: int | None
    max_tokens: int | None
    n: int | None
    parallel_tool_calls: bool | None
    presence_penalty: float | None
    response_format: ResponseFormatParam | None
    seed: int | None
    service_tier: str | None
    stop: str | Sequence[str] | None
    stream: bool | None
    stream_options: StreamOptionsParam | None
    temperature: float | None
    tool_choice: Literal["none", "auto", "required"] | ChatCompletionNamedToolChoiceParam | None
    tools: Sequence[ToolParam] | None
    top_logprobs: int | None
    top_p: float | None
    user: str | None


class ChatCompletionRequestParam(_ChatCompletionOptions):
    """The body of `POST /v1/chat/completions`, as a dict (`ChatCompletionRequest` as a Struct)."""

    model: str
    messages: Sequence[ChatCompletionMessageParam]


class OpenAIKeywords(TypedDict, total=False):
    """openai-python's per-call keywords, taken by the `AtomaSDK` methods beside the request's."""

    timeout: float | Timeouts | None
    max_retries: int | None
    extra_headers: Mapping[str, str] | None
    extra_body: Mapping[str, Any] | None


class ChatCompletionKeywords(_ChatCompletionOptions, OpenAIKeywords, total=False):
    """`sdk.chat.create(model=..., messages=...)`: the same keys, as keyword arguments."""

    model: str
    messages: Sequence[ChatCompletionMessageParam]


# ---------------------------------------------------------------- other requests

# Text, texts, token ids or lists of token ids.
PromptParam = Union[str, Sequence[Union[str, int, Sequence[int]]]]


class _CompletionOptions(TypedDict, total=False):
    best_of: int | None
    echo: bool | None
    frequency_penalty: float | None
    logit_bias: Mapping[str, float] | None
    logprobs: int | None
    max_tokens: int | None
    n: int | None
    presence_penalty: float | None
    seed: int | None
    stop: str | Sequence[str] | None
    stream: bool | None
    stream_options: StreamOptionsParam | None
    suffix: str | None
    temperature: float | None
    top_p: float | None
    user: str | None


class CompletionRequestParam(_CompletionOptions):
    """The body of `POST /v1/completions` (legacy text completions)."""

    model: str
    prompt: PromptParam


class CompletionKeywords(_CompletionOptions, OpenAIKeywords, total=False):
    """The keywords of `sdk.completions.create(...)`: the request fields plus openai-python's per-call
    options."""

    model: str
    prompt: PromptParam


class _EmbeddingOptions(TypedDict, total=False):
    dimensions: int | None
    encoding_format: Literal["float", "base64"] | None
    user: str | None


class EmbeddingRequestParam(_EmbeddingOptions):
    """The body of `POST /v1/embeddings`: one text or a list of texts (or token ids)."""

    model: str
    input: PromptParam


class EmbeddingKeywords(_EmbeddingOptions, OpenAIKeywords, total=False):
    """The keywords of `sdk.embeddings.create(...)`: the request fields plus openai-python's per-call
    options."""

    model: str
    input: PromptParam


class _ImageGenerationOptions(TypedDict, total=False):
    n: int | None
    quality: str | None
    response_format: Literal["url", "b64_json"] | None
    size: str | None  # "WIDTHxHEIGHT"
    style: str | None
    user: str | None


class ImageGenerationRequestParam(_ImageGenerationOptions):
    """The body of `POST /v1/images/generations`."""

    model: str
    prompt: str


class ImageGenerationKeywords(_ImageGenerationOptions, OpenAIKeywords, total=False):
    """The keywords of `sdk.images.generate(...)`: the request fields plus openai-python's per-call
    options."""

    model: str
    prompt: str


class _NodesCreateLockOptions(TypedDict, total=False):
    max_num_tokens: int | None
    timeout: int | None


class NodesCreateLockRequestParam(_NodesCreateLockOptions):
    """The body of `POST /v1/nodes/lock`."""

    model: str


class NodesCreateLockKeywords(_NodesCreateLockOptions, total=False):
    """The keywords of `sdk.nodes.create_lock(...)`."""

    model: str


class NodePublicAddressAssignmentParam(TypedDict):
    """What a node operator signs for `POST /v1/nodes`."""

    node_small_id: int
    public_address: str
    country: str


class NodesCreateRequestParam(TypedDict):
    """The body of `POST /v1/nodes`: the assignment and its signature (base64)."""

    data: NodePublicAddressAssignmentParam
    signature: str


class NodesCreateKeywords(TypedDict, total=False):
    data: NodePublicAddressAssignmentParam
    signature: str
