"""The sub-clients of `AtomaSDK` / `AtomaSyncSDK` (`sdk.chat`, `sdk.embeddings`, ...): one area of
the API each, every method a few lines over a standalone function, written once for both faces
(`_faces.py`): awaited on `AtomaSDK`, blocking on `AtomaSyncSDK`."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Iterable, Mapping, TypeVar, cast

from ._faces import Face, Resource, api, api_stream
from ._options import call_options, merge

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from atoma_core._stream import ChatCompletionStream, CompletionStream
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse
    from atoma_core.models.completions import CompletionRequest, CompletionResponse
    from atoma_core.models.embeddings import EmbeddingRequest, EmbeddingResponse
    from atoma_core.models.images import ImageGenerationRequest, ImageGenerationResponse
    from atoma_core.models.models import HealthResponse, ModelList
    from atoma_core.models.nodes import (
        NodesCreateLockRequest,
        NodesCreateLockResponse,
        NodesCreateRequest,
        NodesCreateResponse,
    )
    from atoma_core.models.parsed import ParsedChatCompletion
    from atoma_core.models.tool_run import ToolRun
    from atoma_core.result import Result
    from atoma_core.types import (
        ChatCompletionKeywords,
        ChatCompletionRequestParam,
        CompletionKeywords,
        CompletionRequestParam,
        EmbeddingKeywords,
        EmbeddingRequestParam,
        ImageGenerationKeywords,
        ImageGenerationRequestParam,
        NodesCreateKeywords,
        NodesCreateLockKeywords,
        NodesCreateLockRequestParam,
        NodesCreateRequestParam,
    )

    from ._parse import ParseMode
    from ._parse_stream import ChatParseStream
    from ._tools import FunctionTool, OnToolError

__all__ = [
    "Chat",
    "Completions",
    "ConfidentialChat",
    "ConfidentialCompletions",
    "ConfidentialEmbeddings",
    "ConfidentialImages",
    "Embeddings",
    "Health",
    "Images",
    "Models",
    "Nodes",
]

T = TypeVar("T")


def _request(request: Any, params: Mapping[str, Any]) -> Any:
    """The request: positional (a dict or a request Struct) or openai-style keywords, not both."""
    if request is None:
        return params
    if params:
        raise TypeError("pass the request either as one positional argument or as keywords, not both")
    return request


def _needs(response_format: Any, params: Mapping[str, Any]) -> Mapping[str, Any]:
    if response_format is None:
        raise TypeError("response_format= is required: the type to parse the answer into")
    return params


class _Resource(Resource[Face]):
    """One area of the API on a core; every method unwraps a standalone function's Result.

    Request methods also take openai-python's `timeout=` (seconds, the whole call),
    `max_retries=`, `extra_headers=` and `extra_body=` among their keywords (`_options.py`).
    """

    __slots__ = ()

    async def _run(
        self,
        function: Callable[[AtomaCore, Any, RequestOptions | None], Awaitable[Result[T, AtomaError]]],
        request: Any,
        options: RequestOptions | None,
        params: Mapping[str, Any],
        *,
        openai_keywords: bool = True,
    ) -> T:
        if openai_keywords:  # `**params` is always a fresh dict: call_options may take keys out of it
            keywords = cast("dict[str, Any]", params)
            options = call_options(self._core.retry_config, self._defaults, options, keywords)
        else:
            options = merge(self._defaults, options)
        return (await function(self._core, _request(request, params), options)).unwrap()

    async def _get(
        self,
        function: Callable[[AtomaCore, RequestOptions | None], Awaitable[Result[T, AtomaError]]],
        options: RequestOptions | None,
    ) -> T:
        return (await function(self._core, merge(self._defaults, options))).unwrap()


class _ChatMethods(_Resource[Face]):
    """The methods of `Chat` and `ConfidentialChat`, written once: each calls the standalone
    function `<_prefix>_<verb>` (`chat_parse`, `confidential_chat_parse`, ...), imported when
    first called so that importing one function stays light."""

    __slots__ = ()

    _prefix: ClassVar[str]  # the standalone functions' names: "chat" or "confidential_chat"
    _create_module: ClassVar[str]  # the module of `<_prefix>_create` and `<_prefix>_create_stream`

    def _function(self, module: str, verb: str) -> Callable[..., Any]:
        """`<_prefix>_<verb>` of `module` (relative to this package), imported on first use."""
        function: Callable[..., Any] = getattr(import_module(module, __package__), f"{self._prefix}_{verb}")
        return function

    @api
    async def create(
        self,
        /,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ChatCompletionKeywords],
    ) -> ChatCompletionResponse:
        """Create a chat completion and return it whole (`sdk.confidential_chat`: encrypted, the
        decrypted `ChatCompletionResponse`).

        Pass the request as a dict / `ChatCompletionRequest`, or as keywords like openai-python
        (`create(model=..., messages=[...])`). Raises the `AtomaError` subclass for any failure.
        """
        return await self._run(self._function(self._create_module, "create"), request, options, params)

    @api_stream
    async def create_stream(
        self,
        /,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ChatCompletionKeywords],
    ) -> ChatCompletionStream:
        """Start a streamed chat completion; returns the open stream once its first event arrives
        (`sdk.confidential_chat`: encrypted, every event decrypted).

        Use it with `async with` and `async for` (or `await stream.collect()`). Failures before
        the stream starts raise here; failures mid-stream raise from the iteration.
        """
        return await self._run(self._function(self._create_module, "create_stream"), request, options, params)

    @api
    async def parse(
        self,
        /,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        response_format: Any = None,
        *,
        options: RequestOptions | None = None,
        mode: ParseMode = "json_schema",
        max_validation_retries: int = 0,
        **params: Any,
    ) -> ParsedChatCompletion[Any]:
        """`chat_parse` (`confidential_chat_parse` on `sdk.confidential_chat`): the answer decoded
        into `response_format` (`message.parsed`)."""
        chat_parse = self._function("._parse", "parse")

        def parse(core: AtomaCore, request: Any, options: RequestOptions | None) -> Any:
            return chat_parse(
                core,
                request,
                response_format,
                options=options,
                mode=mode,
                max_validation_retries=max_validation_retries,
            )

        return await self._run(parse, request, options, _needs(response_format, params))

    @api_stream
    async def parse_stream(
        self,
        /,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        response_format: Any = None,
        *,
        options: RequestOptions | None = None,
        mode: ParseMode = "json_schema",
        **params: Any,
    ) -> ChatParseStream[Any]:
        """`chat_parse_stream` (`confidential_chat_parse_stream` on `sdk.confidential_chat`): a
        stream with `snapshot`, whose `collect()` is parsed."""
        chat_parse_stream = self._function("._parse_stream", "parse_stream")

        def open_stream(core: AtomaCore, request: Any, options: RequestOptions | None) -> Any:
            return chat_parse_stream(core, request, response_format, options=options, mode=mode)

        return await self._run(open_stream, request, options, _needs(response_format, params))

    @api
    async def run_tools(
        self,
        /,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        tools: Iterable[FunctionTool | Callable[..., Any]] = (),
        *,
        options: RequestOptions | None = None,
        max_rounds: int = 10,
        on_tool_error: OnToolError = "return",
        **params: Any,
    ) -> ToolRun:
        """`chat_run_tools` (`confidential_chat_run_tools` on `sdk.confidential_chat`, every round
        encrypted): call, run the tools the model calls, call again, until it answers."""
        chat_run_tools = self._function("._tools", "run_tools")

        def run(core: AtomaCore, request: Any, options: RequestOptions | None) -> Any:
            return chat_run_tools(
                core, request, tools, options=options, max_rounds=max_rounds, on_tool_error=on_tool_error
            )

        return await self._run(run, request, options, params)


class Chat(_ChatMethods[Face]):
    """`sdk.chat`: chat completions (`POST /v1/chat/completions`)."""

    __slots__ = ()

    _prefix = "chat"
    _create_module = "._chat"

    @property
    def completions(self) -> Self:
        """openai-python's spelling: `sdk.chat.completions.create(...)` is `sdk.chat.create(...)`."""
        return self


