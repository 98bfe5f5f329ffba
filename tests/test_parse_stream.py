"""chat_parse_stream against the sandbox (snapshots after every chunk, collect() validated, the
typed failures, stream errors, confidential), and the incremental partial-JSON parser alone."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atoma_core import AtomaCore, ChatCompletionStream, Err, errors
from atoma_core.models import ChatCompletionChunk, ParsedChatCompletion
from atoma_core.testing import Sandbox, faults
from atoma_funcs import ChatParseStream, chat_parse_stream, confidential_chat_parse_stream
from atoma_funcs._partial_json import PartialJSON

from .conftest import CHAT, acquired_connections


class Person(msgspec.Struct):
    name: str
    age: int
    tags: list[str]


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "tool"])
async def test_snapshots_grow_and_collect_validates(core: AtomaCore, mode: str) -> None:
    snapshots = []
    async with (await chat_parse_stream(core, CHAT, Person, mode=mode)).unwrap() as stream:  # type: ignore[arg-type]
        assert isinstance(stream, ChatParseStream) and stream.snapshot is None
        async for chunk in stream:
            assert isinstance(chunk, ChatCompletionChunk)
            snapshots.append(copy.deepcopy(stream.snapshot))
        result = await stream.collect()
    parsed = result.unwrap()
    assert isinstance(parsed, ParsedChatCompletion)
    assert parsed.choices[0].message.parsed == Person("hello there", 0, ["hello there"])
    assert snapshots[-1] == {"name": "hello there", "age": 0, "tags": ["hello there"]}
    dicts = [s for s in snapshots if isinstance(s, dict)]
    names = [s.get("name") for s in dicts]
    assert any(n and n != "hello there" and "hello there".startswith(n) for n in names)  # open strings
    sizes = [len(json.dumps(s)) for s in dicts]
    assert sizes == sorted(sizes) and len(set(sizes)) > 5  # they grow
    assert stream.usage is not None and stream.metrics.chunks == len(snapshots)
    assert stream.closed and acquired_connections(core) == 0


async def test_partial_is_a_parsed_completion_before_the_end(core: AtomaCore) -> None:
    async with (await chat_parse_stream(core, CHAT, Person)).unwrap() as stream:
        async for _ in stream:
            break
        assert (
            isinstance(stream.partial, ParsedChatCompletion)
            and stream.partial.choices[0].message.parsed is None
        )


async def test_typed_failures_at_collect(core: AtomaCore, sandbox: Sandbox) -> None:
    async with (await chat_parse_stream(core, {**CHAT, "max_tokens": 5}, Person)).unwrap() as stream:
        result = await stream.collect()
    assert isinstance(result, Err) and isinstance(result.error, errors.LengthFinishReasonError)
    assert result.error.content == '{"name": "hello ther'
    sandbox.script(faults.reply('{"name": "Ann", "age": "x", "tags": []}'))
    async with (await chat_parse_stream(core, CHAT, Person)).unwrap() as stream:
        result = await stream.collect()
        assert stream.snapshot == {"name": "Ann", "age": "x", "tags": []}  # lenient: not validated
    assert isinstance(result, Err) and isinstance(result.error, errors.OutputValidationError)
    assert result.error.message == "Expected `int`, got `str` - at `$.age`"


async def test_stream_errors_keep_the_snapshot(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.reset(after_chunks=6))
    async with (await chat_parse_stream(core, CHAT, Person)).unwrap() as stream:
        with pytest.raises(errors.StreamInterruptedError) as caught:
            async for _ in stream:
                pass
        assert stream.snapshot == {"name": "hello ther"}
    assert caught.value.partial.choices[0].message.content == '{"name": "hello ther'
    assert acquired_connections(core) == 0


async def test_bad_type_and_server_errors(core: AtomaCore, sandbox: Sandbox) -> None:
    error = (await chat_parse_stream(core, CHAT, object)).error  # type: ignore[union-attr]
    assert isinstance(error, errors.InvalidRequestError)
    sandbox.script(faults.status(429, headers={"Retry-After": "0"}))
    async with (await chat_parse_stream(core, CHAT, Person)).unwrap() as stream:  # retried, like any call
        assert (await stream.collect()).unwrap().choices[0].message.parsed is not None
    assert len(sandbox.requests) == 2
    assert sandbox.requests[-1].json["stream"] is True and sandbox.requests[-1].json["response_format"]


async def test_confidential_parse_stream(core: AtomaCore, sandbox: Sandbox) -> None:
    pytest.importorskip("cryptography")
    async with (await confidential_chat_parse_stream(core, CHAT, Person)).unwrap() as stream:
        seen = [copy.deepcopy(stream.snapshot) async for _ in stream]
        parsed = (await stream.collect()).unwrap()
    assert parsed.choices[0].message.parsed == Person("hello there", 0, ["hello there"])
    assert {"name": "hello there"} in seen
    assert sandbox.requests[-1].path == "/v1/confidential/chat/completions"


def test_a_parse_stream_is_a_chat_stream_class_sibling() -> None:
    assert not issubclass(ChatParseStream, ChatCompletionStream)  # a sibling on the one EventStream
    assert ChatParseStream.__mro__[1].__name__ == "EventStream"


# ---------------------------------------------------------------- the partial parser

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    value=JSON, cuts=st.lists(st.integers(1, 9), min_size=1, max_size=40), indent=st.sampled_from([None, 1])
)
def test_any_chunking_ends_in_the_value(value: Any, cuts: list[int], indent: int | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=indent is None)
    parser = PartialJSON()
    at = 0
    for cut in cuts * (len(text) // max(sum(cuts), 1) + 1):
        parser.feed(text[at : at + cut])
        json.dumps(parser.value())  # always plain data
        at += cut
        if at >= len(text):
            break
    if value is None or isinstance(value, (int, float)):
        return  # a bare number or literal is complete only when something follows it
    assert parser.value() == value


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (['{"a": "hel'], {"a": "hel"}),
        (['{"a": [1, 2', ", 3"], {"a": [1, 2]}),  # 3 may go on: not shown yet
        (['{"a": [1, 2, 3]', ', "b'], {"a": [1, 2, 3]}),  # a key is shown once complete
        (['{"a": tr'], {}),
        (['{"a": "x\\'], {"a": "x"}),  # an escape cut in half
        (['{"a": "\\u00', "e9"], {"a": "é"}),
        (['{"a": "\\u00e9 \\"q\\""}'], {"a": 'é "q"'}),
        (["Sure, here it is:\n```json\n", '{"a": 1}', "\n```"], {"a": 1}),
        (['{"a": }', '{"b": 2}'], {}),  # malformed: stops
        (['[{"a": 1}, {"b": [{}, []]}]'], [{"a": 1}, {"b": [{}, []]}]),
        (['"just a str'], "just a str"),
    ],
)
def test_partial_values(pieces: list[str], expected: Any) -> None:
    parser = PartialJSON()
    for piece in pieces:
        parser.feed(piece)
    assert parser.value() == expected


def test_value_is_live_and_reads_only_what_changed() -> None:
    parser = PartialJSON()
    parser.feed('{"a": ["x')
    first = parser.value()
    parser.feed('y", "z"]}')
    assert first is parser.value() and first == {"a": ["xy", "z"]}


@settings(max_examples=300, deadline=None)
@given(
    value=JSON, cuts=st.lists(st.integers(1, 9), min_size=1, max_size=40), indent=st.sampled_from([None, 1])
)
def test_each_chunk_shows_what_the_text_so_far_shows(value: Any, cuts: list[int], indent: int | None) -> None:
    """The snapshot does not depend on where the chunks were cut: after each chunk it is what
    the whole text so far gives in one piece (escapes, numbers, keys cut anywhere)."""
    text = json.dumps(value, indent=indent, ensure_ascii=indent is None)
    parser, fed = PartialJSON(), PartialJSON()
    at = 0
    for cut in cuts * (len(text) // max(sum(cuts), 1) + 1):
        piece = text[at : at + cut]
        at += cut
        shown = copy.deepcopy(parser.take(piece))
        fed.feed(piece)
        assert shown == PartialJSON().take(text[:at]) == fed.value()
        if at >= len(text):
            break


# Escapes (short, unicode, a surrogate pair, in keys too), numbers of each form, literals,
# nesting: every cut into two pieces, and from each a few cuts into three.
EDGES = r'{"q\"\\k\u00e9": ["a\"b\\c\nd\u00e9\ud83d\ude00\u2028\/", -12.5e+3, 0, 1.25, -7, 1E-9, true, false, null, {}, []]}'


@pytest.mark.parametrize("first", range(1, len(EDGES)))
def test_escapes_and_numbers_cut_anywhere(first: int) -> None:
    expected = json.loads(EDGES)
    for second in sorted({first, (first + 3) % len(EDGES), (first * 7) % len(EDGES), len(EDGES)}):
        if second < first:
            continue
        parser = PartialJSON()
        for at, end in ((0, first), (first, second), (second, len(EDGES))):
            assert parser.take(EDGES[at:end]) == PartialJSON().take(EDGES[:end])
        assert parser.value() == expected


@pytest.mark.parametrize(
    ("pieces", "shown"),
    [
        (['{"a": "x\\', 'n y"}'], [{"a": "x"}, {"a": "x\n y"}]),  # an escape cut after its backslash
        (['["\\u', "00", "e9", 'z"]'], [[""], [""], ["é"], ["éz"]]),  # a unicode escape cut twice
        (
            ['{"k\\"', 'ey": 1, "n": -1', "2.5e", "+1}"],
            [{}, {'k"ey': 1}, {'k"ey': 1}, {'k"ey': 1, "n": -125.0}],
        ),
        (['{"a": tr', "ue, ", '"b": nu', "ll}"], [{}, {"a": True}, {"a": True}, {"a": True, "b": None}]),
        (
            ['{"a": "he', "ll", 'o", "b', '": "', "w"],
            [
                {"a": "he"},
                {"a": "hell"},
                {"a": "hello"},
                {"a": "hello", "b": ""},
                {"a": "hello", "b": "w"},
            ],
        ),
    ],
)
def test_open_strings_and_tokens_cut_by_chunks(pieces: list[str], shown: list[Any]) -> None:
    parser = PartialJSON()
    assert [copy.deepcopy(parser.take(piece)) for piece in pieces] == shown


def test_a_surrogate_pair_cut_between_its_halves() -> None:
    parser = PartialJSON()
    parser.take('["\\ud83d')  # what the high half alone shows is left open here
    assert parser.take('\\ude00"]') == ["\U0001f600"]


def test_deep_nesting_is_not_recursive() -> None:
    depth = 2000
    text = '{"a": [' * depth + "1" + "]}" * depth
    parser = PartialJSON()
    for at in range(0, len(text), 3):
        parser.take(text[at : at + 3])
    value = parser.value()
    for _ in range(depth):
        value = value["a"][0]
    assert value == 1


def test_feed_shows_the_open_string_when_read() -> None:
    parser = PartialJSON()
    parser.feed('{"a": ["x')
    parser.feed("yz")
    assert parser.value() == {"a": ["xyz"]}
    parser.feed('\\"w')
    assert parser.value() == {"a": ['xyz"w']}
