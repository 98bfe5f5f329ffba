"""The per-attempt hooks (`Hooks.before_request`, `after_success`, `after_error`): what they see,
running them in order, and the headers a `before_request` hook may edit. Called by the request
path; user code runs here, so its failures are wrapped, never propagated raw."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Mapping

from .config import HookContext
from .core import check_header_value
from .errors import UnexpectedClientError

if TYPE_CHECKING:
    from ._operation import CallContext, Operation
    from .config import Hook, Hooks

__all__ = ["edited_headers", "hook_context", "run_hook", "run_hooks"]


async def run_hook(hook: Hook, context: HookContext) -> None:
    """Run a user hook, sync or async; its own failure is reported, not propagated raw."""
    try:
        result = hook(context)
        if result is not None:
            await result
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = UnexpectedClientError(f"{context.operation_id} hook failed: {exc!r}")
        raise error from exc


def hook_context(
    ctx: CallContext, op: Operation[Any, Any], url: Any, headers: Mapping[str, str], body: bytes | None
) -> HookContext:
    safe = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    return HookContext(
        operation_id=ctx.operation_id,
        attempt=ctx.attempts,
        method=op.method,
        url=str(url),
        request_headers=safe,
        body=body or b"",
        call=ctx.call,
    )


async def run_hooks(hooks: tuple[Hooks, ...], name: str, context: HookContext) -> None:
    """Run one hook point of every installed `Hooks`, in order."""
    for each in hooks:
        hook = getattr(each, name)
        if hook is not None:
            await run_hook(hook, context)


def edited_headers(headers: Mapping[str, str], edited: Mapping[str, str]) -> dict[str, str]:
    """This attempt's headers once before_request hooks edited their copy: the edits, checked,
    plus the Authorization header they never saw (and cannot set)."""
    sent = {k: v for k, v in headers.items() if k.lower() == "authorization"}
    for name, value in edited.items():
        if headers.get(name) != value:
            try:
                check_header_value(name, value)
            except ValueError as exc:
                raise UnexpectedClientError(f"a before_request hook set a bad header: {exc}") from None
        if name.lower() != "authorization":
            sent[name] = value
    return sent
