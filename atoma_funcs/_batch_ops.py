"""What a batch job can run: the table from a batch-input line's `url` to the operation, with a
token estimate for each (made before sending, corrected with the real usage afterwards)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, NamedTuple

from ._chat import CHAT_COMPLETIONS_PATH, chat_create
from ._completions import COMPLETIONS_PATH, completions_create
from ._confidential import COMPLETIONS_PATH as CONFIDENTIAL_COMPLETIONS_PATH
from ._confidential import confidential_completions_create
from ._embeddings import EMBEDDINGS_PATH, embeddings_create

if TYPE_CHECKING:
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result

__all__ = ["OPERATIONS", "BatchOperation", "estimate_text_tokens", "used_tokens"]

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text; only an estimate
MESSAGE_OVERHEAD = 4  # role and framing tokens per chat message
DEFAULT_CHAT_COMPLETION = 256  # a guess when a chat request sets no limit (Atoma would allow 8192)
DEFAULT_COMPLETION = 16  # the legacy API's own default max_tokens

Call = Callable[["AtomaCore", Any, "RequestOptions | None"], Awaitable["Result[Any, AtomaError]"]]


class BatchOperation(NamedTuple):
    """One `url` of the batch input: the function that runs it, and the tokens a body will use."""

    call: Call
    estimate: Callable[[Mapping[str, Any]], int]


def estimate_text_tokens(value: Any) -> int:
    """Tokens in a text, a list of texts or content parts, or token ids (one each)."""
    if isinstance(value, str):
        return len(value) // CHARS_PER_TOKEN + 1
    if isinstance(value, int):
        return 1
    if isinstance(value, Mapping):
        return estimate_text_tokens(value.get("text"))
    if isinstance(value, list):
        return sum(estimate_text_tokens(item) for item in value)
    return 0


def _positive(value: Any, default: int) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _chat_tokens(body: Mapping[str, Any]) -> int:
    messages = body.get("messages")
    prompt = 0
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, Mapping) else None
            prompt += estimate_text_tokens(content) + MESSAGE_OVERHEAD
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return prompt + _positive(limit, DEFAULT_CHAT_COMPLETION) * _positive(body.get("n"), 1)


def _completion_tokens(body: Mapping[str, Any]) -> int:
    completion = _positive(body.get("max_tokens"), DEFAULT_COMPLETION) * _positive(body.get("n"), 1)
    return estimate_text_tokens(body.get("prompt")) + completion


def _embedding_tokens(body: Mapping[str, Any]) -> int:
    return estimate_text_tokens(body.get("input"))


OPERATIONS: Mapping[str, BatchOperation] = {
    CHAT_COMPLETIONS_PATH: BatchOperation(chat_create, _chat_tokens),
    COMPLETIONS_PATH: BatchOperation(completions_create, _completion_tokens),
    CONFIDENTIAL_COMPLETIONS_PATH: BatchOperation(confidential_completions_create, _completion_tokens),
    EMBEDDINGS_PATH: BatchOperation(embeddings_create, _embedding_tokens),
}


def used_tokens(value: Any) -> int | None:
    """`usage.total_tokens` of a response, if it reports usage."""
    usage = getattr(value, "usage", None)
    total = getattr(usage, "total_tokens", None)
    return total if isinstance(total, int) else None
