"""The Server-Sent Events decoder: bytes in, events out, no HTTP.

Follows the WHATWG event-stream rules: CR, LF and CRLF line ends (a CRLF split across reads
included), a leading UTF-8 BOM, comments, `field:value` with one optional space, multi-line data
joined with LF, `event`/`id`/`retry`. Works on bytes, so UTF-8 split across reads is harmless.

Hot path: a message event whose block is exactly `data: <payload>` comes out as the payload bytes
themselves, with no object built around it. Anything else comes out as an `SSEEvent`.
"""

from __future__ import annotations

__all__ = ["EventTooLarge", "SSEDecoder", "SSEEvent"]

_BOM = b"\xef\xbb\xbf"


class EventTooLarge(Exception):
    """An event grew past the decoder's `max_event_size`."""


class SSEEvent:
    """A dispatched event that is not a plain `data:`-only message."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, event: str, data: bytes, id: str | None, retry: int | None) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSEEvent) and (self.event, self.data, self.id, self.retry) == (
            other.event,
            other.data,
            other.id,
            other.retry,
        )

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data!r}, id={self.id!r}, retry={self.retry!r})"


class SSEDecoder:
    """Incremental decoder. `feed(bytes)` returns the events completed by those bytes.

    Each item is either `bytes` (the data of a message event with no other field set) or an
    `SSEEvent` (with `message_ids=False`, a message event is its data even when it has an `id` or
    `retry`; both are still recorded on the decoder). Data is buffered as a list of pieces and
    joined once per event, so a huge event arriving in small reads costs linear time;
    `max_event_size` bounds the memory it may take.
    """

    __slots__ = (
        "_at_start",
        "_head",
        "_parts",
        "_size",
        "_skip_lf",
        "_tail_lf",
        "last_event_id",
        "max_event_size",
        "message_ids",
        "retry",
    )

    def __init__(self, max_event_size: int = 64 * 1024 * 1024, message_ids: bool = True) -> None:
        self.max_event_size = max_event_size
        self.message_ids = message_ids
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self._parts: list[bytes] = []  # bytes after the last block terminator, LF-normalised
        self._size = 0
        self._tail_lf = False  # the buffered bytes end with LF (half of a terminator)
        self._skip_lf = False  # the previous read ended with CR: drop one LF at the next start
        self._at_start = True  # a BOM may still come
        self._head = b""

    def feed(self, data: bytes) -> list[bytes | SSEEvent]:
        if self._at_start:
            data = self._head + data
            if len(data) < 3 and _BOM.startswith(data):
                self._head = data  # could still be the start of a BOM
                return []
            self._head = b""
            self._at_start = False
            if data.startswith(_BOM):
                data = data[3:]
        if 13 in data:  # CR. An int needle: `bytes in bytes` costs an exception round trip
            data = self._normalise(data)
        elif self._skip_lf:
            self._skip_lf = False
            if data.startswith(b"\n"):
                data = data[1:]
        if not data:
            return []
        out: list[bytes | SSEEvent] = []
        start = 0
        if self._parts:
            start = self._finish_buffered(data, out)
            if start < 0:
                return out  # still unfinished
        # Blocks end with a blank line. Found with the one-byte search (memchr), not a search
        # for b"\n\n" (several times slower: it is most of a naive split's cost per event).
        find = data.find
        size = len(data)
        if size - start > self.max_event_size:  # only then may one block be too large
            self._check_sizes(data[start:])
        while True:
            lf = find(10, start)  # 10 is LF
            if lf < 0 or lf + 1 == size:
                break  # the rest is an unfinished block
            if data[lf + 1] == 10:  # a one-line block: the common `data: <payload>`
                if data.startswith(b"data: ", start):
                    out.append(data[start + 6 : lf])
                elif lf > start and data[start] != 58:  # 58 is ":": skip comments
                    self._parse_block(data[start:lf], out)
                start = lf + 2
            else:
                end = find(b"\n\n", lf)
                if end < 0:
                    break
                self._parse_block(data[start:end], out)
                start = end + 2
        if start < size:
            tail = data[start:]
            self._parts.append(tail)
            self._size = len(tail)
            self._tail_lf = tail[-1] == 10
            if self._size > self.max_event_size:
                raise EventTooLarge(f"an event exceeded {self.max_event_size} bytes")
        else:
            self._size = 0
            self._tail_lf = False
        return out

    def _finish_buffered(self, data: bytes, out: list[bytes | SSEEvent]) -> int:
        """The block buffered from earlier reads, ended by this one: decoded into `out` from the
        buffered pieces and the start of `data` alone (a read that cut an event in two is not
        copied whole again for one event). Returns where the rest of `data` starts, or -1 when
        the block does not end in it (then `data` is buffered too)."""
        if self._tail_lf and data[0] == 10:
            start = 1  # the blank line that ends the buffered block
        else:
            end = data.find(b"\n\n")
            if end < 0:
                self._parts.append(data)
                self._size += len(data)
                self._tail_lf = data[-1] == 10
                if self._size > self.max_event_size:
                    raise EventTooLarge(f"an event exceeded {self.max_event_size} bytes")
                return -1
            start = end + 2
        self._parts.append(data[:start])
        block = b"".join(self._parts)
        self._parts.clear()
        self._parse_block(block[:-2], out)  # at most one per read: the general parser will do
        return start

    def _check_sizes(self, data: bytes) -> None:
        for block in data.split(b"\n\n")[:-1]:
            if len(block) > self.max_event_size:
                raise EventTooLarge(f"an event exceeded {self.max_event_size} bytes")

    def pending(self) -> bool:
        """Whether bytes of an unfinished event are buffered (at EOF, WHATWG discards them)."""
        return bool(self._parts)

    def _normalise(self, data: bytes) -> bytes:
        if self._skip_lf and data.startswith(b"\n"):
            data = data[1:]
        self._skip_lf = data.endswith(b"\r")
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _parse_block(self, block: bytes, out: list[bytes | SSEEvent]) -> None:
        """The general case: a block of lines, each empty line (or the block's end) dispatches."""
        if len(block) > self.max_event_size:
            raise EventTooLarge(f"an event exceeded {self.max_event_size} bytes")
        data: list[bytes] = []
        event = ""
        event_id: str | None = None
        retry: int | None = None
        for line in [*block.split(b"\n"), b""]:
            if not line:
                if data:
                    payload = b"\n".join(data)
                    plain = (event_id is None and retry is None) or not self.message_ids
                    if event in ("", "message") and plain:
                        out.append(payload)
                    else:
                        out.append(SSEEvent(event or "message", payload, event_id, retry))
                data, event, event_id, retry = [], "", None, None  # no data: nothing dispatched
                continue
            if line[0] == 58:  # comment
                continue
            name, sep, value = line.partition(b":")
            if sep and value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace")
            elif name == b"id":
                if b"\0" not in value:
                    event_id = value.decode("utf-8", "replace")
                    self.last_event_id = event_id
            elif name == b"retry" and value.isdigit():
                retry = int(value)
                self.retry = retry
