"""The files of `atoma batch`: batch-input lines in (read lazily, bad lines reported by number),
batch-output lines out (whole lines only), and what an earlier run already wrote (resume).

Output lines have OpenAI's batch-output shape: `{"id", "custom_id", "response": {"status_code",
"request_id", "body"} or null, "error": null or {"code", "message"}}`. A failed request has an
`error`; `response` is there too when the server answered (its status and error body).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

import msgspec

from atoma_core.errors import APIError, InvalidRequestError

from ._batch import BatchRequest, check_item

if TYPE_CHECKING:
    from ._batch import BatchResult

__all__ = ["BatchOutputFile", "InputLines", "WrittenResults", "batch_output_line", "read_batch_output"]

FSYNC_INTERVAL = 1.0  # seconds: written lines survive a crash of the machine, not just of us


class _Response(msgspec.Struct):
    status_code: int
    request_id: str | None
    body: Any


class _Error(msgspec.Struct):
    code: str
    message: str


class _OutputLine(msgspec.Struct):
    id: str
    custom_id: str
    response: _Response | None
    error: _Error | None


class _Status(msgspec.Struct):
    status_code: int | None = None


class _Written(msgspec.Struct):
    """What a resume needs from a line already in OUT."""

    custom_id: str
    response: _Status | None = None
    error: _Error | None = None


_encoder = msgspec.json.Encoder()
_written = msgspec.json.Decoder(_Written)


def _error_body(error: APIError) -> Any:
    try:
        return msgspec.json.decode(error.body)
    except msgspec.DecodeError:
        return {"error": {"message": error.body}}


def batch_output_line(result: BatchResult) -> bytes:
    """The batch-output line of one result, newline included."""
    outcome = result.result
    if outcome.ok:
        value = outcome.value
        meta = getattr(value, "meta", None)
        response = _Response(200, getattr(meta, "request_id", None), value)
        error = None
    else:
        failure = outcome.error
        response = None
        if isinstance(failure, APIError):
            response = _Response(failure.status_code, failure.request_id, _error_body(failure))
        code = failure.code if isinstance(failure, APIError) and failure.code else type(failure).__name__
        error = _Error(code, str(failure))
    line = _OutputLine("batch_req_" + os.urandom(12).hex(), result.custom_id, response, error)
    return _encoder.encode(line) + b"\n"


class WrittenResults(msgspec.Struct):
    """The custom_ids OUT already holds; how many of those lines are failures, and of which
    kinds: (HTTP status or None, error code)."""

    ids: set[str]
    failed: int = 0
    failures: set[tuple[int | None, str]] = msgspec.field(default_factory=set)


def read_batch_output(path: str) -> WrittenResults:
    """Read OUT (if any): the custom_ids in it. A last line without its newline is what a crash
    left half-written: it is cut off, so the file ends with a whole line again."""
    done = WrittenResults(set())
    try:
        file = open(path, "r+b")  # noqa: SIM115 - closed below, after a possible truncate
    except FileNotFoundError:
        return done
    with file:
        offset = 0
        for number, line in enumerate(file, 1):
            if not line.endswith(b"\n"):
                file.truncate(offset)
                break
            offset += len(line)
            if not line.strip():
                continue
            try:
                written = _written.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise InvalidRequestError(f"{path} line {number}: not a batch output line") from None
            done.ids.add(written.custom_id)
            if written.error is not None:
                done.failed += 1
                status = written.response.status_code if written.response is not None else None
                done.failures.add((status, written.error.code))
    return done


class InputLines:
    """The valid, not yet done batch-input lines of a file, read one at a time. Bad lines go to
    `report(number, why)`; lines whose custom_id OUT already holds are counted as `skipped`."""

    def __init__(self, path: str, done: set[str], report: Callable[[int, str], None]) -> None:
        self.path = path
        self.done = done
        self.report = report
        self.skipped = 0
        self.bad = 0

    def _bad(self, number: int, why: str) -> None:
        self.bad += 1
        self.report(number, why)

    def __iter__(self) -> Iterator[BatchRequest]:
        first_seen: dict[str, int] = {}
        with open(self.path, "rb") as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    request = check_item(msgspec.json.decode(line))
                except msgspec.DecodeError as exc:
                    self._bad(number, f"not JSON ({exc})")
                    continue
                except InvalidRequestError as exc:
                    self._bad(number, str(exc))
                    continue
                first = first_seen.setdefault(request.custom_id, number)
                if first != number:
                    self._bad(number, f"duplicate custom_id {request.custom_id!r} (first on line {first})")
                elif request.custom_id in self.done:
                    self.skipped += 1
                else:
                    yield request


class BatchOutputFile:
    """OUT, opened to append: `with BatchOutputFile(path) as out: out.write(line)`.

    Each line goes out in one `write` as soon as it is ready, so a crash loses at most the
    requests in flight and never leaves half a line of ours behind; the file is fsynced at most
    once a second, and when closed."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._synced = time.monotonic()

    def write(self, line: bytes) -> None:
        """Append one line (bytes ending in a newline, e.g. from `batch_output_line`) in one write."""
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]
        now = time.monotonic()
        if now - self._synced >= FSYNC_INTERVAL:
            os.fsync(self._fd)
            self._synced = now

    def __enter__(self) -> BatchOutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """fsync and close (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
