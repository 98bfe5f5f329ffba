"""The `atoma models`, `atoma embed` commands and the shared `--timeout` option, run as subprocesses."""

from __future__ import annotations

import json

from atoma_core.testing import Sandbox, faults

from .test_cli import arun, assert_clean, run


def test_models_lists_ids() -> None:
    done = run("models", "--sandbox")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sandbox-model\n"
    assert_clean(done.stderr)


def test_models_json() -> None:
    done = run("models", "--sandbox", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"][0]["id"] == "sandbox-model"


def test_embed_prints_one_vector_per_text() -> None:
    done = run("embed", "first text", "second", "--dimensions", "3", "--sandbox")
    assert done.returncode == 0, done.stderr
    vectors = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(vectors) == 2 and all(len(v) == 3 and all(isinstance(x, float) for x in v) for v in vectors)
    assert "usage: 3 prompt tokens" in done.stderr
    assert_clean(done.stderr)


def test_embed_reads_lines_from_stdin() -> None:
    done = run("embed", "--sandbox", stdin="one\n\ntwo three\n")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2


def test_embed_without_text_is_a_usage_error() -> None:
    done = run("embed", "--sandbox", stdin="")
    assert done.returncode == 2 and "no text to embed" in done.stderr


async def test_embed_on_the_wire(sandbox: Sandbox) -> None:
    code, _out, err = await arun("embed", "hello", "--model", "e5", "--server-url", sandbox.url)
    assert code == 0, err
    assert sandbox.requests[-1].json == {"model": "e5", "input": ["hello"]}


async def test_models_error_exit_code(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(404))
    code, out, err = await arun("models", "--server-url", sandbox.url)
    assert code == 4 and out == "" and "NotFoundError" in err


async def test_timeout_gives_up_with_exit_6(sandbox: Sandbox) -> None:
    sandbox.script(faults.hang())
    code, _out, err = await arun("chat", "hi", "--timeout", "0.5", "--server-url", sandbox.url)
    assert code == 6, err
    assert "RequestTimeoutError" in err and "total" in err


def test_timeout_must_be_positive() -> None:
    done = run("chat", "hi", "--timeout", "0", "--sandbox")
    assert done.returncode == 2 and "must be a positive number" in done.stderr
