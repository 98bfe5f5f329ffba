"""The hostile-server matrix: each fault, through chat_create and chat_create_stream, over real
loopback HTTP, ends in the expected Ok or typed error, with the expected attempts and no leak."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest

from atoma_core import AtomaCore, BackoffStrategy, Err, Ok, Result, RetryConfig, Timeouts, errors
from atoma_core.models import ChatCompletionResponse
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import STREAM_CHAT, TOKEN, acquired_connections, free_port

REPLY = "You said: one two three four"
E = errors


@dataclass
class Row:
    name: str
    script: list[faults.Fault]
    create: tuple[type[BaseException] | None, int]  # expected error class (None: Ok) and attempts
    stream: tuple[type[BaseException] | None, int]
    phase: str | None = None


ROWS = [
    Row(
        "429 Retry-After then 200",
        [faults.status(429, headers={"Retry-After": "0.05"})],
        (None, 2),
        (None, 2),
    ),
    Row(
        "503 forever",
        [faults.status(503, times=None)],
        (E.InternalServerError, 3),
        (E.InternalServerError, 3),
    ),
    Row("400", [faults.status(400, times=None)], (E.BadRequestError, 1), (E.BadRequestError, 1)),
    Row("401", [faults.status(401, times=None)], (E.AuthenticationError, 1), (E.AuthenticationError, 1)),
    Row(
        "402",
        [faults.status(402, times=None)],
        (E.InsufficientBalanceError, 1),
        (E.InsufficientBalanceError, 1),
    ),
    Row(
        "500 with an HTML body",
        [faults.status(500, body="<html>oops</html>", content_type="text/html", times=None)],
        (E.InternalServerError, 3),
        (E.InternalServerError, 3),
    ),
    Row("reset before headers, then 200", [faults.reset()], (None, 2), (None, 2)),
    Row("reset mid-body", [faults.reset(3)], (E.APIConnectionError, 1), (E.StreamInterruptedError, 1)),
    Row(
        "accept, never answer",
        [faults.hang(times=None)],
        (E.RequestTimeoutError, 3),
        (E.RequestTimeoutError, 3),
        "read",
    ),
    Row(
        "headers, then stall",
        [faults.stall(3)],
        (E.RequestTimeoutError, 1),
        (E.RequestTimeoutError, 1),
        "read",
    ),
    Row(
        "keep-alives forever after chunks",
        [faults.keepalive_forever(3)],
        (None, 1),
        (E.RequestTimeoutError, 1),
        "idle",
    ),
    Row(
        "truncated JSON / truncated stream",
        [faults.truncated_json(), faults.truncate(3)],
        (E.ResponseValidationError, 1),
        (E.StreamTruncatedError, 1),
    ),
    Row(
        "200 with a non-JSON body",
        [faults.non_json(times=2)],
        (E.ResponseValidationError, 1),
        (E.ResponseValidationError, 1),
    ),
    Row(
        "oversized event / body",
        [faults.oversized_event(200_000, times=2)],
        (E.ResponseTooLargeError, 1),
        (E.ResponseTooLargeError, 1),
    ),
    Row("slow trickle, 1 byte per 10 ms", [faults.trickle(0.01, limit=30, times=2)], (None, 1), (None, 1)),
    Row("malformed chunk", [faults.malformed_chunk(3)], (None, 1), (E.StreamInterruptedError, 1)),
    Row("error object mid-stream", [faults.error_event(3)], (None, 1), (E.RateLimitError, 1)),
]


def make_core(url: str, deadline: float = 0.4) -> AtomaCore:
    return AtomaCore(
        TOKEN,
        url,
        timeouts=Timeouts(read=deadline, idle=deadline),
        retry_config=RetryConfig(backoff=BackoffStrategy(10, 50, 2.0, 10_000)),
        max_body_size=100_000,
        max_event_size=100_000,
    )


async def stream_result(core: AtomaCore) -> Result[ChatCompletionResponse, E.AtomaError]:
    res = await chat_create_stream(core, STREAM_CHAT)
    return res if isinstance(res, Err) else await res.value.collect()


def check(
    res: Result[ChatCompletionResponse, E.AtomaError],
    expected: tuple[type[BaseException] | None, int],
    phase: str | None,
) -> None:
    cls, attempts = expected
    if cls is None:
        assert isinstance(res, Ok), res
        assert res.value.choices[0].message.content == REPLY
        assert res.value.meta is not None and res.value.meta.attempts == attempts
        return
    assert isinstance(res, Err), res
    assert type(res.error) is cls, repr(res.error)
    assert res.error.attempts == attempts
    if isinstance(res.error, E.RequestTimeoutError):
        assert res.error.phase == phase


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
async def test_matrix(sandbox: Sandbox, row: Row) -> None:
    async with make_core(sandbox.url) as core:
        sandbox.script(*row.script[:1])
        check(await chat_create(core, STREAM_CHAT), row.create, row.phase)
        sandbox.reset()
        sandbox.script(*row.script[-1:])
        check(await stream_result(core), row.stream, row.phase)
        assert acquired_connections(core) == 0


async def test_connection_refused() -> None:
    async with make_core(f"http://127.0.0.1:{free_port()}") as core:
        check(await chat_create(core, STREAM_CHAT), (E.APIConnectionError, 3), None)
        check(await stream_result(core), (E.APIConnectionError, 3), None)


STREAM_FAULTS = [
    faults.reset(2),
    faults.truncate(2),
    faults.malformed_chunk(2),
    faults.error_event(2),
    faults.status(503),
    faults.status(429, headers={"Retry-After": "0"}),
    faults.reset(),
    faults.delay(0.05),
    faults.keepalive_forever(2),
]


async def test_200_concurrent_streams_with_random_faults(sandbox: Sandbox) -> None:
    rng = random.Random(1234)
    scripted = [rng.choice(STREAM_FAULTS) if rng.random() < 0.3 else faults.delay(0) for _ in range(200)]
    sandbox.script(*scripted)
    # 200 streams on one loop: a busy machine can delay an event past a tight deadline, which
    # would be a spurious (typed, allowed) error; only keepalive_forever must meet the idle one.
    async with make_core(sandbox.url, deadline=2.0) as core:
        results = await asyncio.gather(*(stream_result(core) for _ in range(200)))
        assert acquired_connections(core) == 0
    oks = [r for r in results if isinstance(r, Ok)]
    errs = [r.error for r in results if isinstance(r, Err)]
    assert all(r.value.choices[0].message.content == REPLY for r in oks)
    allowed = (E.StreamInterruptedError, E.StreamTruncatedError, E.RateLimitError, E.RequestTimeoutError)
    assert all(isinstance(e, allowed) for e in errs), [repr(e) for e in errs]
    fatal = sum(
        f.kind in ("reset", "truncate", "malformed_chunk", "error_event", "keepalive_forever")
        and f.after_chunks is not None
        for f in scripted
    )
    assert len(errs) == fatal
    assert len(oks) == 200 - fatal
