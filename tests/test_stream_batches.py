"""Many events in one read: the stream decodes them together, yet hands them out one by one, and
`partial`, `usage` and `metrics` count exactly the items handed out. Whatever ends the stream in
the middle of a read ([DONE], an error event, a bad frame) takes effect after the items before it."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import msgspec
import pytest
from aiohttp import web

from atoma_core import AtomaCore, ChatCompletionStream, Err, Timeouts, errors
from atoma_funcs import chat_create_stream

from .conftest import STREAM_CHAT, acquired_connections, serve_app


def chunk(
    content: str | None = None, finish: str | None = None, role: str | None = None, **extra: object
) -> bytes:
    delta = {} if content is None else {"content": content}
    if role is not None:
        delta["role"] = role
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return msgspec.json.encode({"id": "c1", "model": "m", "choices": [choice], **extra})


def data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


WORDS = [f"w{i} " for i in range(40)]
USAGE = msgspec.json.encode(
    {"id": "c1", "model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 40}}
)
BODY = b"".join(data(chunk(w)) for w in WORDS) + data(chunk(finish="stop")) + data(USAGE)


@asynccontextmanager
async def serve_in_one_write(body: bytes, *later: bytes, **config: Any) -> AsyncIterator[AtomaCore]:
    """Serve `body` in one write (the client reads its events at once), then each of `later`
    0.2 s apart; `config` goes to the AtomaCore."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(body)
        for write in later:
            await asyncio.sleep(0.2)
            await response.write(write)
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    async with serve_app(app) as url, AtomaCore("t", url, **config) as core:
        yield core


async def open_stream(core: AtomaCore) -> ChatCompletionStream:
    return (await chat_create_stream(core, STREAM_CHAT)).unwrap()


async def test_partial_and_metrics_count_the_items_handed_out_not_those_read() -> None:
    async with serve_in_one_write(BODY) as core:
        stream = await open_stream(core)
        seen: list[str] = []
        async with stream:
            assert stream.partial.choices == [] and stream.metrics.chunks == 0  # read, not handed out
            async for item in stream:
                seen.append(item.choices[0].delta.content or "")
                assert stream.partial.choices[0].message.content == "".join(seen)
                assert stream.metrics.chunks == len(seen)
                if len(seen) == 25:
                    break
            assert stream.usage is None  # the usage chunk came in the same read, but not out
        assert stream.partial.choices[0].message.content == "".join(WORDS[:25])
        assert stream.metrics.chunks == 25 and stream.closed


async def test_a_whole_stream_in_one_read_collects_whole() -> None:
    async with serve_in_one_write(BODY) as core:
        stream = await open_stream(core)
        done = (await stream.collect()).unwrap()
        assert done.choices[0].message.content == "".join(WORDS)
        assert done.usage is not None and done.usage.completion_tokens == 40
        assert stream.metrics.chunks == len(WORDS) + 2


async def test_done_in_the_middle_of_a_read_ends_there() -> None:
    body = data(chunk("a")) + data(chunk(finish="stop")) + b"data: [DONE]\n\n" + data(chunk("never"))
    async with serve_in_one_write(body) as core:
        stream = await open_stream(core)
        async with stream:
            items = [item async for item in stream]
        assert len(items) == 2 and stream.partial.choices[0].message.content == "a"


@pytest.mark.parametrize(
    ("ending", "error"),
    [
        (b'event: error\ndata: {"error":{"message":"boom","code":500}}\n\n', errors.APIError),
        (b"data: {oops\n\n", errors.StreamInterruptedError),
        (data(b'{"choices": 7}'), errors.ResponseValidationError),
    ],
)
async def test_an_end_in_the_middle_of_a_read_comes_after_the_items_before_it(
    ending: bytes, error: type[errors.AtomaError]
) -> None:
    body = b"".join(data(chunk(w)) for w in WORDS[:3]) + ending + data(chunk("never"))
    async with serve_in_one_write(body) as core:
        stream = await open_stream(core)
        seen = []
        with pytest.raises(error) as caught:
            async with stream:
                async for item in stream:
                    seen.append(item.choices[0].delta.content)
        assert seen == WORDS[:3]
        assert caught.value.partial.choices[0].message.content == "".join(WORDS[:3])
        assert stream.metrics.chunks == 3 and stream.closed


async def test_named_events_ids_and_comments_among_plain_ones() -> None:
    body = (
        data(chunk("a"))
        + b"event: message\nid: 7\ndata: "
        + chunk("b")
        + b"\n\n"  # a message all the same
        + b": keep-alive\n\n"
        + b"event: ping\ndata: {}\n\n"  # not ours: skipped
        + b"id: 8\ndata: "
        + chunk("c")
        + b"\n\n"
        + data(chunk(finish="stop"))
    )
    async with serve_in_one_write(body) as core:
        stream = await open_stream(core)
        async with stream:
            items = [item.choices[0].delta.content async for item in stream]
        assert items == ["a", "b", "c", None]


async def test_max_stream_size_bounds_the_body_read() -> None:
    async with serve_in_one_write(BODY) as core:
        small = AtomaCore("t", core.server_url, max_stream_size=len(BODY) - 1)
        async with small:
            res = await chat_create_stream(small, STREAM_CHAT)
            # The one read holds the whole body: past the bound before anything is handed out.
            assert isinstance(res, Err) and isinstance(res.error, errors.ResponseTooLargeError), res
            assert res.error.limit == len(BODY) - 1 and acquired_connections(small) == 0


async def test_time_to_first_token_counts_content_handed_out() -> None:
    """Content read behind two role chunks, then a break before it: no time to first token."""
    body = data(chunk(role="assistant")) + data(chunk(role="assistant")) + data(chunk("hello"))
    async with serve_in_one_write(body, data(chunk(finish="stop"))) as core:
        stream = await open_stream(core)
        async with stream:
            async for _ in stream:
                if stream.metrics.chunks == 2:
                    break
        assert stream.partial.choices[0].message.content is None
        assert stream.metrics.chunks == 2 and stream.metrics.time_to_first_token is None
    async with serve_in_one_write(body, data(chunk(finish="stop"))) as core:
        stream = await open_stream(core)
        assert stream.metrics.time_to_first_token is None  # read, none handed out yet
        assert (await stream.collect()).ok and stream.metrics.time_to_first_token is not None


async def test_a_token_in_the_first_read_meets_the_first_token_deadline() -> None:
    """The caller takes its time before iterating: the token came in time all the same."""
    body = data(chunk(role="assistant")) + data(chunk("hello"))
    async with serve_in_one_write(
        body, data(chunk(finish="stop")), timeouts=Timeouts(first_token=0.1)
    ) as core:
        stream = await open_stream(core)
        await asyncio.sleep(0.15)
        done = await stream.collect()
        assert done.ok, done
        assert done.value.choices[0].message.content == "hello"
        assert stream.metrics.time_to_first_token is not None
