"""Configuration a careless caller (or a leaked secret) can give: every wrong value is an
`InvalidRequestError`, raised by constructors (also a ValueError) and returned as `Err` by functions,
nothing is sent, no secret is echoed, and the shorthands openai users type mean what they expect."""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec
import pytest

from atoma_core import (
    AtomaCore,
    BackoffStrategy,
    Err,
    Hooks,
    RequestOptions,
    RetryConfig,
    Timeouts,
    errors,
)
from atoma_core.testing import Sandbox, faults
from atoma_funcs import AtomaSDK, chat_create, chat_create_stream

from .conftest import CHAT, TOKEN

PASSWORD = "hunter2-very-secret"
CREDENTIAL_URLS = [
    f"http://user:{PASSWORD}@127.0.0.1:8000",
    f"https://{PASSWORD}@api.atoma.network/v1",
    f"http://user:{PASSWORD}@[::1",  # unparsable too: the credential check must not echo it
]


def refused(call: Any, *args: Any, **kwargs: Any) -> errors.InvalidRequestError:
    """The InvalidRequestError a constructor raises; it must be catchable as ValueError too."""
    with pytest.raises(ValueError) as caught:
        call(*args, **kwargs)
    assert type(caught.value) is errors.InvalidRequestError, caught.value
    return caught.value


def texts_of(error: BaseException) -> str:
    """Everything an error shows: message, repr, and its whole cause/context chain."""
    parts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def err_of(core: AtomaCore, options: Any, sandbox: Sandbox) -> errors.InvalidRequestError:
    """The Err both functions return for bad options; nothing reaches the server."""
    errs = []
    for function in (chat_create, chat_create_stream):
        res = await function(core, CHAT, options)
        assert isinstance(res, Err) and type(res.error) is errors.InvalidRequestError, res
        errs.append(res.error)
    assert sandbox.requests == []
    assert str(errs[0]) == str(errs[1])
    return errs[0]


def test_invalid_request_error_is_also_a_value_error() -> None:
    assert issubclass(errors.InvalidRequestError, ValueError)
    assert issubclass(errors.InvalidRequestError, errors.AtomaError)


# Item 5: credentials in the server URL ----------------------------------------------------------


@pytest.mark.parametrize("url", CREDENTIAL_URLS)
async def test_credentials_in_server_url_are_refused_and_never_echoed(
    url: str,
    core: AtomaCore,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="atoma")
    seen = [refused(AtomaCore, TOKEN, url), refused(RequestOptions, server_url=url)]
    seen.append(refused(AtomaSDK, TOKEN, url))
    monkeypatch.setenv("ATOMASDK_SERVER_URL", url)
    from_env = refused(AtomaCore, TOKEN)
    assert "ATOMASDK_SERVER_URL" in from_env.message
    seen += [from_env, await err_of(core, {"server_url": url}, sandbox)]
    if "[" not in url:
        assert "credentials" in seen[0].message
    for error in seen:
        assert PASSWORD not in texts_of(error)
    assert PASSWORD not in caplog.text


# Item 7: untyped or silently wrong configuration --------------------------------------------------

