"""`AtomaSDK`: the bundled, class-style client. Raises typed errors instead of returning a `Result`.

    async with AtomaSDK(bearer_auth="...") as sdk:
        resp = await sdk.chat.create(model="meta-llama/Llama-3.3-70B-Instruct",
                                     messages=[{"role": "user", "content": "Hi"}])

A thin shell over the standalone functions: each method is `(await fn(core, request,
options)).unwrap()`. They are imported on first use, so importing `AtomaSDK` loads neither the
request path nor the stream module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, TypeVar

from atoma_core.core import AtomaCore

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Unpack

    from atoma_core._stream import ChatCompletionStream, CompletionStream
    from atoma_core.config import RequestOptions
    from atoma_core.core import BearerAuth
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse
    from atoma_core.models.completions import CompletionRequest, CompletionResponse
    from atoma_core.models.embeddings import EmbeddingRequest, EmbeddingResponse
    from atoma_core.models.images import ImageGenerationRequest, ImageGenerationResponse
    from atoma_core.models.models import HealthResponse, ModelList
    from atoma_core.models.nodes import NodesCreateLockRequest, NodesCreateLockResponse
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
        NodesCreateLockKeywords,
        NodesCreateLockRequestParam,
    )

__all__ = [
    "AtomaSDK",
    "Chat",
    "Completions",
    "ConfidentialChat",
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


class _Resource:
    """One area of the API on a core; every method unwraps a standalone function's Result."""

    __slots__ = ("_core",)

    def __init__(self, core: AtomaCore) -> None:
        self._core = core

    async def _run(
        self,
        function: Callable[[AtomaCore, Any, RequestOptions | None], Awaitable[Result[T, AtomaError]]],
        request: Any,
        options: RequestOptions | None,
        params: Mapping[str, Any],
    ) -> T:
        return (await function(self._core, _request(request, params), options)).unwrap()


class Chat(_Resource):
    """`sdk.chat`: chat completions (`POST /v1/chat/completions`)."""

    async def create(
        self,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ChatCompletionKeywords],
    ) -> ChatCompletionResponse:
        """Create a chat completion and return it whole.

        Pass the request as a dict / `ChatCompletionRequest`, or as keywords like openai-python
        (`create(model=..., messages=[...])`). Raises the `AtomaError` subclass for any failure.
        """
        from ._chat import chat_create

        return await self._run(chat_create, request, options, params)

    async def create_stream(
        self,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ChatCompletionKeywords],
    ) -> ChatCompletionStream:
        """Start a streamed chat completion; returns the open stream once its first event arrives.

        Use it with `async with` and `async for` (or `await stream.collect()`). Failures before
        the stream starts raise here; failures mid-stream raise from the iteration.
        """
        from ._chat import chat_create_stream

        return await self._run(chat_create_stream, request, options, params)


class Completions(_Resource):
    """`sdk.completions`: legacy text completions (`POST /v1/completions`)."""

    async def create(
        self,
        request: CompletionRequest | CompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[CompletionKeywords],
    ) -> CompletionResponse:
        """Complete a prompt and return the whole `CompletionResponse`."""
        from ._completions import completions_create

        return await self._run(completions_create, request, options, params)

    async def create_stream(
        self,
        request: CompletionRequest | CompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[CompletionKeywords],
    ) -> CompletionStream:
        """Start a streamed completion; like `sdk.chat.create_stream`."""
        from ._completions import completions_create_stream

        return await self._run(completions_create_stream, request, options, params)


class Embeddings(_Resource):
    """`sdk.embeddings`: vectors for texts (`POST /v1/embeddings`)."""

    async def create(
        self,
        request: EmbeddingRequest | EmbeddingRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[EmbeddingKeywords],
    ) -> EmbeddingResponse:
        """Embed `input` (a text or a list of texts) with `model`."""
        from ._embeddings import embeddings_create

        return await self._run(embeddings_create, request, options, params)


class Images(_Resource):
    """`sdk.images`: image generation (`POST /v1/images/generations`)."""

    async def generate(
        self,
        request: ImageGenerationRequest | ImageGenerationRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ImageGenerationKeywords],
    ) -> ImageGenerationResponse:
        """Generate images for `prompt` with `model` (`n`, `size`, `response_format`, ...)."""
        from ._images import images_generate

        return await self._run(images_generate, request, options, params)


class Models(_Resource):
    """`sdk.models`: the model catalogue."""

    async def list(self, options: RequestOptions | None = None) -> ModelList:
        """`GET /v1/models`: `.data[i].id`."""
        from ._models import models_list

        return (await models_list(self._core, options)).unwrap()

    async def list_open_router(self, options: RequestOptions | None = None) -> Any:
        """`GET /v1/open_router/models` (no token): plain JSON."""
        from ._models import open_router_models_list

        return (await open_router_models_list(self._core, options)).unwrap()


