"""LangChain on Atoma: `ChatAtoma` (a `BaseChatModel`) and `AtomaEmbeddings` (an `Embeddings`),
built on this SDK's functions, so retries, deadlines, typed errors and confidential compute are
the SDK's own. Needs the `langchain` extra: `pip install "atoma-async[langchain]"`.

    from atoma_funcs.integrations.langchain import ChatAtoma
    llm = ChatAtoma(model="meta-llama/Llama-3.3-70B-Instruct")            # ATOMASDK_BEARER_AUTH
    llm = ChatAtoma(model="meta-llama/Llama-3.3-70B-Instruct", confidential=True)  # in a TEE

The async methods run on the caller's event loop; the sync ones (`invoke`, `stream`) run the
same coroutines on one private event-loop thread per model, as `AtomaSyncSDK` does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, Literal, Mapping, Sequence

try:
    from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
    from langchain_core.language_models import BaseChatModel, LangSmithParams
    from langchain_core.messages import AIMessage, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
    from langchain_core.utils import from_env, secret_from_env
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from pydantic import ConfigDict, Field, PrivateAttr, SecretStr
except ImportError as exc:  # pragma: no cover - tests/test_imports.py makes the framework missing
    raise ImportError(
        'atoma_funcs.integrations.langchain needs LangChain: pip install "atoma-async[langchain]"'
    ) from exc

import msgspec

from atoma_core.core import AtomaCore
from atoma_core.result import Err

from ._lc_client import AtomaClient
from ._lc_embeddings import AtomaEmbeddings
from ._lc_messages import to_ai_message, to_message_chunk, to_request_messages
from ._lc_structured import StructuredAsk, structured_runnable
from ._request_fields import chat_request

if TYPE_CHECKING:
    from atoma_core._stream import ChatCompletionStream
    from atoma_core.config import RequestOptions
    from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse
    from atoma_core.result import Result

    from .._sync import LoopThread

__all__ = ["AtomaEmbeddings", "ChatAtoma"]

_ToolChoice = Any  # "auto" | "none" | "any" | "required" | a tool's name | True | an OpenAI dict


class ChatAtoma(AtomaClient, BaseChatModel):
    """A LangChain chat model on Atoma's chat completions.

    `model`: the model name. `core`: an `AtomaCore` to share (its token, URL, retries, timeouts,
    hooks); without one, a core is made from `api_key` (else ATOMASDK_BEARER_AUTH), `base_url`,
    `timeout` (seconds, per connect and per read) and `max_retries`. `confidential=True` sends
    every call through confidential chat (encrypted to a node in a TEE; the `confidential` extra).
    Sampling parameters are sent as given; `model_kwargs` adds any other request field.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    model: str
    core: AtomaCore | None = Field(default=None, exclude=True)
    confidential: bool = False
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("ATOMASDK_BEARER_AUTH", default=None), exclude=True
    )
    base_url: str | None = Field(default_factory=from_env("ATOMASDK_SERVER_URL", default=None))
    timeout: float | None = None
    max_retries: int | None = None
    streaming: bool = False
    stop: list[str] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)

    _core: AtomaCore | None = PrivateAttr(default=None)
    _thread: LoopThread | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "atoma-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "confidential": self.confidential, **self._sampling()}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "atoma"
        stops = stop or kwargs.get("stop") or self.stop
        if stops:
            params["ls_stop"] = stops
        return params

    def _sampling(self) -> dict[str, Any]:
        fields = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
            "seed": self.seed,
        }
        return {k: v for k, v in fields.items() if v is not None}

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[ChatCompletionRequest, RequestOptions | None, StructuredAsk | None]:
        kwargs.pop("ls_structured_output_format", None)  # LangChain's tracing note, not a field
        kwargs.pop("stream", None)
        ask: StructuredAsk | None = kwargs.pop("_atoma_structured", None)
        fields = {**self._sampling(), **self.model_kwargs, **kwargs}
        stops = stop if stop is not None else fields.pop("stop", None) or self.stop
        if stops:
            fields["stop"] = stops
        model = fields.pop("model", None) or self.model
        request, options = chat_request(model, to_request_messages(messages), fields)
        return request, options, ask

    # --------------------------------------------------------------- the calls

    def _functions(self) -> tuple[Any, Any, Any]:
        """(create, create_stream, parse): plain or confidential."""
        if self.confidential:
            from .._confidential import confidential_chat_create, confidential_chat_create_stream
            from .._parse import confidential_chat_parse

            return confidential_chat_create, confidential_chat_create_stream, confidential_chat_parse
        from .._chat import chat_create, chat_create_stream
        from .._parse import chat_parse

        return chat_create, chat_create_stream, chat_parse

    async def _create(
        self, request: ChatCompletionRequest, options: RequestOptions | None, ask: StructuredAsk | None
    ) -> ChatResult:
        create, _, parse = self._functions()
        core = self._atoma_core()
        parsed: Any = None
        if ask is None:
            result: Result[ChatCompletionResponse, Any] = await create(core, request, options)
        elif ask.typed:  # with_structured_output(SomeType): chat_parse itself
            result = await parse(core, request, ask.schema, options=options, mode=ask.mode)
        else:  # a JSON Schema dict: chat_parse's own request and decoding around the plain call
            result = await create(core, ask.body(msgspec.to_builtins(request)), options)
        if isinstance(result, Err):
            raise result.error
        response = result.value
        if ask is not None:
            parsed = response.choices[0].message.parsed if ask.typed else ask.parse(response)  # type: ignore[attr-defined]
        message = to_ai_message(response, parsed)
        info = {"finish_reason": message.response_metadata["finish_reason"]}
        return ChatResult(generations=[ChatGeneration(message=message, generation_info=info)])

    async def _open(
        self, request: ChatCompletionRequest, options: RequestOptions | None, ask: StructuredAsk | None
    ) -> ChatCompletionStream:
        open_stream: Callable[..., Any] = self._functions()[1]
        body: Any = request if ask is None else ask.body(msgspec.to_builtins(request))
        result: Result[ChatCompletionStream, Any] = await open_stream(self._atoma_core(), body, options)
        if isinstance(result, Err):
            raise result.error
        return result.value

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self._create(*self._request(messages, stop, kwargs))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._loop_thread().run(self._create(*self._request(messages, stop, kwargs)))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async with await self._open(*self._request(messages, stop, kwargs)) as stream:
            async for chunk in stream:
                generation = _generation_chunk(chunk)
                if run_manager is not None:
                    await run_manager.on_llm_new_token(generation.text, chunk=generation)
                yield generation

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        opening = self._open(*self._request(messages, stop, kwargs))
        with self._loop_thread().open_stream(opening) as stream:
            for chunk in stream:
                generation = _generation_chunk(chunk)
                if run_manager is not None:
                    run_manager.on_llm_new_token(generation.text, chunk=generation)
                yield generation

    # --------------------------------------------------------------- tools, structure

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: _ToolChoice | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        """Offer `tools` (LangChain tools, functions, pydantic models, TypedDicts or OpenAI tool
        dicts) on every call. `tool_choice`: "auto", "none", "any"/"required"/True (some tool),
        or a tool's name (that tool)."""
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = _tool_choice(tool_choice, formatted)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: Mapping[str, Any] | type | None = None,
        *,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, Any]:
        """A runnable whose answer is `schema` (a pydantic model, TypedDict, dataclass, msgspec
        Struct or JSON Schema dict), asked for with `chat_parse`: Atoma's `json_schema`
        response_format (the default), a forced tool call ("function_calling") or `json_object`
        with the schema in a system message ("json_mode"). Schemas are always strict (`strict`
        is accepted for LangChain's signature). A misfit raises `OutputValidationError`."""
        bound, parser = structured_runnable(self, schema, method, kwargs)
        if not include_raw:
            return bound | parser
        parsed = RunnablePassthrough.assign(
            parsed=lambda x: parser.invoke(x["raw"]), parsing_error=lambda _: None
        ).with_fallbacks([RunnablePassthrough.assign(parsed=lambda _: None)], exception_key="parsing_error")
        return RunnableMap(raw=bound) | parsed


def _tool_choice(choice: _ToolChoice, tools: list[dict[str, Any]]) -> Any:
    if choice is True or choice == "any":
        return "required"
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def _generation_chunk(chunk: Any) -> ChatGenerationChunk:
    message = to_message_chunk(chunk)
    finish = message.response_metadata.get("finish_reason")
    return ChatGenerationChunk(message=message, generation_info={"finish_reason": finish} if finish else None)
