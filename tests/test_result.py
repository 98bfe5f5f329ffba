"""Ok / Err behaviour, including pattern matching and unwrap raising the typed error."""

from __future__ import annotations

import pytest

from atoma_core import Err, Ok, Result, errors
from atoma_core.result import UnwrapError


def parse(text: str) -> Result[int, errors.AtomaError]:
    return Ok(int(text)) if text.isdigit() else Err(errors.InvalidRequestError(f"not a number: {text}"))


def test_ok_api() -> None:
    res = parse("41")
    assert res.ok is True
    assert res.unwrap() == 41
    assert res.unwrap_or(0) == 41
    assert res.map(lambda v: v + 1) == Ok(42)
    assert repr(res) == "Ok(41)"
    assert hash(Ok(1)) == hash(Ok(1))


def test_err_api() -> None:
    res = parse("x")
    assert res.ok is False
    assert res.unwrap_or(7) == 7
    assert res.map(lambda v: v + 1) is res
    with pytest.raises(errors.InvalidRequestError, match="not a number: x"):
        res.unwrap()
    with pytest.raises(UnwrapError):
        Err("plain").unwrap()
    assert Err("a") == Err("a") and Err("a") != Ok("a")


def test_match_and_narrowing() -> None:
    seen = []
    for text in ("5", "x"):
        match parse(text):
            case Ok(value=v):
                seen.append(v)
            case Err(error=errors.InvalidRequestError() as e):
                seen.append(e.message)
    assert seen == [5, "not a number: x"]
    res = parse("3")
    if res.ok:
        assert res.value == 3
    else:  # pragma: no cover
        pytest.fail(res.error.message)
