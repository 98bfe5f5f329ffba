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

from typing import TYPE_CHECKING, Any, Generic, Mapping

from atoma_core.core import AtomaCore

from ._faces import Async, Face
from ._options import from_keywords, merge
from ._resources import (
    Chat,
    Completions,
    ConfidentialChat,
    ConfidentialCompletions,
    ConfidentialEmbeddings,
    ConfidentialImages,
    Embeddings,
    Health,
    Images,
    Models,
    Nodes,
)

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from atoma_core.config import RequestOptions, Timeouts
    from atoma_core.core import BearerAuth

    from ._faces import Runner

__all__ = [
    "AtomaSDK",
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


class _Client(Generic[Face]):
    """The sub-clients, on one core, for either face; `AtomaSDK` and `AtomaSyncSDK` are its two
    faces. A sub-client added here appears, typed, on both."""

    __slots__ = (
        "_defaults",
        "_runner",
        "chat",
        "completions",
        "confidential_chat",
        "confidential_completions",
        "confidential_embeddings",
        "confidential_images",
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
    """Nodes: `create_lock` (confidential compute) and `create` (a node registering its address)."""
    confidential_chat: ConfidentialChat[Face]
    """Confidential chat: `create` and `create_stream`, encrypted end to end."""
    confidential_completions: ConfidentialCompletions[Face]
    """Confidential legacy completions: `create` and `create_stream`, encrypted end to end."""
    confidential_embeddings: ConfidentialEmbeddings[Face]
    """Confidential embeddings: `create`."""
    confidential_images: ConfidentialImages[Face]
    """Confidential image generation: `generate`."""

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
        self.confidential_chat = ConfidentialChat(core, runner, defaults)
        self.confidential_completions = ConfidentialCompletions(core, runner, defaults)
        self.confidential_embeddings = ConfidentialEmbeddings(core, runner, defaults)
        self.confidential_images = ConfidentialImages(core, runner, defaults)

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
