"""The files of `atoma batch`: batch-input lines in (read lazily, bad lines reported by number),
batch-output lines out (whole lines only), and what an earlier run already wrote (resume).

Output lines have OpenAI's batch-output shape: `{"id", "custom_id", "response": {"status_code",
"request_id", "body"} or null, "error": null or {"code", "message"}}`. A failed request has an
`error`; `response` is there too when the server answered (its status and error body).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator

import msgspec

from atoma_core.errors import APIError, InvalidRequestError

from ._batch import BatchRequest, check_item, shown

if TYPE_CHECKING:
    from ._batch import BatchResult

__all__ = [
    "MAX_OUTPUT_LINE",
    "BatchOutputFile",
    "InputLines",
    "OutputError",
    "WrittenResults",
    "batch_output_line",
    "max_output_line",
    "read_batch_output",
]

FSYNC_INTERVAL = 1.0  # seconds: written lines survive a crash of the machine, not just of us
MiB = 1 << 20


def max_output_line(max_body_size: int) -> int:
    """The longest line OUT may hold: one answer of up to `max_body_size` bytes written out,
    error text included, with room to spare. Reading OUT for a resume holds no more than this."""
    return 2 * max_body_size + MiB


MAX_OUTPUT_LINE = max_output_line(64 * MiB)  # with the core's default body limit


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
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested too deeply to be
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


def read_batch_output(path: str, max_line: int = MAX_OUTPUT_LINE) -> WrittenResults:
    """Read OUT (if any): the custom_ids in it. A last line without its newline is what a crash
    left half-written: it is cut off, so the file ends with a whole line again. OUT must be a
    regular file (a FIFO or a device would be read for ever) and its lines at most `max_line`
    bytes; anything else is an `InvalidRequestError` saying which line of OUT and why."""
    done = WrittenResults(set())
    try:  # O_NONBLOCK: a FIFO put there meanwhile must not block the open
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except FileNotFoundError:
        return done
    with open(fd, "r+b") as file:  # closed on the way out, after a possible truncate
        _check_regular(file, path)
        offset = 0
        for number, line in _lines(file, max_line):
            if not line.endswith(b"\n"):
                if len(line) > max_line:
                    raise _corrupt(number, path, f"longer than {max_line} bytes")
                file.truncate(offset)
                break
            offset += len(line)
            if not line.strip():
                continue
            try:
                written = _written.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise _corrupt(number, path, str(exc)) from None
            except RecursionError:
                raise _corrupt(number, path, "JSON nested too deeply") from None
            done.ids.add(written.custom_id)
            if written.error is not None:
                done.failed += 1
                status = written.response.status_code if written.response is not None else None
                done.failures.add((status, written.error.code))
    return done


def _lines(file: BinaryIO, max_line: int) -> Iterator[tuple[int, bytes]]:
    """Numbered lines, each read with at most `max_line + 1` bytes held (a longer one comes
    back cut, without its newline)."""
    number = 0
    while True:
        line = file.readline(max_line + 1)
        if not line:
            return
        number += 1
        yield number, line


def _corrupt(number: int, path: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"OUT line {number}: not a batch output line ({why}) in {path}; "
        "give a new OUT, or the one an earlier `atoma batch` run wrote"
    )


def _check_regular(file: BinaryIO, path: str) -> None:
    if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
        raise InvalidRequestError(f"OUT {path} is not a regular file")


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
                except RecursionError:
                    self._bad(number, "not JSON (nested too deeply)")
                    continue
                except InvalidRequestError as exc:
                    self._bad(number, str(exc))
                    continue
                first = first_seen.setdefault(request.custom_id, number)
                if first != number:
                    duplicate = shown(request.custom_id)
                    self._bad(number, f"duplicate custom_id {duplicate} (first on line {first})")
                elif request.custom_id in self.done:
                    self.skipped += 1
                else:
                    yield request


class OutputError(OSError):
    """Writing OUT failed (a full disk, a file-size limit): `filename` is OUT's path."""


class BatchOutputFile:
    """OUT, opened to append: `with BatchOutputFile(path) as out: out.write(line)`.

    Each line goes out in one `write` as soon as it is ready, so a crash loses at most the
    requests in flight; a write that fails part way (a full disk, a file-size limit) is cut back
    off, so OUT never holds half a line of ours. The file is fsynced at most once a second, and
    when closed. Failures are `OutputError`s naming OUT."""

    def __init__(self, path: str) -> None:
        self.path = path
        # O_NONBLOCK: opening a FIFO for writing would wait for a reader; a regular file ignores it.
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):
            os.close(self._fd)
            self._fd = -1
            raise OutputError(0, "not a regular file", path)
        self._synced = time.monotonic()

    def write(self, line: bytes) -> None:
        """Append one line (bytes ending in a newline, e.g. from `batch_output_line`) in one write."""
        view = memoryview(line)
        try:
            start = os.fstat(self._fd).st_size  # O_APPEND: this line starts at the end
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            if len(view) < len(line):  # part of it went out: cut it off again
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, start)
            raise OutputError(exc.errno, exc.strerror, self.path) from None
        now = time.monotonic()
        if now - self._synced >= FSYNC_INTERVAL:
            self._synced = now
            self._sync(self._fd)

    def _sync(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            raise OutputError(exc.errno, exc.strerror, self.path) from None

    def __enter__(self) -> BatchOutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """fsync and close (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                self._sync(fd)
            finally:
                os.close(fd)
