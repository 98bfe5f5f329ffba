"""pydantic-ai <-> the SDK's chat Structs: a run's messages, tools and output mode into a request,
a response into a `ModelResponse`. Pure translation: no I/O, no state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from msgspec import UNSET
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    BinaryContent,
    CachePoint,
    ImageUrl,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ModelResponsePart,
    RetryFeedbackPart,
    RetryPromptPart,
    SystemPromptPart,
    TextContent,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.usage import RequestUsage

from atoma_core.errors import ResponseValidationError
from atoma_core.models import chat as m

if TYPE_CHECKING:
    from pydantic_ai.messages import FinishReason
    from pydantic_ai.tools import ToolDefinition

    from atoma_core.models.usage import Usage

__all__ = ["finish_reason", "map_messages", "map_tools", "response_format", "to_model_response", "usage"]

PROVIDER = "atoma"
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "content_filter": "content_filter",
}


def finish_reason(reason: str | None) -> FinishReason | None:
    """Atoma's finish_reason in pydantic-ai's words (None for one it has no word for)."""
    return None if reason is None else _FINISH.get(reason)


def _user_content(part: UserPromptPart) -> str | list[m.ContentPart]:
    if isinstance(part.content, str):
        return part.content
    parts: list[m.ContentPart] = []
    for item in part.content:
        if isinstance(item, str):
            parts.append(m.TextContentPart(text=item))
        elif isinstance(item, TextContent):
            parts.append(m.TextContentPart(text=item.content))
        elif isinstance(item, ImageUrl):
            parts.append(m.ImageContentPart(image_url=m.ImageURL(url=item.url)))
        elif isinstance(item, BinaryContent) and item.is_image:
            parts.append(m.ImageContentPart(image_url=m.ImageURL(url=item.data_uri)))
        elif isinstance(item, CachePoint):
            continue  # a prompt-cache marker: Atoma has no field for it
        else:
            raise UserError(f"Atoma chat does not take {type(item).__name__} in a user prompt")
    if all(type(p) is m.TextContentPart for p in parts):
        return "".join(p.text for p in parts)  # type: ignore[union-attr]
    return parts


def _request_messages(message: ModelRequest) -> list[m.ChatCompletionMessage]:
    out: list[m.ChatCompletionMessage] = []
    for part in message.parts:
        if isinstance(part, SystemPromptPart):
            out.append(m.SystemMessage(content=part.content))
        elif isinstance(part, UserPromptPart):
            out.append(m.UserMessage(content=_user_content(part)))
        elif isinstance(part, ToolReturnPart):  # a result, or a retry ("fix your arguments") of a call
            out.append(m.ToolMessage(content=part.model_response_str(), tool_call_id=part.tool_call_id))
        elif isinstance(part, RetryFeedbackPart):  # feedback on an answer that was not a tool call
            out.append(m.UserMessage(content=part.model_response()))
        elif isinstance(part, RetryPromptPart):  # deprecated in 2.x: a tool's retry, or feedback
            if part.tool_name is None:
                out.append(m.UserMessage(content=part.model_response()))
            else:
                out.append(m.ToolMessage(content=part.model_response(), tool_call_id=part.tool_call_id))
        else:
            raise UserError(f"Atoma chat cannot send a {type(part).__name__}")
    return out


def _response_message(message: ModelResponse) -> m.AssistantMessage | None:
    texts: list[str] = []
    calls: list[m.ToolCall] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            texts.append(part.content)
        elif isinstance(part, ToolCallPart):
            calls.append(
                m.ToolCall(
                    id=part.tool_call_id,
                    function=m.ToolCallFunction(name=part.tool_name, arguments=part.args_as_json_str()),
                )
            )
        # ThinkingPart and the native/file parts: the model's own, not sent back (as OpenAI's chat model)
    if not texts and not calls:
        return None
    return m.AssistantMessage(content="\n\n".join(texts), tool_calls=calls if calls else UNSET)


def map_messages(
    messages: Sequence[ModelMessage], instructions: Sequence[str]
) -> list[m.ChatCompletionMessage]:
    """The run's history as request messages; `instructions` go in as system messages after the
    leading ones (where OpenAI's chat model puts them)."""
    out: list[m.ChatCompletionMessage] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            out.extend(_request_messages(message))
        else:
            assistant = _response_message(message)
            if assistant is not None:
                out.append(assistant)
    leading = 0
    while leading < len(out) and type(out[leading]) is m.SystemMessage:
        leading += 1
    out[leading:leading] = [m.SystemMessage(content=text) for text in instructions]
    return out


def map_tools(definitions: Sequence[ToolDefinition]) -> list[dict[str, Any]]:
    """pydantic-ai's tool definitions (function and output tools) as the request's `tools`."""
    tools = []
    for tool in definitions:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters_json_schema}
        if tool.description:
            function["description"] = tool.description
        if tool.strict:
            function["strict"] = True
        tools.append({"type": "function", "function": function})
    return tools


def response_format(params: ModelRequestParameters) -> dict[str, Any] | None:
    """`json_schema` for pydantic-ai's native output, `json_object` for its prompted output (with
    the schema, as chat_parse's json_object mode sends it: llama-cpp-python constrains to it)."""
    if params.output_mode == "native" and params.output_object is not None:
        output = params.output_object
        spec: dict[str, Any] = {"name": output.name or "final_result", "schema": output.json_schema}
        if output.description:
            spec["description"] = output.description
        if output.strict is not None:
            spec["strict"] = output.strict
        return {"type": "json_schema", "json_schema": spec}
    if params.output_mode == "prompted":
        if params.output_object is None:
            return {"type": "json_object"}
        return {"type": "json_object", "schema": params.output_object.json_schema}
    return None


def usage(counts: Usage | None) -> RequestUsage:
    """Atoma's token counts as pydantic-ai's (cached prompt tokens as cache reads)."""
    if counts is None:
        return RequestUsage()
    details = counts.prompt_tokens_details
    cached = details.cached_tokens if details is not None and details.cached_tokens else 0
    return RequestUsage(
        input_tokens=counts.prompt_tokens, output_tokens=counts.completion_tokens, cache_read_tokens=cached
    )


def to_model_response(response: m.ChatCompletionResponse) -> ModelResponse:
    """The first choice of a response as pydantic-ai's parts (reasoning, text, tool calls), with
    usage, model, finish reason and Atoma's `response_hash` in `provider_details`."""
    if not response.choices:
        raise ResponseValidationError("the chat response has no choices")
    choice = response.choices[0]
    message = choice.message
    parts: list[ModelResponsePart] = []
    if message.reasoning_content:
        parts.append(ThinkingPart(content=message.reasoning_content))
    if message.content:
        parts.append(TextPart(content=message.content))
    for call in message.tool_calls or ():
        if call.id:
            parts.append(ToolCallPart(call.function.name, call.function.arguments, tool_call_id=call.id))
        else:  # a server that sends no id: pydantic-ai makes one
            parts.append(ToolCallPart(call.function.name, call.function.arguments))
    details = {"finish_reason": choice.finish_reason}
    if response.response_hash is not None:
        details["response_hash"] = response.response_hash
    return ModelResponse(
        parts=parts,
        usage=usage(response.usage),
        model_name=response.model,
        provider_name=PROVIDER,
        provider_response_id=response.id or None,
        provider_details=details,
        finish_reason=finish_reason(choice.finish_reason),
    )