class Health(_Resource):
    """`sdk.health`: is the service up."""

    async def check(self, options: RequestOptions | None = None) -> HealthResponse:
        """`GET /health` (no token): `HealthResponse(message="ok")`."""
        from ._health import health

        return (await health(self._core, options)).unwrap()


class Nodes(_Resource):
    """`sdk.nodes`: confidential node locks (`POST /v1/nodes/lock`)."""

    async def create_lock(
        self,
        request: NodesCreateLockRequest | NodesCreateLockRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[NodesCreateLockKeywords],
    ) -> NodesCreateLockResponse:
        """Lock a node for `model`: its `public_key`, `stack_small_id`, `node_small_id`."""
        from ._nodes import nodes_create_lock

        return await self._run(nodes_create_lock, request, options, params)


class ConfidentialChat(_Resource):
    """`sdk.confidential_chat`: chat encrypted to a node in a TEE (needs the `confidential` extra)."""

    async def create(
        self,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ChatCompletionKeywords],
    ) -> ChatCompletionResponse:
        """Like `sdk.chat.create`, encrypted; the decrypted `ChatCompletionResponse`."""
        from ._confidential import confidential_chat_create

        return await self._run(confidential_chat_create, request, options, params)

    async def create_stream(
        self,
        request: ChatCompletionRequest | ChatCompletionRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ChatCompletionKeywords],
    ) -> ChatCompletionStream:
        """Like `sdk.chat.create_stream`, encrypted: every event decrypted."""
        from ._confidential import confidential_chat_create_stream

        return await self._run(confidential_chat_create_stream, request, options, params)


class ConfidentialEmbeddings(_Resource):
    """`sdk.confidential_embeddings`: embeddings encrypted to a node in a TEE."""

    async def create(
        self,
        request: EmbeddingRequest | EmbeddingRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[EmbeddingKeywords],
    ) -> EmbeddingResponse:
        """Like `sdk.embeddings.create`, encrypted."""
        from ._confidential import confidential_embeddings_create

        return await self._run(confidential_embeddings_create, request, options, params)


class ConfidentialImages(_Resource):
    """`sdk.confidential_images`: image generation encrypted to a node in a TEE."""

    async def generate(
        self,
        request: ImageGenerationRequest | ImageGenerationRequestParam | None = None,
        options: RequestOptions | None = None,
        **params: Unpack[ImageGenerationKeywords],
    ) -> ImageGenerationResponse:
        """Like `sdk.images.generate`, encrypted."""
        from ._confidential import confidential_images_generate

        return await self._run(confidential_images_generate, request, options, params)


class AtomaSDK:
    """The bundled client: `sdk.chat.create(...)`, `sdk.embeddings.create(...)`, ..., raising on error.

    bearer_auth / server_url / keyword arguments: as for `AtomaCore` (the token defaults to the
    ATOMASDK_BEARER_AUTH environment variable). Or pass `core=` to share an existing `AtomaCore`
    with the standalone functions. Use `async with`, or `await sdk.close()` when done.
    """

    __slots__ = (
        "chat",
        "completions",
        "confidential_chat",
        "confidential_embeddings",
        "confidential_images",
        "core",
        "embeddings",
        "health",
        "images",
        "models",
        "nodes",
    )

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
        self.core: AtomaCore = core
        """The `AtomaCore` this client runs on (usable with the standalone functions too)."""
        self.chat: Chat = Chat(core)
        """Chat completions: `create` and `create_stream`."""
        self.completions: Completions = Completions(core)
        """Legacy text completions: `create` and `create_stream`."""
        self.embeddings: Embeddings = Embeddings(core)
        """Embeddings: `create`."""
        self.images: Images = Images(core)
        """Image generation: `generate`."""
        self.models: Models = Models(core)
        """The model catalogue: `list` and `list_open_router`."""
        self.health: Health = Health(core)
        """Service health: `check`."""
        self.nodes: Nodes = Nodes(core)
        """Node locks for confidential compute: `create_lock`."""
        self.confidential_chat: ConfidentialChat = ConfidentialChat(core)
        """Confidential chat: `create` and `create_stream`, encrypted end to end."""
        self.confidential_embeddings: ConfidentialEmbeddings = ConfidentialEmbeddings(core)
        """Confidential embeddings: `create`."""
        self.confidential_images: ConfidentialImages = ConfidentialImages(core)
        """Confidential image generation: `generate`."""

    def __repr__(self) -> str:
        return f"AtomaSDK({self.core!r})"

    async def close(self) -> None:
        """Close the HTTP session of the running event loop (idempotent; a later call opens a new one).

        A session you passed to `AtomaCore(session=...)` is left open.
        """
        await self.core.close()

    async def __aenter__(self) -> AtomaSDK:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