class Completions(_Resource[Face]):
    """`sdk.completions`: legacy text completions (`POST /v1/completions`)."""

    @api
    async def create(
        self,
        /,
        request: CompletionRequest | CompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[CompletionKeywords],
    ) -> CompletionResponse:
        """Complete a prompt and return the whole `CompletionResponse`."""
        from ._completions import completions_create

        return await self._run(completions_create, request, options, params)

    @api_stream
    async def create_stream(
        self,
        /,
        request: CompletionRequest | CompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[CompletionKeywords],
    ) -> CompletionStream:
        """Start a streamed completion; like `sdk.chat.create_stream`."""
        from ._completions import completions_create_stream

        return await self._run(completions_create_stream, request, options, params)


class Embeddings(_Resource[Face]):
    """`sdk.embeddings`: vectors for texts (`POST /v1/embeddings`)."""

    @api
    async def create(
        self,
        /,
        request: EmbeddingRequest | EmbeddingRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[EmbeddingKeywords],
    ) -> EmbeddingResponse:
        """Embed `input` (a text or a list of texts) with `model`."""
        from ._embeddings import embeddings_create

        return await self._run(embeddings_create, request, options, params)


class Images(_Resource[Face]):
    """`sdk.images`: image generation (`POST /v1/images/generations`)."""

    @api
    async def generate(
        self,
        /,
        request: ImageGenerationRequest | ImageGenerationRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ImageGenerationKeywords],
    ) -> ImageGenerationResponse:
        """Generate images for `prompt` with `model` (`n`, `size`, `response_format`, ...)."""
        from ._images import images_generate

        return await self._run(images_generate, request, options, params)


