"""Fold stream chunks into the whole response: text per choice, tool calls merged by index,
refusal, reasoning, logprobs, finish_reason and usage (chat); text, logprobs, finish_reason and
usage (legacy completions). Pure data, no I/O."""

from __future__ import annotations

from typing import Sequence

from .models.chat import (
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkDelta,
    ChatCompletionChunkDeltaToolCall,
    ChatCompletionLogProbs,
    ChatCompletionLogProbsContent,
    ChatCompletionResponse,
    ChatCompletionResponseMessage,
    ToolCall,
    ToolCallFunction,
)
from .models.completions import CompletionChoice, CompletionChunk, CompletionLogProbs, CompletionResponse
from .models.usage import Usage

__all__ = ["ChunkAccumulator", "CompletionAccumulator"]

# Accumulated text is kept as the newest pieces (at most this many) plus the older ones joined in
# blocks of this many: a held stream keeps a few strings rather than one ~50-byte str object per
# token, each piece is copied once (the work stays linear in the answer's length), and nothing is
# sliced per token.
_JOIN_EVERY = 32
_JOIN_UP_TO = 4096  # ... unless those pieces hold more characters: big pieces are kept as they are


class _ToolCallState:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.type = "function"
        self.name = ""
        self.arguments: list[str] = []


class _ChoiceState:
    __slots__ = (
        "content",
        "content_blocks",
        "finish_reason",
        "logprobs",
        "reasoning",
        "refusal",
        "role",
        "stop_reason",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []  # the newest pieces, fewer than _JOIN_EVERY
        self.content_blocks: list[str] = []  # the older ones, joined
        self.reasoning: list[str] | None = None  # these three come rarely: made on first use
        self.refusal: list[str] | None = None
        self.tool_calls: dict[int, _ToolCallState] | None = None
        self.finish_reason: str | None = None
        self.stop_reason: int | str | None = None
        self.logprobs: list[ChatCompletionLogProbsContent] | None = None

    def message(self) -> ChatCompletionResponseMessage:
        tool_calls = [
            ToolCall(
                id=t.id, type=t.type, function=ToolCallFunction(name=t.name, arguments="".join(t.arguments))
            )
            for _, t in sorted((self.tool_calls or {}).items())
        ]
        text = "".join(self.content_blocks) + "".join(self.content)
        # As non-streamed responses do: content is null on a pure tool-call answer (whose role
        # chunk typically carries content ""), and when no content arrived at all.
        return ChatCompletionResponseMessage(
            role=self.role,
            content=text if text or ((self.content or self.content_blocks) and not tool_calls) else None,
            refusal="".join(self.refusal) if self.refusal is not None else None,
            reasoning_content="".join(self.reasoning) if self.reasoning is not None else None,
            tool_calls=tool_calls or None,
        )


class ChunkAccumulator:
    """Accumulates chunks; `snapshot()` builds the response `chat_create` would have returned."""

    __slots__ = ("choices", "created", "id", "model", "service_tier", "system_fingerprint", "usage")

    def __init__(self) -> None:
        self.choices: dict[int, _ChoiceState] = {}
        self.id = ""
        self.model = ""
        self.created = 0
        self.usage: Usage | None = None
        self.system_fingerprint: str | None = None
        self.service_tier: str | None = None

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.extend((chunk,))

    def extend(self, chunks: Sequence[ChatCompletionChunk]) -> None:
        """Fold these chunks in, in order. The hot path: a content delta is a few checks and an
        append, with what is looked up per chunk bound to locals once per call."""
        if not self.id:
            self._take_head(chunks)
        states = self.choices
        state_of = states.get
        for chunk in chunks:
            if chunk.usage is not None:
                self.usage = chunk.usage
            for choice in chunk.choices:
                state = state_of(choice.index)
                if state is None:
                    state = states[choice.index] = _ChoiceState()
                delta = choice.delta
                if delta.content is not None:
                    pieces = state.content
                    pieces.append(delta.content)
                    if len(pieces) >= _JOIN_EVERY:
                        _fold(pieces, state.content_blocks)
                if (
                    delta.role is not None
                    or delta.tool_calls
                    or delta.reasoning_content is not None
                    or delta.refusal is not None
                ):
                    self._add_rare(state, delta)
                if choice.finish_reason is not None:
                    state.finish_reason = choice.finish_reason
                if choice.stop_reason is not None:
                    state.stop_reason = choice.stop_reason
                if choice.logprobs is not None and choice.logprobs.content:
                    if state.logprobs is None:
                        state.logprobs = []
                    state.logprobs.extend(choice.logprobs.content)

    def _take_head(self, chunks: Sequence[ChatCompletionChunk]) -> None:
        """The response's id, model, ... from the first chunk that has an id."""
        for chunk in chunks:
            self.id = chunk.id
            self.model = chunk.model
            self.created = chunk.created
            self.system_fingerprint = chunk.system_fingerprint
            self.service_tier = chunk.service_tier
            if chunk.id:
                return

    def _add_rare(self, state: _ChoiceState, delta: ChatCompletionChunkDelta) -> None:
        """The parts of a delta that come rarely: role, tool calls, reasoning, refusal."""
        if delta.tool_calls:
            self._merge_tool_calls(state, delta.tool_calls)
        if delta.reasoning_content is not None:
            if state.reasoning is None:
                state.reasoning = []
            state.reasoning.append(delta.reasoning_content)
        if delta.refusal is not None:
            if state.refusal is None:
                state.refusal = []
            state.refusal.append(delta.refusal)
        if delta.role is not None:
            state.role = delta.role

    @staticmethod
    def _merge_tool_calls(state: _ChoiceState, deltas: list[ChatCompletionChunkDeltaToolCall]) -> None:
        calls = state.tool_calls
        if calls is None:
            calls = state.tool_calls = {}
        for delta in deltas:
            call = calls.get(delta.index)
            if call is None:
                call = calls[delta.index] = _ToolCallState()
            if delta.id:
                call.id = delta.id
            if delta.type:
                call.type = delta.type
            function = delta.function
            if function is not None:
                if function.name:
                    call.name = function.name
                if function.arguments:
                    call.arguments.append(function.arguments)

    @staticmethod
    def is_token(chunk: ChatCompletionChunk) -> bool:
        if not chunk.choices:
            return False
        delta = chunk.choices[0].delta
        return bool(delta.content or delta.tool_calls or delta.reasoning_content or delta.refusal)

    def finished(self) -> bool:
        """At least one choice arrived, and every choice got a finish_reason."""
        return _all_finished(self.choices)

    def snapshot(self) -> ChatCompletionResponse:
        choices = [
            ChatCompletionChoice(
                message=state.message(),
                index=index,
                finish_reason=state.finish_reason,
                logprobs=None if state.logprobs is None else ChatCompletionLogProbs(content=state.logprobs),
                stop_reason=state.stop_reason,
            )
            for index, state in sorted(self.choices.items())
        ]
        return ChatCompletionResponse(
            choices=choices,
            id=self.id,
            object="chat.completion",
            created=self.created,
            model=self.model,
            usage=self.usage,
            system_fingerprint=self.system_fingerprint,
            service_tier=self.service_tier,
        )


def _fold(pieces: list[str], blocks: list[str]) -> None:
    """Move the newest pieces to the blocks: joined into one if small, else as they are (a join
    would copy them for nothing: their object overhead is small next to their text)."""
    if sum(map(len, pieces)) <= _JOIN_UP_TO:
        blocks.append("".join(pieces))
    else:
        blocks.extend(pieces)
    pieces.clear()


def _all_finished(choices: dict[int, _ChoiceState] | dict[int, _TextState]) -> bool:
    return bool(choices) and all(c.finish_reason is not None for c in choices.values())


class _TextState:
    __slots__ = ("finish_reason", "logprobs", "stop_reason", "text", "text_blocks")

    def __init__(self) -> None:
        self.text: list[str] = []  # the newest pieces, fewer than _JOIN_EVERY
        self.text_blocks: list[str] = []  # the older ones, joined
        self.finish_reason: str | None = None
        self.stop_reason: int | str | None = None
        self.logprobs: CompletionLogProbs | None = None

    def add_logprobs(self, piece: CompletionLogProbs) -> None:
        if self.logprobs is None:
            self.logprobs = CompletionLogProbs(
                tokens=[], token_logprobs=[], top_logprobs=None, text_offset=[]
            )
        merged = self.logprobs
        merged.tokens.extend(piece.tokens)
        merged.token_logprobs.extend(piece.token_logprobs)
        merged.text_offset.extend(piece.text_offset)
        if piece.top_logprobs is not None:
            if merged.top_logprobs is None:
                merged.top_logprobs = []
            merged.top_logprobs.extend(piece.top_logprobs)


class CompletionAccumulator:
    """Accumulates legacy completion chunks; `snapshot()` is what `completions_create` returns."""

    __slots__ = ("choices", "created", "id", "model", "system_fingerprint", "usage")

    def __init__(self) -> None:
        self.choices: dict[int, _TextState] = {}
        self.id = ""
        self.model = ""
        self.created = 0
        self.usage: Usage | None = None
        self.system_fingerprint: str | None = None

    def add(self, chunk: CompletionChunk) -> None:
        self.extend((chunk,))

    def extend(self, chunks: Sequence[CompletionChunk]) -> None:
        """Fold these chunks in, in order."""
        if not self.id:
            self._take_head(chunks)
        states = self.choices
        for chunk in chunks:
            if chunk.usage is not None:
                self.usage = chunk.usage
            for choice in chunk.choices:
                state = states.get(choice.index)
                if state is None:
                    state = states[choice.index] = _TextState()
                if choice.text:
                    text = state.text
                    text.append(choice.text)
                    if len(text) >= _JOIN_EVERY:
                        _fold(text, state.text_blocks)
                if choice.finish_reason is not None:
                    state.finish_reason = choice.finish_reason
                if choice.stop_reason is not None:
                    state.stop_reason = choice.stop_reason
                if choice.logprobs is not None:
                    state.add_logprobs(choice.logprobs)

    def _take_head(self, chunks: Sequence[CompletionChunk]) -> None:
        """The response's id, model, ... from the first chunk that has an id."""
        for chunk in chunks:
            self.id = chunk.id
            self.model = chunk.model
            self.created = chunk.created
            self.system_fingerprint = chunk.system_fingerprint
            if chunk.id:
                return

    @staticmethod
    def is_token(chunk: CompletionChunk) -> bool:
        return bool(chunk.choices) and bool(chunk.choices[0].text)

    def finished(self) -> bool:
        """At least one choice arrived, and every choice got a finish_reason."""
        return _all_finished(self.choices)

    def snapshot(self) -> CompletionResponse:
        choices = [
            CompletionChoice(
                text="".join(state.text_blocks) + "".join(state.text),
                index=index,
                finish_reason=state.finish_reason,
                logprobs=state.logprobs,
                stop_reason=state.stop_reason,
            )
            for index, state in sorted(self.choices.items())
        ]
        return CompletionResponse(
            choices=choices,
            id=self.id,
            created=self.created,
            model=self.model,
            usage=self.usage,
            system_fingerprint=self.system_fingerprint,
        )
