"""`Ok` / `Err`: the Result returned by every standalone function instead of raising.

`Result[T, E]` is `Ok[T] | Err[E]`; mypy narrows it on `res.ok` and on `match`.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Literal, NoReturn, TypeVar, Union, final

T = TypeVar("T")
E = TypeVar("E")
U = TypeVar("U")

__all__ = ["Err", "Ok", "Result", "UnwrapError"]


class UnwrapError(Exception):
    """`unwrap()` was called on an `Err` whose error is not an exception."""


@final
class Ok(Generic[T]):
    """A successful result holding `value`."""

    __slots__ = ("value",)
    __match_args__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    @property
    def ok(self) -> Literal[True]:
        return True

    def unwrap(self) -> T:
        """Return the value."""
        return self.value

    def unwrap_or(self, default: object) -> T:
        """Return the value (the default is for `Err`)."""
        return self.value

    def map(self, fn: Callable[[T], U]) -> Ok[U]:
        """Apply `fn` to the value."""
        return Ok(fn(self.value))

    def __repr__(self) -> str:
        return f"Ok({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ok) and self.value == other.value

    def __hash__(self) -> int:
        return hash((True, self.value))


@final
class Err(Generic[E]):
    """A failed result holding `error` (an `errors.AtomaError` for every SDK function)."""

    __slots__ = ("error",)
    __match_args__ = ("error",)

    def __init__(self, error: E) -> None:
        self.error = error

    @property
    def ok(self) -> Literal[False]:
        return False

    def unwrap(self) -> NoReturn:
        """Raise the error (wrapped in `UnwrapError` if it is not an exception)."""
        if isinstance(self.error, BaseException):
            raise self.error
        raise UnwrapError(repr(self.error))

    def unwrap_or(self, default: U) -> U:
        """Return `default`."""
        return default

    def map(self, fn: Callable[[Any], object]) -> Err[E]:
        """Return self: there is no value to map."""
        return self

    def __repr__(self) -> str:
        return f"Err({self.error!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Err) and self.error == other.error

    def __hash__(self) -> int:
        return hash((False, self.error))


Result = Union[Ok[T], Err[E]]
"""What every standalone function returns: `Ok(value)` or `Err(error)`; `match` on it or test `.ok`."""
