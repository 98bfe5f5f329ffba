"""`AtomaSDK`: the bundled, class-style client. Raises typed errors instead of returning a `Result`.

    async with AtomaSDK(bearer_auth="...") as sdk:
        resp = await sdk.chat.create(model="meta-llama/Llama-3.3-70B-Instruct",
                                     messages=[{"role": "user", "content": "Hi"}])

A thin shell over the standalone functions: each method is `(await fn(core, request,
options)).unwrap()`. They are imported on first use, so importing `AtomaSDK` loads neither the
request path nor the stream module. Each method is written once, here, for both faces: awaited on
`AtomaSDK`, blocking on `AtomaSyncSDK` (`_faces.py`), so a sub-client added to `_Client` appears
on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generic, Mapping, TypeVar

from atoma_core.core import AtomaCore

from ._faces import Async, Face, Resource, api, api_stream
from ._options import call_options, from_keywords, merge

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from atoma_core._stream import ChatCompletionStream, CompletionStream
    from atoma_core.config import RequestOptions, Timeouts
    from atoma_core.core import BearerAuth
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse
    from atoma_core.models.completions import CompletionRequest, CompletionResponse
    from atoma_core.models.embeddings import EmbeddingRequest, EmbeddingResponse
    from atoma_core.models.images import ImageGenerationRequest, ImageGenerationResponse
    from atoma_core.models.models import HealthResponse, ModelList
    from atoma_core.models.nodes import NodesCreateLockRequest, NodesCreateLockResponse
    from atoma_core.result import Result

    from ._faces import Runner

__all__ = ["AtomaSDK", "Chat", "Completions", "Embeddings", "Health", "Images", "Models", "Nodes"]

T = TypeVar("T")
Request = Mapping[str, Any]


def _request(request: Any, params: dict[str, Any]) -> Any:
    """The request: positional (a dict or a request Struct) or openai-style keywords, not both."""
    if request is None:
        return params
    if params:
        raise TypeError("pass the request either as one positional argument or as keywords, not both")
    return request


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
        params: dict[str, Any],
        *,
        openai_keywords: bool = True,
    ) -> T:
        if openai_keywords:
            options = call_options(self._core.retry_config, self._defaults, options, params)
        else:
            options = merge(self._defaults, options)
        return (await function(self._core, _request(request, params), options)).unwrap()

    async def _get(
        self,
        function: Callable[[AtomaCore, RequestOptions | None], Awaitable[Result[T, AtomaError]]],
        options: RequestOptions | None,
    ) -> T:
        return (await function(self._core, merge(self._defaults, options))).unwrap()


class Chat(_Resource[Face]):
    """`sdk.chat`: chat completions (`POST /v1/chat/completions`)."""

    __slots__ = ()

    @property
    def completions(self) -> Self:
        """openai-python's spelling: `sdk.chat.completions.create(...)` is `sdk.chat.create(...)`."""
        return self

    @api
    async def create(
        self,
        /,
        request: ChatCompletionRequest | Request | None = None,
        options: RequestOptions | None = None,
        **params: Any,
    ) -> ChatCompletionResponse:
        """Create a chat completion and return it whole.

        Pass the request as a dict / `ChatCompletionRequest`, or as keywords like openai-python
        (`create(model=..., messages=[...])`). Raises the `AtomaError` subclass for any failure.
        """
        from ._chat import chat_create

        return await self._run(chat_create, request, options, params)

    @api_stream
    async def create_stream(
        self,
        /,
        request: ChatCompletionRequest | Request | None = None,
        options: RequestOptions | None = None,
        **params: Any,
    ) -> ChatCompletionStream:
        """Start a streamed chat completion; returns the open stream once its first event arrives.

        Use it with `async with` and `async for` (or `await stream.collect()`). Failures before
        the stream starts raise here; failures mid-stream raise from the iteration.
        """
        from ._chat import chat_create_stream

        return await self._run(chat_create_stream, request, options, params)