BAD_URLS = {
    "port 99999": "http://127.0.0.1:99999",
    "port 0": "http://127.0.0.1:0",
    "port not a number": "http://127.0.0.1:abc",
    "port only": ":abc",
    "unclosed IPv6": "http://[::1",
    "bad IPv6": "http://[::g]:80",
    "label over 63": "http://" + "a" * 64 + ".example.com",
    "name over 253": "http://" + ".".join(["a" * 60] * 5),
    "empty label": "http://api..atoma.network",
    "bad host character": "http://api%2eatoma.network",
    "empty": "",
    "query": "https://api.atoma.network?key=1",
    "empty query": "https://api.atoma.network/?",
    "fragment": "https://api.atoma.network/v1#chat",
    "ftp": "ftp://api.atoma.network",
    "no scheme": "localhost:8000",
    "scheme-less host": "api.atoma.network",
    "no host": "http:///v1",
    "CRLF": "http://127.0.0.1:8000/\r\nX: 1",
    "trailing newline": "http://127.0.0.1:8000\n",
    "space": "http://127.0.0.1:8000/a b",
    "not a str": b"http://127.0.0.1",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
async def test_bad_server_urls_are_invalid_request_errors(
    url: Any, core: AtomaCore, sandbox: Sandbox
) -> None:
    for error in (refused(AtomaCore, TOKEN, url), refused(RequestOptions, server_url=url)):
        assert "server_url" in error.message
    assert "server_url" in (await err_of(core, {"server_url": url}, sandbox)).message


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_server_url_never_means_production(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "empty" in refused(AtomaCore, TOKEN, "").message
    monkeypatch.setenv("ATOMASDK_SERVER_URL", value)
    assert "ATOMASDK_SERVER_URL" in refused(AtomaCore, TOKEN).message
    monkeypatch.delenv("ATOMASDK_SERVER_URL")
    assert AtomaCore(TOKEN).server_url == "https://api.atoma.network"  # unset: the default


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://api.atoma.network/v1/", "https://api.atoma.network"),
        ("HTTPS://API.Atoma.Network", "HTTPS://API.Atoma.Network"),
        ("http://127.0.0.1:8000/proxy/", "http://127.0.0.1:8000/proxy"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://my_vllm:8000", "http://my_vllm:8000"),  # container names may have underscores
        ("http://bücher.example", "http://bücher.example"),  # IDNA is the transport's job
        ("http://localhost.:8000", "http://localhost.:8000"),
        ("http://127.0.0.1:", "http://127.0.0.1:"),  # an empty port is the default port
        ("http://h/a@b", "http://h/a@b"),  # an @ in the path is no credential
    ],
)
def test_good_server_urls_are_kept(url: str, normalised: str) -> None:
    assert AtomaCore(TOKEN, url).server_url == normalised
    assert RequestOptions(server_url=url).server_url == url


@pytest.mark.parametrize(
    "token",
    ["tok\r\nX-Injected: 1", "tok\nen", "tok\x00en", "tok\x01en", "tok\x7fen", "tökén", "tok\u2028en"],
    ids=["CRLF", "LF", "NUL", "SOH", "DEL", "non-ASCII", "line separator"],
)
async def test_unsendable_tokens_are_refused(
    token: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = refused(AtomaCore, token, sandbox.url)
    assert "bearer_auth" in error.message and token not in texts_of(error)
    if "\x00" not in token:  # an environment variable cannot hold a NUL
        monkeypatch.setenv("ATOMASDK_BEARER_AUTH", token)
        assert "ATOMASDK_BEARER_AUTH" in refused(AtomaCore, None, sandbox.url).message
        monkeypatch.delenv("ATOMASDK_BEARER_AUTH")

    async def async_token() -> str:
        return token

    for source in (lambda: token, async_token):
        async with AtomaCore(source, sandbox.url) as core:
            for function in (chat_create, chat_create_stream):
                res = await function(core, CHAT)
                assert isinstance(res, Err) and type(res.error) is errors.InvalidRequestError
                assert "bearer_auth" in res.error.message and token not in texts_of(res.error)
    assert sandbox.requests == []


async def test_a_token_callable_returning_no_str_is_an_invalid_request(sandbox: Sandbox) -> None:
    async def nothing() -> None:
        return None

    for source in (lambda: None, lambda: b"sk-bytes", nothing):
        async with AtomaCore(source, sandbox.url) as core:  # type: ignore[arg-type]
            res = await chat_create(core, CHAT)
        assert isinstance(res, Err) and type(res.error) is errors.InvalidRequestError, res
        assert "not a str" in res.error.message
    assert "bearer_auth must be a str" in refused(AtomaCore, 12345, sandbox.url).message
    assert sandbox.requests == []


BAD_HEADERS: dict[str, Any] = {
    "CRLF in name": {"X-Trace\r\nInjected": "1"},
    "LF in name": {"X\nY": "1"},
    "space in name": {"X Trace": "1"},
    "colon in name": {"X-Trace:": "1"},
    "empty name": {"": "1"},
    "non-ASCII name": {"X-Tracé": "1"},
    "CR in value": {"X-Trace": "a\rInjected: 1"},
    "NUL in value": {"X-Trace": "a\x00b"},
    "control in value": {"X-Trace": "a\x1bb"},
    "int value": {"X-Trace": 5},
    "int name": {5: "x"},
    "not a mapping": [("X-Trace", "1")],
}


@pytest.mark.parametrize("headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
async def test_bad_headers_are_invalid_request_errors(
    headers: Any, core: AtomaCore, sandbox: Sandbox
) -> None:
    errs = [refused(AtomaCore, TOKEN, sandbox.url, headers=headers), refused(RequestOptions, headers=headers)]
    errs.append(await err_of(core, {"headers": headers}, sandbox))
    for error in errs:
        assert "Injected" not in texts_of(error)


async def test_good_headers_are_sent(core: AtomaCore, sandbox: Sandbox) -> None:
    headers = {"X-Trace": "a\tb", "X-Title": "Café", "x-odd!#$%&'*+.^_`|~": "1"}
    assert (await chat_create(core, CHAT, RequestOptions(headers=headers))).ok
    sent = sandbox.requests[-1].headers
    assert sent["X-Trace"] == "a\tb" and sent["x-odd!#$%&'*+.^_`|~"] == "1"


# Item 8: wrong option types -----------------------------------------------------------------------


async def test_a_number_for_timeouts_is_connect_and_read_like_openai(sandbox: Sandbox) -> None:
    assert AtomaCore(TOKEN, sandbox.url, timeouts=30).timeouts == Timeouts(connect=30, read=30)
    assert RequestOptions(timeouts=2.5).timeouts == Timeouts(connect=2.5, read=2.5)
    sandbox.script(faults.stall())
    async with AtomaCore(TOKEN, sandbox.url, timeouts=0.3, retry_config=0) as core:
        res = await chat_create(core, CHAT)
        assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError)
        assert res.error.phase == "read"
        assert (await chat_create(core, CHAT, {"timeouts": 5})).ok


async def test_a_number_for_retries_means_max_retries(sandbox: Sandbox) -> None:
    """Before: `retry_config=5` / `retries=3` turned the first 503 into an UnexpectedClientError."""
    busy = faults.status(503, headers={"Retry-After": "0"}, times=None)
    assert AtomaCore(TOKEN, sandbox.url, retry_config=5).retry_config == RetryConfig(max_retries=5)
    assert RequestOptions(retries=3).retries == RetryConfig(max_retries=3)
    async with AtomaCore(TOKEN, sandbox.url, retry_config=2) as core:
        cases: list[tuple[Any, int]] = [(None, 3), (RequestOptions(retries=3), 4), ({"retries": 0}, 1)]
        for options, attempts in cases:
            for function in (chat_create, chat_create_stream):
                sandbox.script(busy)
                res = await function(core, CHAT, options)
                assert isinstance(res, Err) and type(res.error) is errors.InternalServerError, res
                assert res.error.attempts == attempts
                sandbox.reset()


async def test_options_as_a_dict(core: AtomaCore, sandbox: Sandbox) -> None:
    options = {"timeout_ms": 5_000, "headers": {"X-Trace": "dict"}, "extra_body": {"top_k": 3}}
    for function in (chat_create, chat_create_stream):
        res = await function(core, CHAT, options)  # type: ignore[arg-type]
        assert res.ok, res
        if function is chat_create_stream:
            await res.unwrap().aclose()  # type: ignore[attr-defined]
        assert sandbox.requests[-1].headers["X-Trace"] == "dict"
        assert sandbox.requests[-1].json["top_k"] == 3


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"timeout": 5}, "unknown option 'timeout'"),
        ({"max_retries": 3, "retries": 1}, "unknown option 'max_retries'"),
        ({"timeout_ms": "5000"}, "RequestOptions.timeout_ms must be a positive number of milliseconds"),
        ({"retries": -1}, "RequestOptions.retries must be a RetryConfig or a whole number"),
        ({"timeouts": {"read": 5}}, "RequestOptions.timeouts must be a Timeouts or a positive number"),
        ({"extra_body": ["top_k"]}, "RequestOptions.extra_body must be a mapping"),
        (5, "options must be a RequestOptions, a dict of its fields, or None, not int"),
        ("fast", "not str"),
        (Timeouts(), "not Timeouts"),
    ],
)
async def test_bad_options_are_an_err(core: AtomaCore, sandbox: Sandbox, options: Any, fragment: str) -> None:
    assert fragment in (await err_of(core, options, sandbox)).message


