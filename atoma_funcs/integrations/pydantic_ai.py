"""pydantic-ai on Atoma: `AtomaModel`, a pydantic-ai `Model` whose `request` and `request_stream`
call this SDK's chat functions (not openai-python), so retries, deadlines, typed errors and
confidential compute are the SDK's own. Needs the `pydantic-ai` extra:
`pip install "atoma-async[pydantic-ai]"`.

    from pydantic_ai import Agent
    from atoma_funcs.integrations.pydantic_ai import AtomaModel
    agent = Agent(AtomaModel("meta-llama/Llama-3.3-70B-Instruct"))                     # plain
    agent = Agent(AtomaModel("meta-llama/Llama-3.3-70B-Instruct", confidential=True))  # in a TEE

Tools, tool output (pydantic-ai's default), native output (`json_schema`) and prompted output
(`json_object`) are supported; usage comes from Atoma's usage (streams always end with it).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, AsyncIterator

try:
    from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse, check_allow_model_requests
    from pydantic_ai.models._tool_choice import resolve_tool_choice
    from pydantic_ai.profiles import ModelProfile
except ImportError as exc:  # pragma: no cover - tests/test_imports.py makes the framework missing
    raise ImportError(
        'atoma_funcs.integrations.pydantic_ai needs pydantic-ai: pip install "atoma-async[pydantic-ai]"'
    ) from exc

from msgspec.structs import replace

from atoma_core.config import RequestOptions
from atoma_core.core import AtomaCore
from atoma_core.result import Err

from ._pai_messages import (
    PROVIDER,
    finish_reason,
    map_messages,
    map_tools,
    response_format,
    to_model_response,
    usage,
)
from ._request_fields import chat_request

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelMessage, ModelResponse, ModelResponseStreamEvent
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.tools import RunContext

    from atoma_core._stream import ChatCompletionStream
    from atoma_core.models.chat import ChatCompletionChunk, ChatCompletionRequest

__all__ = ["ATOMA_PROFILE", "AtomaModel"]

# What Atoma's OpenAI-compatible chat takes: tools (forced too), json_schema and json_object.
ATOMA_PROFILE = ModelProfile(
    supports_tools=True,
    supports_json_schema_output=True,
    supports_json_object_output=True,
    supports_image_input=True,
    supports_forced_tool_choice=True,
    default_structured_output_mode="tool",
)

# ModelSettings keys sent as the request fields of the same name (`max_tokens` and friends).
_SETTINGS = (
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "parallel_tool_calls",
)


def _tool_choice(resolved: Any, tools: list[dict[str, Any]]) -> Any:
    """pydantic-ai's resolved choice as Atoma's `tool_choice`; a restriction to some tools
    (mode, names) offers only those (removing the others from `tools`), one of them forced by name."""
    if not isinstance(resolved, tuple):
        return resolved  # "auto", "none" or "required"
    mode, names = resolved
    tools[:] = [t for t in tools if t["function"]["name"] in names]
    if mode == "required" and len(names) == 1:
        return {"type": "function", "function": {"name": next(iter(names))}}
    return mode


def _call_options(options: RequestOptions | None, settings: dict[str, Any]) -> RequestOptions | None:
    """pydantic-ai's `timeout` (seconds, as openai-python's: per connect and per read) and
    `extra_headers` settings as this call's `RequestOptions`."""
    timeout, headers = settings.get("timeout"), settings.get("extra_headers")
    if not isinstance(timeout, (int, float)) and not headers:
        return options
    changes: dict[str, Any] = {}
    if isinstance(timeout, (int, float)):
        changes["timeouts"] = timeout
    if headers:
        changes["headers"] = dict(headers)
    return replace(options or RequestOptions(), **changes)


