"""Legacy text completions (`POST /v1/completions`): `completions_create`, `completions_create_stream`."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from msgspec.structs import replace

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.errors import InvalidRequestError
from atoma_core.models.completions import CompletionRequest, CompletionResponse

from ._chat import stream_options

if TYPE_CHECKING:
    from atoma_core._stream import CompletionStream
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result
    from atoma_core.types import CompletionRequestParam

__all__ = ["completions_create", "completions_create_stream", "prepare_create", "prepare_stream"]

COMPLETIONS_PATH = "/v1/completions"


def prepare_create(request: CompletionRequest) -> CompletionRequest:
    """A non-streaming request: `stream` is sent as false (True is refused, not ignored)."""
    if request.stream is True:
        raise InvalidRequestError("stream=True: use completions_create_stream to stream")
    return replace(request, stream=False)


def prepare_stream(request: CompletionRequest) -> CompletionRequest:
    """A streaming request: `stream: true`, with the usage chunk asked for."""
    return replace(request, stream=True, stream_options=stream_options(request.stream_options))


_CREATE = Operation(
    "completions_create",
    "POST",
    COMPLETIONS_PATH,
    json_response(CompletionResponse),
    request_type=CompletionRequest,
    idempotent=True,  # inference: a copy changes nothing (hedging may send one)
    prepare=prepare_create,
)


@functools.cache
def _stream_operation() -> Operation[CompletionRequest, CompletionStream]:
    from atoma_core._stream import open_completion_stream

    return Operation(
        "completions_create_stream",
        "POST",
        COMPLETIONS_PATH,
        open_completion_stream(),
        request_type=CompletionRequest,
        idempotent=True,  # inference: a copy changes nothing (hedging may send one)
        prepare=prepare_stream,
        accept="text/event-stream",
    )


async def completions_create(
    core: AtomaCore,
    request: CompletionRequest | CompletionRequestParam,
    options: RequestOptions | None = None,
) -> Result[CompletionResponse, AtomaError]:
    """Complete a prompt (legacy API). `Ok(CompletionResponse)`: `.choices[i].text`, `.usage`."""
    return await call(core, _CREATE, request, options)


async def completions_create_stream(
    core: AtomaCore,
    request: CompletionRequest | CompletionRequestParam,
    options: RequestOptions | None = None,
) -> Result[CompletionStream, AtomaError]:
    """Stream a completion (legacy API). `Ok(CompletionStream)` once its first event arrives;
    like `chat_create_stream`: usage, `collect()`, deadlines, `.partial` on failures."""
    return await call(core, _stream_operation(), request, options)