class Completions(_Resource[Face]):
    """`sdk.completions`: legacy text completions (`POST /v1/completions`)."""

    @api
    async def create(
        self,
        /,
        request: CompletionRequest | Request | None = None,
        options: RequestOptions | None = None,
        **params: Any,
    ) -> CompletionResponse:
        """Complete a prompt and return the whole `CompletionResponse`."""
        from ._completions import completions_create

        return await self._run(completions_create, request, options, params)

    @api_stream
    async def create_stream(
        self,
        /,
        request: CompletionRequest | Request | None = None,
        options: RequestOptions | None = None,
        **params: Any,
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
        request: EmbeddingRequest | Request | None = None,
        options: RequestOptions | None = None,
        **params: Any,
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
        request: ImageGenerationRequest | Request | None = None,
        options: RequestOptions | None = None,
        **params: Any,
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
    """`sdk.nodes`: confidential node locks (`POST /v1/nodes/lock`)."""

    @api
    async def create_lock(
        self,
        /,
        request: NodesCreateLockRequest | Request | None = None,
        options: RequestOptions | None = None,
        **params: Any,
    ) -> NodesCreateLockResponse:
        """Lock a node for `model`: its `public_key`, `stack_small_id`, `node_small_id`.

        `timeout=` here is the lock's own field (seconds the node stays locked), not the call's
        deadline: give that as `options=RequestOptions(timeout_ms=...)` or via `with_options`.
        """
        from ._nodes import nodes_create_lock

        return await self._run(nodes_create_lock, request, options, params, openai_keywords=False)


class _Client(Generic[Face]):
    """The sub-clients, on one core, for either face; `AtomaSDK` and `AtomaSyncSDK` are its two
    faces. A sub-client added here appears, typed, on both."""

    __slots__ = (
        "_defaults",
        "_runner",
        "chat",
        "completions",
        "core",
        "embeddings",
        "health",
        "images",
        "models",
        "nodes",
    )

    core: AtomaCore
    """The `AtomaCore` this client runs on (usable with the standalone functions too)."""
    chat: Chat[Face]
    """Chat completions: `create` and `create_stream` (also as `chat.completions.create`)."""
    completions: Completions[Face]
    """Legacy text completions: `create` and `create_stream`."""
    embeddings: Embeddings[Face]
    """Embeddings: `create`."""
    images: Images[Face]
    """Image generation: `generate`."""
    models: Models[Face]
    """The model catalogue: `list` and `list_open_router`."""
    health: Health[Face]
    """Service health: `check`."""
    nodes: Nodes[Face]
    """Node locks for confidential compute: `create_lock`."""

    def __init__(
        self,
        bearer_auth: BearerAuth | None = None,
        server_url: str | None = None,
        *,
        core: AtomaCore | None = None,
        **core_kwargs: Any,
    ) -> None:
        if core is None:
            core = AtomaCore(bearer_auth, server_url, **core_kwargs)
        elif bearer_auth is not None or server_url is not None or core_kwargs:
            raise TypeError("pass either core= or AtomaCore arguments, not both")
        self._attach(core, self._start_runner(), None)

    def _start_runner(self) -> Runner | None:
        """What runs the calls: nothing on the async face (they are awaited)."""
        return None

    def _attach(self, core: AtomaCore, runner: Runner | None, defaults: RequestOptions | None) -> None:
        self.core = core
        self._runner = runner
        self._defaults = defaults
        self.chat = Chat(core, runner, defaults)
        self.completions = Completions(core, runner, defaults)
        self.embeddings = Embeddings(core, runner, defaults)
        self.images = Images(core, runner, defaults)
        self.models = Models(core, runner, defaults)
        self.health = Health(core, runner, defaults)
        self.nodes = Nodes(core, runner, defaults)

    def with_options(
        self,
        options: RequestOptions | None = None,
        *,
        timeout: float | Timeouts | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Self:
        """A client on the same core (and, for `AtomaSyncSDK`, the same loop thread) whose calls
        default to these options, as in openai-python: `sdk.with_options(timeout=5).chat.create(...)`.

        timeout: seconds for the whole call, retries included (openai-python's is per read), or a
        `Timeouts`. max_retries: replaces the retry count. extra_headers / extra_body: merged into
        every request. Options given to a call still win. Closing either client closes both.
        """
        keywords = from_keywords(
            (options.retries if options is not None else None) or self.core.retry_config,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_body=extra_body,
        )
        clone = object.__new__(type(self))
        clone._attach(self.core, self._runner, merge(merge(self._defaults, options), keywords))
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core!r})"


def import_request_path() -> None:
    """Import what the first chat call and stream load on demand (the request path, stream code)."""
    from atoma_core import _stream  # noqa: F401

    from . import _chat  # noqa: F401


class AtomaSDK(_Client[Async]):
    """The bundled client: `sdk.chat.create(...)`, `sdk.embeddings.create(...)`, ..., raising on error.

    bearer_auth / server_url / keyword arguments: as for `AtomaCore` (the token defaults to the
    ATOMASDK_BEARER_AUTH environment variable). Or pass `core=` to share an existing `AtomaCore`
    with the standalone functions. Use `async with`, or `await sdk.close()` when done.
    openai-python spellings work too: `sdk.chat.completions.create(...)`, `timeout=`,
    `max_retries=`, `extra_headers=`, `extra_body=` and `sdk.with_options(...)`.
    """

    __slots__ = ()

    async def warm(self) -> None:
        """Get ready for the first call ahead of it (in a serverless init phase, say): import the
        request path and stream code, then `core.warm()` (resolve the server's name, open one
        pooled connection). Raises the typed error if the server cannot be reached."""
        import_request_path()
        (await self.core.warm()).unwrap()

    async def close(self) -> None:
        """Close the HTTP session of the running event loop (idempotent; a later call opens a new one).

        A session you passed to `AtomaCore(session=...)` is left open.
        """
        await self.core.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
