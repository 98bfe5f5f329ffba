"""Data models (msgspec Structs) by area, each loaded on first attribute access (PEP 562).

`from atoma_core.models import EmbeddingRequest` imports `models.embeddings` and nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chat import *  # noqa: F403
    from .completions import *  # noqa: F403
    from .confidential import *  # noqa: F403
    from .embeddings import *  # noqa: F403
    from .images import *  # noqa: F403
    from .meta import *  # noqa: F403
    from .models import *  # noqa: F403
    from .nodes import *  # noqa: F403
    from .parsed import *  # noqa: F403
    from .tool_run import *  # noqa: F403
    from .usage import *  # noqa: F403

# Which module holds each public name (tests check it against every module's __all__).
_AREAS: dict[str, tuple[str, ...]] = {
    "meta": ("FallbackFailure", "PlainData", "ResponseMeta"),
    "usage": ("CompletionTokensDetails", "PromptTokensDetails", "Usage"),
    "chat": (
        "AssistantMessage",
        "ChatCompletionChoice",
        "ChatCompletionChunk",
        "ChatCompletionChunkChoice",
        "ChatCompletionChunkDelta",
        "ChatCompletionChunkDeltaToolCall",
        "ChatCompletionChunkDeltaToolCallFunction",
        "ChatCompletionLogProb",
        "ChatCompletionLogProbs",
        "ChatCompletionLogProbsContent",
        "ChatCompletionMessage",
        "ChatCompletionNamedFunction",
        "ChatCompletionNamedToolChoice",
        "ChatCompletionRequest",
        "ChatCompletionResponse",
        "ChatCompletionResponseMessage",
        "ContentPart",
        "DeveloperMessage",
        "FunctionDefinition",
        "ImageContentPart",
        "ImageURL",
        "JsonSchemaResponseFormat",
        "ResponseFormat",
        "StreamOptions",
        "SystemMessage",
        "TextContentPart",
        "Tool",
        "ToolCall",
        "ToolCallFunction",
        "ToolMessage",
        "UserMessage",
    ),
    "completions": (
        "CompletionChoice",
        "CompletionChunk",
        "CompletionLogProbs",
        "CompletionRequest",
        "CompletionResponse",
    ),
    "embeddings": ("Embedding", "EmbeddingRequest", "EmbeddingResponse", "EmbeddingUsage"),
    "images": ("Image", "ImageGenerationRequest", "ImageGenerationResponse"),
    "models": ("HealthResponse", "Model", "ModelList"),
    "nodes": (
        "NodePublicAddressAssignment",
        "NodesCreateLockRequest",
        "NodesCreateLockResponse",
        "NodesCreateRequest",
        "NodesCreateResponse",
    ),
    "confidential": ("ConfidentialComputeRequest", "ConfidentialComputeResponse"),
    "parsed": ("ParsedChatCompletion", "ParsedChatCompletionMessage", "ParsedChoice"),
    "tool_run": ("ToolRun", "ToolRunCall"),
}
_MODULE_OF = {name: area for area, names in _AREAS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    area = _MODULE_OF.get(name)
    if area is None:
        raise AttributeError(f"module 'atoma_core.models' has no attribute {name!r}")
    # Kept as a module global: a later `from ... import name` finds it without this call.
    value = globals()[name] = getattr(import_module(f".{area}", __name__), name)
    return value


def __dir__() -> list[str]:
    return __all__
