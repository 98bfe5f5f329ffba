"""`AtomaSDK`: the bundled, class-style client. Raises typed errors instead of returning a `Result`.

    async with AtomaSDK(bearer_auth="...") as sdk:
        resp = await sdk.chat.create(model="meta-llama/Llama-3.3-70B-Instruct",
                                     messages=[{"role": "user", "content": "Hi"}])

A thin shell over the standalone functions (`chat_create`, `chat_create_stream`), which it imports
on first use: importing `AtomaSDK` loads neither the request path nor the stream module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from atoma_core.core import AtomaCore

if TYPE_CHECKING:
    from types import TracebackType

    from atoma_core._stream import ChatCompletionStream
    from atoma_core.config import RequestOptions
    from atoma_core.core import BearerAuth
    from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse

__all__ = ["AtomaSDK", "Chat"]


def _request(
    request: ChatCompletionRequest | Mapping[str, Any] | None, params: dict[str, Any]
) -> ChatCompletionRequest | Mapping[str, Any]:
    """The request: positional (a dict or `ChatCompletionRequest`) or openai-style keywords, not both."""
    if request is None:
        return params
    if params:
        raise TypeError("pass the request either as one positional argument or as keywords, not both")
    return request


class Chat:
    """`sdk.chat`: chat completions (`POST /v1/chat/completions`)."""

    __slots__ = ("_core",)

    def __init__(self, core: AtomaCore) -> None:
        self._core = core

    async def create(
        self,
        request: ChatCompletionRequest | Mapping[str, Any] | None = None,
        options: RequestOptions | None = None,
        **params: Any,
    ) -> ChatCompletionResponse:
        """Create a chat completion and return it whole.

        Pass the request as a dict / `ChatCompletionRequest`, or as keywords like openai-python
        (`create(model=..., messages=[...])`). Raises the `AtomaError` subclass for any failure.
        """
        from .chat_completions_create import chat_create

        return (await chat_create(self._core, _request(request, params), options)).unwrap()

    async def create_stream(
        self,
        request: ChatCompletionRequest | Mapping[str, Any] | None = None,
        options: RequestOptions | None = None,
        **params: Any,
    ) -> ChatCompletionStream:
        """Start a streamed chat completion; returns the open stream once its first event arrives.

        Use it with `async with` and `async for` (or `await stream.collect()`). Failures before
        the stream starts raise here; failures mid-stream raise from the iteration.
        """
        from .chat_completions_create_stream import chat_create_stream

        return (await chat_create_stream(self._core, _request(request, params), options)).unwrap()


class AtomaSDK:
    """The bundled client: `sdk.chat.create(...)` / `sdk.chat.create_stream(...)`, raising on error.

    bearer_auth / server_url / keyword arguments: as for `AtomaCore` (the token defaults to the
    ATOMASDK_BEARER_AUTH environment variable). Or pass `core=` to share an existing `AtomaCore`
    with the standalone functions. Use `async with`, or `await sdk.close()` when done.
    """

    __slots__ = ("chat", "core")

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