BAD_VALUES: dict[str, tuple[Any, dict[str, Any], str]] = {
    # name: (constructor, keyword arguments, fragment of the message)
    "timeouts=-1": (AtomaCore, {"timeouts": -1}, "timeouts must be a Timeouts or a positive number"),
    "timeouts=0": (AtomaCore, {"timeouts": 0}, "timeouts must be"),
    "timeouts=True": (AtomaCore, {"timeouts": True}, "not bool"),
    "timeouts=dict": (AtomaCore, {"timeouts": {"read": 5}}, "not dict"),
    "timeouts='30'": (AtomaCore, {"timeouts": "30"}, "not str"),
    "retry_config=-1": (AtomaCore, {"retry_config": -1}, "retry_config must be a RetryConfig or a whole"),
    "retry_config=2.5": (AtomaCore, {"retry_config": 2.5}, "not 2.5"),
    "retry_config=True": (AtomaCore, {"retry_config": True}, "not bool"),
    "max_body_size=-1": (AtomaCore, {"max_body_size": -1}, "max_body_size must be a whole number of bytes"),
    "max_body_size=0": (AtomaCore, {"max_body_size": 0}, "max_body_size must be"),
    "max_event_size=1.5": (AtomaCore, {"max_event_size": 1.5}, "max_event_size must be"),
    "connection_limit=-1": (AtomaCore, {"connection_limit": -1}, "connection_limit must be"),
    "hooks=dict": (AtomaCore, {"hooks": {}}, "hooks must be a Hooks"),
    "session=str": (AtomaCore, {"session": "aiohttp"}, "session must be an aiohttp.ClientSession"),
    "Timeouts(read=-1)": (Timeouts, {"read": -1}, "Timeouts.read must be a positive number of seconds"),
    "Timeouts(connect=0)": (Timeouts, {"connect": 0}, "Timeouts.connect must be"),
    "Timeouts(total=nan)": (Timeouts, {"total": math.nan}, "Timeouts.total must be"),
    "Timeouts(idle=inf)": (Timeouts, {"idle": math.inf}, "Timeouts.idle must be"),
    "Timeouts(first_token='5')": (Timeouts, {"first_token": "5"}, "not str"),
    "RetryConfig(max_retries=-1)": (RetryConfig, {"max_retries": -1}, "RetryConfig.max_retries must be"),
    "RetryConfig(max_retries='3')": (RetryConfig, {"max_retries": "3"}, "not str"),
    "RetryConfig(strategy=...)": (RetryConfig, {"strategy": "sometimes"}, "'backoff' or 'none'"),
    "RetryConfig(backoff=5)": (RetryConfig, {"backoff": 5}, "RetryConfig.backoff must be a BackoffStrategy"),
    "RetryConfig(status_codes='503')": (RetryConfig, {"status_codes": "503"}, "status_codes"),
    "RetryConfig(status_codes={'503'})": (RetryConfig, {"status_codes": {"503"}}, "status codes"),
    "RetryConfig(status_codes={999})": (RetryConfig, {"status_codes": {999}}, "not 999"),
    "RetryConfig(retry_connection_errors=1)": (RetryConfig, {"retry_connection_errors": 1}, "True or False"),
    "RetryConfig(max_retry_after_ms=-5)": (RetryConfig, {"max_retry_after_ms": -5}, "max_retry_after_ms"),
    "BackoffStrategy(-1)": (BackoffStrategy, {"initial_interval": -1}, "BackoffStrategy.initial_interval"),
    "BackoffStrategy(exponent=0)": (BackoffStrategy, {"exponent": 0}, "BackoffStrategy.exponent"),
    "RequestOptions(timeout_ms='5000')": (RequestOptions, {"timeout_ms": "5000"}, "timeout_ms"),
    "RequestOptions(timeout_ms=-1)": (RequestOptions, {"timeout_ms": -1}, "not -1"),
    "RequestOptions(timeout_ms=0)": (RequestOptions, {"timeout_ms": 0}, "not 0"),
    "RequestOptions(retries=-2)": (RequestOptions, {"retries": -2}, "RequestOptions.retries"),
    "RequestOptions(retries='3')": (RequestOptions, {"retries": "3"}, "not str"),
    "RequestOptions(timeouts=-1)": (RequestOptions, {"timeouts": -1.0}, "RequestOptions.timeouts"),
    "Hooks(before_request=5)": (Hooks, {"before_request": 5}, "Hooks.before_request must be a function"),
}


