"""openai-python's per-call keywords on the bundled clients, mapped onto one `RequestOptions`.

`timeout=` (seconds: the whole call's deadline, retries included; or a `Timeouts`),
`max_retries=`, `extra_headers=` and `extra_body=` are accepted by the request methods and by
`with_options(...)`. Precedence: a client's `with_options` defaults, then `options=`, then these
keywords; headers and extra body fields are merged, other settings replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import msgspec

from atoma_core.config import RequestOptions, Timeouts
from atoma_core.errors import InvalidRequestError

if TYPE_CHECKING:
    from atoma_core.config import RetryConfig

__all__ = ["KEYWORDS", "call_options", "from_keywords", "merge"]

KEYWORDS = ("timeout", "max_retries", "extra_headers", "extra_body")


def from_keywords(
    retry: RetryConfig,
    *,
    timeout: float | Timeouts | None = None,
    max_retries: int | None = None,
    extra_headers: Mapping[str, str] | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> RequestOptions:
    """The `RequestOptions` the openai keywords mean; `retry` is the policy `max_retries` adjusts."""
    changes: dict[str, Any] = {}
    if isinstance(timeout, Timeouts):
        changes["timeouts"] = timeout
    elif timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidRequestError(f"timeout must be a positive number of seconds, not {timeout!r}")
        changes["timeout_ms"] = max(1, round(timeout * 1000))
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidRequestError(f"max_retries must be a whole number >= 0, not {max_retries!r}")
        strategy = "backoff" if max_retries > 0 else "none"
        changes["retries"] = msgspec.structs.replace(retry, max_retries=max_retries, strategy=strategy)
    for name, value in (("extra_headers", extra_headers), ("extra_body", extra_body)):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidRequestError(f"{name} must be a mapping, not {type(value).__name__}")
    changes["headers"] = extra_headers
    changes["extra_body"] = extra_body
    return RequestOptions(**changes)


def merge(base: RequestOptions | None, override: RequestOptions | None) -> RequestOptions | None:
    """`override`'s settings over `base`'s: a None field keeps the base's; mappings are merged."""
    if base is None:
        return override
    if override is None:
        return base
    changes: dict[str, Any] = {}
    for name in base.__struct_fields__:
        value = getattr(override, name)
        if value is None:
            continue
        old = getattr(base, name)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            value = {**old, **value}
        changes[name] = value
    return msgspec.structs.replace(base, **changes)


def call_options(
    retry: RetryConfig,
    defaults: RequestOptions | None,
    options: RequestOptions | None,
    params: dict[str, Any],
) -> RequestOptions | None:
    """One call's options: the client's defaults, `options=`, then the openai keywords, which are
    taken out of `params` (the request's keywords)."""
    if params.keys().isdisjoint(KEYWORDS):
        return options if defaults is None else merge(defaults, options)
    keywords = {name: params.pop(name) for name in KEYWORDS if name in params}
    base = merge(defaults, options)
    base_retry = base.retries if base is not None and base.retries is not None else retry
    return merge(base, from_keywords(base_retry, **keywords))
