"""The event-stream decoder alone: bytes in, events out (WHATWG rules), plus property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atoma_core._sse import EventTooLarge, SSEDecoder, SSEEvent


def decode(*pieces: bytes, max_event_size: int = 1 << 26) -> list[bytes | SSEEvent]:
    decoder = SSEDecoder(max_event_size)
    out: list[bytes | SSEEvent] = []
    for piece in pieces:
        out += decoder.feed(piece)
    return out


def test_plain_data_events_come_out_as_bytes() -> None:
    assert decode(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [b'{"a":1}', b"[DONE]"]


def test_comments_are_skipped() -> None:
    stream = b": keep-alive\n\n" * 1000 + b"data: x\n\n" + b": keep-alive\n\n"
    assert decode(stream) == [b"x"]
    assert decode(b": comment\ndata: y\n\n") == [b"y"]


def test_field_forms() -> None:
    assert decode(b"data:no-space\n\n") == [b"no-space"]
    assert decode(b"data:  two spaces\n\n") == [b" two spaces"]
    assert decode(b"data\n\n") == [b""]
    assert decode(b"data: a\ndata: b\ndata:\n\n") == [b"a\nb\n"]
    assert decode(b"unknown: 1\n\n") == []
    assert decode(b"event: ping\n\n") == []  # no data: nothing dispatched


def test_named_events_id_and_retry() -> None:
    out = decode(b"event: error\ndata: {}\nid: 7\nretry: 1500\n\nid: a\0b\ndata: z\n\nretry: x\ndata: w\n\n")
    assert out == [SSEEvent("error", b"{}", "7", 1500), b"z", b"w"]
    decoder = SSEDecoder()
    decoder.feed(b"id: 9\nretry: 20\ndata: q\n\n")
    assert (decoder.last_event_id, decoder.retry) == ("9", 20)


def test_without_message_ids_a_message_with_an_id_is_its_data() -> None:
    stream = b"id: 1\ndata: a\n\nevent: message\nretry: 5\ndata: b\n\nevent: error\nid: 2\ndata: c\n\n"
    decoder = SSEDecoder(message_ids=False)
    assert decoder.feed(stream) == [b"a", b"b", SSEEvent("error", b"c", "2", None)]
    assert (decoder.last_event_id, decoder.retry) == ("2", 5)
    assert decode(stream)[0] == SSEEvent("message", b"a", "1", None)  # the default keeps them


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_line_endings(end: bytes) -> None:
    stream = b"data: a" + end + b"data: b" + end + end + b": c" + end + end + b"data: d" + end + end
    assert decode(stream) == [b"a\nb", b"d"]


def test_crlf_split_across_reads() -> None:
    assert decode(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == [b"a", b"b"]
    assert decode(b"data: a\r", b"\r") == [b"a"]


def test_bom_only_at_start_even_split() -> None:
    assert decode(b"\xef\xbb\xbfdata: a\n\n") == [b"a"]
    assert decode(b"\xef", b"\xbb", b"\xbfdata: a\n\n") == [b"a"]
    assert decode(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [b"a"]  # a later BOM is a bad field name


def test_utf8_split_across_reads() -> None:
    raw = "data: héllo → 世界\n\n".encode()
    assert decode(*[raw[i : i + 1] for i in range(len(raw))]) == ["héllo → 世界".encode()]


def test_unterminated_event_at_eof_is_pending_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == [b"a"]
    assert decoder.pending()


def test_huge_event_in_small_reads() -> None:
    payload = b"x" * (4 * 1024 * 1024)
    stream = b"data: " + payload + b"\n\n"
    pieces = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    assert decode(*pieces) == [payload]


def test_event_size_limit() -> None:
    with pytest.raises(EventTooLarge):
        decode(b"data: " + b"x" * 2000, b"x" * 2000, max_event_size=1000)
    with pytest.raises(EventTooLarge):
        decode(b"data: " + b"x" * 2000 + b"\n\n", max_event_size=1000)
    assert decode(b"data: " + b"x" * 900 + b"\n\n", max_event_size=1000) == [b"x" * 900]


def test_every_one_or_two_cuts_give_the_same_events() -> None:
    """A block buffered from earlier reads is finished from the start of the next read alone:
    whatever the cuts, the same events (a comment line leading a block with data, a named event,
    multi-line data, a lone comment, an LF that ends a block at the very start of a read)."""
    stream = b": c\ndata: x\n\nevent: e\ndata: y\n\ndata: a\ndata: b\n\n: ka\n\ndata: z\n\n"
    whole = decode(stream)
    assert whole == [b"x", SSEEvent("e", b"y", None, None), b"a\nb", b"z"]
    for i in range(len(stream) + 1):
        assert decode(stream[:i], stream[i:]) == whole, i
        for j in range(i, len(stream) + 1):
            assert decode(stream[:i], stream[i:j], stream[j:]) == whole, (i, j)


def test_an_event_too_large_is_caught_across_reads() -> None:
    event = b"data: " + b"x" * 1500 + b"\n\n"
    for cut in (10, 700, len(event) - 2, len(event) - 1):
        with pytest.raises(EventTooLarge):
            decode(event[:cut], event[cut:], max_event_size=1000)


# ------------------------------------------------------------------ properties

_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)
_event = st.fixed_dictionaries(
    {
        "event": st.one_of(st.none(), st.sampled_from(["message", "error", "update"])),
        "id": st.one_of(st.none(), st.text("abc123", min_size=1, max_size=4)),
        "data": st.lists(_text, min_size=1, max_size=3),
        "comment": st.booleans(),
        "space": st.booleans(),
    }
)


def _serialise(events: list[dict[str, object]], end: bytes) -> bytes:
    out = b""
    for ev in events:
        if ev["comment"]:
            out += b": keep-alive" + end + end
        sep = b": " if ev["space"] else b":"
        if ev["event"] is not None:
            out += b"event" + sep + str(ev["event"]).encode() + end
        if ev["id"] is not None:
            out += b"id" + sep + str(ev["id"]).encode() + end
        for line in ev["data"]:  # type: ignore[attr-defined]
            # Without the space, a value's own leading space would be eaten (WHATWG strips one).
            line_sep = b": " if line.startswith(" ") else sep
            out += b"data" + line_sep + line.encode() + end
        out += end
    return out


def _expected(events: list[dict[str, object]]) -> list[bytes | SSEEvent]:
    out: list[bytes | SSEEvent] = []
    for ev in events:
        data = "\n".join(ev["data"]).encode()  # type: ignore[arg-type]
        if ev["event"] in (None, "message") and ev["id"] is None:
            out.append(data)
        else:
            out.append(SSEEvent(str(ev["event"] or "message"), data, ev["id"], None))  # type: ignore[arg-type]
    return out


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(_event, max_size=6),
    end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    bom=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_any_split_and_any_line_ending_give_the_same_events(
    events: list[dict[str, object]], end: bytes, bom: bool, cuts: list[int]
) -> None:
    stream = (b"\xef\xbb\xbf" if bom else b"") + _serialise(events, end)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]
    assert decode(stream) == _expected(events)
    assert decode(*pieces) == _expected(events)
    assert decode(_serialise(events, b"\n")) == decode(*pieces)