class Models(_Resource[Face]):
    """`sdk.models`: the model catalogue."""

    @api
    async def list(self, /, options: RequestOptions | None = None) -> ModelList:
        """`GET /v1/models`: `.data[i].id`."""
        from ._models import models_list

        return await self._get(models_list, options)

    @api
    async def list_open_router(self, /, options: RequestOptions | None = None) -> Any:
        """`GET /v1/open_router/models` (no token): plain JSON."""
        from ._models import open_router_models_list

        return await self._get(open_router_models_list, options)


class Health(_Resource[Face]):
    """`sdk.health`: is the service up."""

    @api
    async def check(self, /, options: RequestOptions | None = None) -> HealthResponse:
        """`GET /health` (no token): `HealthResponse(message="ok")`."""
        from ._health import health

        return await self._get(health, options)


class Nodes(_Resource[Face]):
    """`sdk.nodes`: confidential node locks (`POST /v1/nodes/lock`) and node registration
    (`POST /v1/nodes`)."""

    @api
    async def create(
        self,
        /,
        request: NodesCreateRequest | NodesCreateRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[NodesCreateKeywords],
    ) -> NodesCreateResponse:
        """Register a node's public address: `data` (`node_small_id`, `public_address`, `country`)
        and `signature`, the node's base64 signature of it. Sends no bearer token."""
        from ._nodes import nodes_create

        return await self._run(nodes_create, request, options, params, openai_keywords=False)

    @api
    async def create_lock(
        self,
        /,
        request: NodesCreateLockRequest | NodesCreateLockRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[NodesCreateLockKeywords],
    ) -> NodesCreateLockResponse:
        """Lock a node for `model`: its `public_key`, `stack_small_id`, `node_small_id`.

        `timeout=` here is the lock's own field (seconds the node stays locked), not the call's
        deadline: give that as `options=RequestOptions(timeout_ms=...)` or via `with_options`.
        """
        from ._nodes import nodes_create_lock

        return await self._run(nodes_create_lock, request, options, params, openai_keywords=False)


class ConfidentialChat(_ChatMethods[Face]):
    """`sdk.confidential_chat`: chat encrypted to a node in a TEE (needs the `confidential` extra)."""

    __slots__ = ()

    _prefix = "confidential_chat"
    _create_module = "._confidential"


class ConfidentialCompletions(_Resource[Face]):
    """`sdk.confidential_completions`: legacy text completions encrypted to a node in a TEE."""

    __slots__ = ()

    @api
    async def create(
        self,
        /,
        request: CompletionRequest | CompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[CompletionKeywords],
    ) -> CompletionResponse:
        """Like `sdk.completions.create`, encrypted; the decrypted `CompletionResponse`."""
        from ._confidential import confidential_completions_create

        return await self._run(confidential_completions_create, request, options, params)

    @api_stream
    async def create_stream(
        self,
        /,
        request: CompletionRequest | CompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[CompletionKeywords],
    ) -> CompletionStream:
        """Like `sdk.completions.create_stream`, encrypted: every event decrypted."""
        from ._confidential import confidential_completions_create_stream

        return await self._run(confidential_completions_create_stream, request, options, params)


class ConfidentialEmbeddings(_Resource[Face]):
    """`sdk.confidential_embeddings`: embeddings encrypted to a node in a TEE."""

    __slots__ = ()

    @api
    async def create(
        self,
        /,
        request: EmbeddingRequest | EmbeddingRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[EmbeddingKeywords],
    ) -> EmbeddingResponse:
        """Like `sdk.embeddings.create`, encrypted."""
        from ._confidential import confidential_embeddings_create

        return await self._run(confidential_embeddings_create, request, options, params)


class ConfidentialImages(_Resource[Face]):
    """`sdk.confidential_images`: image generation encrypted to a node in a TEE."""

    __slots__ = ()

    @api
    async def generate(
        self,
        /,
        request: ImageGenerationRequest | ImageGenerationRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ImageGenerationKeywords],
    ) -> ImageGenerationResponse:
        """Like `sdk.images.generate`, encrypted."""
        from ._confidential import confidential_images_generate

        return await self._run(confidential_images_generate, request, options, params)
