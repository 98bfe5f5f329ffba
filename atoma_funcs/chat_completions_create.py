"""`chat_create`: one chat completion, returned whole (`POST /v1/chat/completions`)."""

from __future__ import annotations

from typing import Any, Mapping

from atoma_core._body import json_response
from atoma_core._request import Operation, call
from atoma_core.config import RequestOptions
from atoma_core.core import AtomaCore
from atoma_core.errors import AtomaError
from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse
from atoma_core.result import Result

from ._chat import CHAT_COMPLETIONS_PATH, prepare_create

__all__ = ["chat_create"]

_OPERATION = Operation(
    "chat_completions_create",
    CHAT_COMPLETIONS_PATH,
    ChatCompletionRequest,
    json_response(ChatCompletionResponse),
    prepare=prepare_create,
)


async def chat_create(
    core: AtomaCore,
    request: ChatCompletionRequest | Mapping[str, Any],
    options: RequestOptions | None = None,
) -> Result[ChatCompletionResponse, AtomaError]:
    """Create a chat completion. Returns `Ok(ChatCompletionResponse)` or `Err(AtomaError)`; never raises
    (except `asyncio.CancelledError`)."""
    return await call(core, _OPERATION, request, options)
