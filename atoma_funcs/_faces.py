"""One method, two faces: a sub-client method is written once, as an `async def`, and is awaited
on `AtomaSDK` (`Chat[Async]`) and blocks on `AtomaSyncSDK` (`Chat[Sync]`).

`@api` / `@api_stream` mark such a method. On an async sub-client they bind it as a plain method;
on a sync one they run it on the client's loop thread (a `Runner`) and return its value, or wrap
the stream it opens in a `SyncStream`. The overloads of `__get__` tell the type checker which face
it is looking at, so both keep the method's parameters and return type.
"""

from __future__ import annotations

from types import MethodType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Concatenate,
    Coroutine,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from atoma_core._events import EventStream
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore

    from ._sync import SyncStream

__all__ = ["Async", "Face", "Resource", "Runner", "Sync", "api", "api_stream"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound="EventStream[Any, Any]")


class Async:
    """The face of `AtomaSDK`'s sub-clients: methods are awaited."""


class Sync:
    """The face of `AtomaSyncSDK`'s sub-clients: methods block the calling thread."""


Face = TypeVar("Face", Async, Sync)


class Runner(Protocol):
    """Runs coroutines on a sync client's event-loop thread (`_sync.LoopThread`)."""

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T: ...

    def open_stream(self, coroutine: Coroutine[Any, Any, S]) -> SyncStream[S]: ...


class Resource(Generic[Face]):
    """One area of the API (`sdk.chat`, `sdk.embeddings`...) on a core, with the client's default
    options; `runner` is None on the async face."""

    __slots__ = ("_core", "_defaults", "_runner")

    def __init__(self, core: AtomaCore, runner: Runner | None, defaults: RequestOptions | None) -> None:
        self._core = core
        self._runner = runner
        self._defaults = defaults


class _Method(Generic[P, T]):
    """Binds an `async def` of a `Resource` to the face of the instance it is read from."""

    def __init__(self, method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> None:
        self.__doc__ = method.__doc__
        self.__wrapped__ = method  # what `inspect.signature` and `help` follow
        self._method = method
        self._name = method.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def _bind(self, resource: Resource[Any]) -> Any:
        bound = MethodType(self._method, resource)
        runner = resource._runner
        if runner is None:
            return bound

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._block(runner, bound(*args, **kwargs))

        blocking.__doc__ = bound.__doc__
        blocking.__name__ = blocking.__qualname__ = self._name
        blocking.__wrapped__ = bound  # type: ignore[attr-defined]  # its signature, for help()
        return blocking

    def _block(self, runner: Runner, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return runner.run(coroutine)


class api(_Method[P, T]):
    """Marks a sub-client method: awaited on `AtomaSDK`, blocking on `AtomaSyncSDK`."""

    @overload
    def __get__(self, resource: None, owner: type) -> Self: ...
    @overload
    def __get__(self, resource: Resource[Sync], owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, resource: Resource[Async], owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, resource: Resource[Any] | None, owner: type) -> Any:
        return self if resource is None else self._bind(resource)


class api_stream(_Method[P, S]):
    """Marks a sub-client method that opens a stream: awaited on `AtomaSDK`; on `AtomaSyncSDK` it
    blocks until the stream has started and returns it as a `SyncStream` (`with` and `for`)."""

    @overload
    def __get__(self, resource: None, owner: type) -> Self: ...
    @overload
    def __get__(self, resource: Resource[Sync], owner: type) -> Callable[P, SyncStream[S]]: ...
    @overload
    def __get__(self, resource: Resource[Async], owner: type) -> Callable[P, Coroutine[Any, Any, S]]: ...
    def __get__(self, resource: Resource[Any] | None, owner: type) -> Any:
        return self if resource is None else self._bind(resource)

    def _block(self, runner: Runner, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return runner.open_stream(coroutine)