@pytest.mark.parametrize(("make", "kwargs", "fragment"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_wrong_values_are_refused_at_construction(make: Any, kwargs: dict[str, Any], fragment: str) -> None:
    if make is AtomaCore:
        kwargs = {"bearer_auth": TOKEN, "server_url": "http://127.0.0.1:1", **kwargs}
    assert fragment in refused(make, **kwargs).message


def test_validation_keeps_structs_usable() -> None:
    config = RetryConfig(status_codes=[429, 503])  # type: ignore[arg-type]
    assert config.status_codes == frozenset({429, 503}) and hash(config) == hash(
        RetryConfig(status_codes=frozenset({429, 503}))
    )
    assert msgspec.structs.replace(Timeouts(), total=1.5).total == 1.5
    with pytest.raises(errors.InvalidRequestError):
        msgspec.structs.replace(Timeouts(), total=-1)
    decoded = msgspec.convert({"retries": {"max_retries": 4}, "timeout_ms": 10}, RequestOptions)
    assert decoded.retries == RetryConfig(max_retries=4) and decoded.timeout_ms == 10
    with pytest.raises(msgspec.ValidationError, match=r"Timeouts\.read"):
        msgspec.convert({"timeouts": {"read": -1}}, RequestOptions)
    assert RetryConfig.none().enabled is False and RetryConfig(max_retries=0).enabled is False
