"""What `mypy --strict` users see on both faces of the bundled client: real types, not Any.

Never run; `tests/test_sync.py::test_both_faces_are_typed` type-checks it. A `# type: ignore[...]`
line asserts that mypy reports that error there (strict mode fails on an unneeded ignore).
"""

from __future__ import annotations

from typing_extensions import assert_type

from atoma_core import ChatCompletionStream, CompletionStream, Result, StreamMetrics
from atoma_core.errors import AtomaError
from atoma_core.models import (
    ChatCompletionChunk,
    ChatCompletionResponse,
    CompletionChunk,
    CompletionResponse,
    EmbeddingResponse,
    HealthResponse,
    ModelList,
    Usage,
)
from atoma_core.types import ChatCompletionMessageParam
from atoma_funcs import AtomaSDK, AtomaSyncSDK, SyncStream

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def async_face(sdk: AtomaSDK) -> None:
    assert_type(await sdk.chat.create(model="m", messages=MESSAGES), ChatCompletionResponse)
    assert_type(await sdk.chat.completions.create(model="m", messages=MESSAGES), ChatCompletionResponse)
    stream = await sdk.chat.create_stream(model="m", messages=MESSAGES)
    assert_type(stream, ChatCompletionStream)
    async with stream:
        async for chunk in stream:
            assert_type(chunk, ChatCompletionChunk)
    assert_type(await sdk.completions.create_stream(model="m", prompt="p"), CompletionStream)
    assert_type(await sdk.embeddings.create(model="e", input="x"), EmbeddingResponse)
    assert_type(await sdk.models.list(), ModelList)
    assert_type(await sdk.confidential_chat.create(model="m", messages=MESSAGES), ChatCompletionResponse)
    assert_type(await sdk.confidential_chat.create_stream(model="m", messages=MESSAGES), ChatCompletionStream)
    assert_type(await sdk.confidential_embeddings.create(model="e", input="x"), EmbeddingResponse)
    assert_type(sdk.with_options(timeout=1.0), AtomaSDK)
    await sdk.chat.create(options=5)  # type: ignore[arg-type]
    sdk.chat.create_sream  # type: ignore[attr-defined]  # noqa: B018


def sync_face(sdk: AtomaSyncSDK) -> None:
    assert_type(sdk.chat.create(model="m", messages=MESSAGES), ChatCompletionResponse)
    assert_type(sdk.chat.completions.create(model="m", messages=MESSAGES), ChatCompletionResponse)
    assert_type(sdk.completions.create(model="m", prompt="p"), CompletionResponse)
    assert_type(sdk.health.check(), HealthResponse)
    with sdk.chat.create_stream(model="m", messages=MESSAGES) as stream:
        assert_type(stream, SyncStream[ChatCompletionStream])
        for chunk in stream:
            assert_type(chunk, ChatCompletionChunk)
        assert_type(stream.collect(), Result[ChatCompletionResponse, AtomaError])
        assert_type(stream.partial, ChatCompletionResponse)
    assert_type(stream.usage, Usage | None)
    assert_type(stream.metrics, StreamMetrics)
    for piece in sdk.completions.create_stream(model="m", prompt="p"):
        assert_type(piece, CompletionChunk)
    assert_type(sdk.confidential_chat.create(model="m", messages=MESSAGES), ChatCompletionResponse)
    with sdk.confidential_chat.create_stream(model="m", messages=MESSAGES) as sealed:
        assert_type(sealed, SyncStream[ChatCompletionStream])
    assert_type(sdk.with_options(max_retries=0), AtomaSyncSDK)
    sdk.chat.create(options="fast")  # type: ignore[arg-type]
    sdk.warm()
    sdk.close()