class AtomaModel(Model):
    """A pydantic-ai model on Atoma's chat completions.

    `model_name`: the model. `core`: the `AtomaCore` to call with (default: one from the
    environment, ATOMASDK_BEARER_AUTH and ATOMASDK_SERVER_URL). `confidential=True` sends every
    request through confidential chat (the `confidential` extra). `settings`/`profile` as for
    any pydantic-ai model; `extra_body` in settings adds request fields beyond the schema,
    `extra_headers` headers, `timeout` (seconds) limits each connect and read of the call.
    """

    def __init__(
        self,
        model_name: str,
        core: AtomaCore | None = None,
        *,
        confidential: bool = False,
        settings: ModelSettings | None = None,
        profile: ModelProfile | None = None,
    ) -> None:
        super().__init__(settings=settings, profile=profile or ATOMA_PROFILE)
        self._model_name = model_name
        self._core = core if core is not None else AtomaCore()
        self.confidential = confidential

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def system(self) -> str:
        return PROVIDER

    @property
    def base_url(self) -> str:
        return self._core.server_url

    @property
    def core(self) -> AtomaCore:
        return self._core

    def _request(
        self,
        messages: list[ModelMessage],
        settings: ModelSettings | None,
        params: ModelRequestParameters,
    ) -> tuple[ChatCompletionRequest, RequestOptions | None]:
        given: dict[str, Any] = dict(settings or {})
        fields: dict[str, Any] = {k: given[k] for k in _SETTINGS if k in given}
        if "stop_sequences" in given:
            fields["stop"] = given["stop_sequences"]
        fields.update(given.get("extra_body") or {})
        definitions = [*params.function_tools, *params.output_tools]
        if definitions:
            fields["tools"] = map_tools(definitions)
            fields["tool_choice"] = _tool_choice(resolve_tool_choice(settings, params), fields["tools"])
        else:
            fields.pop("parallel_tool_calls", None)
        fmt = response_format(params)
        if fmt is not None:
            fields["response_format"] = fmt
        instructions = [part.content for part in self._get_instruction_parts(messages, params) or ()]
        request, options = chat_request(self._model_name, map_messages(messages, instructions), fields)
        return request, _call_options(options, given)

    def _functions(self) -> tuple[Any, Any]:
        if self.confidential:
            from .._confidential import confidential_chat_create, confidential_chat_create_stream

            return confidential_chat_create, confidential_chat_create_stream
        from .._chat import chat_create, chat_create_stream

        return chat_create, chat_create_stream

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        check_allow_model_requests()
        settings, params = self.prepare_request(model_settings, model_request_parameters)
        request, options = self._request(messages, settings, params)
        result = await self._functions()[0](self._core, request, options)
        if isinstance(result, Err):
            raise result.error
        return to_model_response(result.value)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        check_allow_model_requests()
        settings, params = self.prepare_request(model_settings, model_request_parameters)
        request, options = self._request(messages, settings, params)
        result = await self._functions()[1](self._core, request, options)
        if isinstance(result, Err):
            raise result.error
        stream: ChatCompletionStream = result.value
        async with stream:
            yield AtomaStreamedResponse(
                model_request_parameters=params, _model_name=self._model_name, _stream=stream
            )


@dataclass
class AtomaStreamedResponse(StreamedResponse):
    """An Atoma chat stream as pydantic-ai's events: text deltas, tool-call deltas (by index),
    reasoning as thinking deltas; usage from the final usage chunk."""

    _model_name: str
    _stream: ChatCompletionStream
    _timestamp: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    _usage_received: bool | None = field(default=False, init=False)

    async def close_stream(self) -> None:
        await self._stream.aclose()

    async def _get_event_iterator(self) -> AsyncIterator[ModelResponseStreamEvent]:
        async for chunk in self._stream:
            for event in self._map_chunk(chunk):
                yield event

    def _map_chunk(self, chunk: ChatCompletionChunk) -> list[ModelResponseStreamEvent]:
        if chunk.id and self.provider_response_id is None:
            self.provider_response_id = chunk.id
        if chunk.model:
            self._model_name = chunk.model
        if chunk.usage is not None:
            self._add_usage(usage(chunk.usage), reported=True)
        events: list[ModelResponseStreamEvent] = []
        if not chunk.choices:
            return events
        choice = chunk.choices[0]
        if choice.finish_reason is not None:
            self.finish_reason = finish_reason(choice.finish_reason)
            self.provider_details = {"finish_reason": choice.finish_reason}
            if chunk.response_hash is not None:
                self.provider_details["response_hash"] = chunk.response_hash
        delta = choice.delta
        parts = self._parts_manager
        if delta.reasoning_content:
            events.extend(
                parts.handle_thinking_delta(vendor_part_id="reasoning", content=delta.reasoning_content)
            )
        if delta.content:
            events.extend(parts.handle_text_delta(vendor_part_id="content", content=delta.content))
        for piece in delta.tool_calls or ():
            fn = piece.function
            events.extend(
                parts.handle_tool_call_delta_events(
                    vendor_part_id=piece.index,
                    tool_name=None if fn is None else fn.name,
                    args=None if fn is None else fn.arguments,
                    tool_call_id=piece.id,
                )
            )
        return events

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def provider_name(self) -> str:
        return PROVIDER

    @property
    def provider_url(self) -> str | None:
        return None

    @property
    def timestamp(self) -> datetime:
        return self._timestamp
