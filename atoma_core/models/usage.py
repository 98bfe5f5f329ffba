"""Token counts, shared by chat, legacy completions and confidential responses."""

from __future__ import annotations

from .meta import PlainData

__all__ = ["CompletionTokensDetails", "PromptTokensDetails", "Usage"]

# gc=False: acyclic plain data, so the cyclic GC need not track them (faster decode).


class PromptTokensDetails(PlainData, gc=False):
    """A breakdown of the prompt tokens, where the server gives one."""

    cached_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionTokensDetails(PlainData, gc=False):
    """A breakdown of the completion tokens (reasoning, predictions), where the server gives one."""

    reasoning_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class Usage(PlainData, gc=False):
    """Token counts for one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
