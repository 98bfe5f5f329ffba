"""The accumulators keep streamed text compact (pieces joined as they come) and exact."""

from __future__ import annotations

from atoma_core._accumulate import _JOIN_EVERY, ChunkAccumulator, CompletionAccumulator
from atoma_core.models import ChatCompletionChunk, CompletionChunk
from atoma_core.models.chat import ChatCompletionChunkChoice, ChatCompletionChunkDelta
from atoma_core.models.completions import CompletionChoice

PIECES = [f"tok{i} " for i in range(1000)] + [""]  # an empty delta too (a role chunk's content)


def test_chat_text_is_exact_and_held_in_few_strings() -> None:
    acc = ChunkAccumulator()
    for piece in PIECES:
        acc.add(ChatCompletionChunk(choices=[ChatCompletionChunkChoice(delta=ChatCompletionChunkDelta(content=piece))]))
        state = acc.choices[0]
        assert len(state.content) < _JOIN_EVERY  # the newest pieces
        assert len(state.content_blocks) <= len(PIECES) // _JOIN_EVERY  # the rest, joined
    assert acc.snapshot().choices[0].message.content == "".join(PIECES)


def test_completion_text_is_exact_and_held_in_few_strings() -> None:
    acc = CompletionAccumulator()
    for piece in PIECES:
        acc.add(CompletionChunk(choices=[CompletionChoice(text=piece)]))
        state = acc.choices[0]
        assert len(state.text) < _JOIN_EVERY and len(state.text_blocks) <= len(PIECES) // _JOIN_EVERY
    assert acc.snapshot().choices[0].text == "".join(PIECES)


def test_only_empty_content_still_counts_as_content() -> None:
    acc = ChunkAccumulator()
    acc.add(ChatCompletionChunk(choices=[ChatCompletionChunkChoice(delta=ChatCompletionChunkDelta(content=""))]))
    assert acc.snapshot().choices[0].message.content == ""  # not None: a content chunk arrived


def test_big_pieces_are_kept_as_they_came_not_copied() -> None:
    big = [f"{i:04d}" + "x" * 996 for i in range(100)]  # 1000 characters each
    acc = ChunkAccumulator()
    for piece in big:
        acc.add(ChatCompletionChunk(choices=[ChatCompletionChunkChoice(delta=ChatCompletionChunkDelta(content=piece))]))
    state = acc.choices[0]
    held = state.content_blocks + state.content
    assert all(a is b for a, b in zip(held, big, strict=True))  # the very objects: no join copied them
    assert acc.snapshot().choices[0].message.content == "".join(big)
