"""The `atoma` CLI, run as a subprocess: against `--sandbox`, and against a test sandbox (`--server-url`)
for what must be inspected on the wire or scripted to fail."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from atoma_core import errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs._cli import DEFAULT_MODEL, exit_code_for

from .conftest import TOKEN, free_port

# ResourceWarning as an error: a leaked socket or stream in the CLI shows up on stderr. (Not -X dev:
# asyncio's debug mode logs slow callbacks, such as first imports, to stderr.)
PYTHON = [sys.executable, "-W", "error::ResourceWarning", "-m", "atoma_funcs"]


def _env(token: str | None = None) -> dict[str, str]:
    skip = ("ATOMASDK_", "PYTHONDEVMODE", "PYTHONASYNCIODEBUG", "PYTHONWARNINGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["PYTHONIOENCODING"] = "utf-8"
    if token is not None:
        env["ATOMASDK_BEARER_AUTH"] = token
    return env


def run(*args: str, token: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (blocking: only for `--sandbox` runs, which serve themselves)."""
    return subprocess.run(
        [*PYTHON, *args], capture_output=True, text=True, env=_env(token), input=stdin, timeout=60
    )


async def arun(*args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop, so a sandbox in this test's loop can answer it."""
    proc = await asyncio.create_subprocess_exec(
        *PYTHON,
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=_env(token),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def assert_clean(stderr: str) -> None:
    for bad in ("Traceback", "Exception ignored", "Warning", "Unclosed", "unclosed"):
        assert bad not in stderr, stderr


# ------------------------------------------------------------------ success paths


def test_streams_the_reply_and_prints_usage_on_stderr() -> None:
    res = run("chat", "hello cli", "--sandbox")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "You said: hello cli\n"
    assert "usage: 5 prompt + 4 completion = 9 tokens" in res.stderr
    assert "time to first token" in res.stderr
    assert "tokens/s" in res.stderr
    assert_clean(res.stderr)


def test_make_demo_command() -> None:
    res = run("chat", "Tell me about Atoma in one sentence.", "--sandbox")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "You said: Tell me about Atoma in one sentence."
    assert "usage:" in res.stderr


def test_json_output_parses() -> None:
    res = run("chat", "as json", "--sandbox", "--json")
    assert res.returncode == 0, res.stderr
    body = json.loads(res.stdout)  # stdout holds the JSON and nothing else
    assert body["object"] == "chat.completion"
    assert body["model"] == DEFAULT_MODEL
    assert body["choices"][0]["message"]["content"] == "You said: as json"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 4
    assert "usage:" in res.stderr
    assert_clean(res.stderr)


def test_no_stream() -> None:
    res = run("chat", "whole answer", "--sandbox", "--no-stream")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "You said: whole answer\n"
    assert "usage: 5 prompt + 4 completion = 9 tokens" in res.stderr
    assert "time to first token" not in res.stderr
    assert_clean(res.stderr)


def test_no_stream_json() -> None:
    res = run("chat", "both", "--sandbox", "--no-stream", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["choices"][0]["message"]["content"] == "You said: both"


def test_prompt_from_stdin() -> None:
    res = run("chat", "-", "--sandbox", stdin="piped prompt\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "You said: piped prompt\n"


def test_token_limit_is_noted() -> None:
    res = run("chat", "a b c d", "--sandbox", "--max-tokens", "2")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "You said:\n"
    assert "finish_reason=length" in res.stderr


async def test_options_on_the_wire(sandbox: Sandbox) -> None:
    code, _out, err = await arun(
        "chat", "wire", "--server-url", sandbox.url, "--system", "be brief",
        "--max-tokens", "50", "--temperature", "0.2", "--model", "my-model",
    )  # fmt: skip
    assert code == 0, err
    sent = sandbox.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"  # from ATOMASDK_BEARER_AUTH
    assert sent.json["model"] == "my-model"
    assert sent.json["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "wire"},
    ]
    assert sent.json["max_tokens"] == 50
    assert sent.json["temperature"] == 0.2
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}


async def test_no_stream_on_the_wire(sandbox: Sandbox) -> None:
    code, _, err = await arun("chat", "once", "--server-url", sandbox.url, "--no-stream")
    assert code == 0, err
    assert sandbox.requests[-1].json["stream"] is False
    assert sandbox.requests[-1].json["model"] == DEFAULT_MODEL


async def test_verbose_logs_without_the_token_or_the_prompt(sandbox: Sandbox) -> None:
    code, out, err = await arun("chat", "very private words", "--server-url", sandbox.url, "-v")
    assert code == 0, err
    assert "atoma DEBUG chat_completions_create_stream attempt 1: POST" in err
    assert "HTTP 200" in err
    assert TOKEN not in out + err
    assert "private" not in err


async def test_retry_count_is_reported(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, headers={"Retry-After": "0"}))
    code, out, err = await arun("chat", "again", "--server-url", sandbox.url)
    assert code == 0, err
    assert out == "You said: again\n"
    assert "2 attempts" in err


# ------------------------------------------------------------------ failures and exit codes


def test_connection_error_exit_code_and_one_line() -> None:
    res = run("chat", "hi", "--server-url", f"http://127.0.0.1:{free_port()}")
    assert res.returncode == 6
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("atoma: error: APIConnectionError: cannot connect to 127.0.0.1:")
    assert "(after 3 attempts)" in lines[0]
    assert_clean(res.stderr)


async def test_auth_error_exit_code_with_a_hint(sandbox: Sandbox) -> None:
    code, out, err = await arun("chat", "hi", "--server-url", sandbox.url, token=None)
    assert code == 3
    assert err.strip() == (
        "atoma: error: AuthenticationError: 401 AUTH_ERROR: Authentication failed - set ATOMASDK_BEARER_AUTH"
    )
    code, out, err = await arun("chat", "hi", "--server-url", sandbox.url, token="sk-wrong-secret")
    assert code == 3
    assert "sk-wrong-secret" not in out + err
    assert "set ATOMASDK_BEARER_AUTH" not in err


@pytest.mark.parametrize(
    ("fault", "code", "text"),
    [
        (faults.status(400), 4, "BadRequestError: 400 REQUEST_ERROR"),
        (faults.status(402), 4, "InsufficientBalanceError: 402 BALANCE_ERROR"),
        (faults.status(403), 3, "PermissionDeniedError: 403"),
        (faults.status(429, headers={"Retry-After": "0"}, times=None), 5, "RateLimitError: 429"),
        (faults.status(503, headers={"Retry-After": "0"}, times=None), 5, "InternalServerError: 503"),
        (faults.truncate(after_chunks=3), 7, "StreamTruncatedError"),
        (faults.reset(after_chunks=3), 7, "StreamInterruptedError"),
        (faults.error_event(after_chunks=2, code="TOO_MANY_REQUESTS"), 5, "RateLimitError"),
        (faults.non_json(), 8, "ResponseValidationError"),
    ],
)
async def test_api_error_exit_codes(sandbox: Sandbox, fault: faults.Fault, code: int, text: str) -> None:
    sandbox.script(fault)
    rc, _out, err = await arun("chat", "hello there", "--server-url", sandbox.url)
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("atoma: error: ") and text in lines[0]
    assert_clean(err)


async def test_mid_stream_failure_keeps_the_partial_text(sandbox: Sandbox) -> None:
    sandbox.script(faults.truncate(after_chunks=3))
    rc, out, err = await arun("chat", "hello there", "--server-url", sandbox.url)
    assert rc == 7
    assert out == "You said:\n"  # what arrived, then the line is ended before the error
    assert "StreamTruncatedError" in err


def test_usage_errors_exit_2() -> None:
    for args in (
        ["chat", "hi", "--max-tokens", "0"],
        ["chat", "hi", "--temperature", "warm"],
        ["chat", "hi", "--sandbox", "--server-url", "http://x"],
        ["nope"],
        [],
    ):
        res = run(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert "usage:" in res.stderr
        assert_clean(res.stderr)


@pytest.mark.parametrize(
    ("url", "token", "text"),
    [
        ("http://user:hunter2@127.0.0.1:9", "sk-x", "invalid server_url: it contains credentials"),
        ("ftp://127.0.0.1:9", "sk-x", "invalid server_url: it must start with http:// or https://"),
        ("http://127.0.0.1:9", "sk-\u00e9", "invalid ATOMASDK_BEARER_AUTH: the token contains non-ASCII"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(url: str, token: str, text: str) -> None:
    res = run("chat", "hi", "--server-url", url, token=token)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(f"atoma: error: InvalidRequestError: {text}")
    assert len(res.stderr.strip().splitlines()) == 1 and "hunter2" not in res.stderr
    assert_clean(res.stderr)


def test_empty_prompt_is_a_usage_error() -> None:
    res = run("chat", "-", "--sandbox", stdin="")
    assert res.returncode == 2
    assert res.stderr.startswith("atoma: error: no prompt")


def test_help_documents_the_exit_codes() -> None:
    res = run("chat", "--help")
    assert res.returncode == 0
    for line in ("2    bad usage", "3    authentication", "4    other API errors", "5    server busy",
                 "6    connection failure or timeout", "7    the stream broke", "130  interrupted"):  # fmt: skip
        assert line in res.stdout
    assert "ATOMASDK_BEARER_AUTH" in res.stdout
    assert "--sandbox" in res.stdout and "--no-stream" in res.stdout and "--json" in res.stdout


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("atoma")
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    res = subprocess.run(
        [str(script), "chat", "from the script", "--sandbox"], capture_output=True, text=True, env=_env()
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "You said: from the script\n"


async def test_ctrl_c_stops_cleanly() -> None:
    async with Sandbox(chunk_delay=0.2) as slow:
        proc = await asyncio.create_subprocess_exec(
            *PYTHON,
            "chat",
            "one two three four five six seven eight",
            "--server-url",
            slow.url,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=_env(),
        )
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.read(3), 30)  # tokens arrive while it runs
        assert first == b"You"
        assert proc.returncode is None
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130, err
    text = err.decode()
    assert text.strip().endswith("atoma: interrupted")
    assert_clean(text)
    assert (first + out).decode().endswith("\n")
    assert "usage:" not in text


def _waiting_on_a_pipe(pid: int) -> bool:
    """The process sleeps in a pipe read (its stdin): Linux's /proc/<pid>/wchan says so."""
    try:
        return "pipe" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


@pytest.mark.skipif(
    not Path("/proc/self/wchan").exists(), reason="needs /proc/<pid>/wchan to see that the CLI waits on stdin"
)
async def test_ctrl_c_while_reading_stdin_prints_no_traceback() -> None:
    """`atoma chat --sandbox` with no prompt reads stdin; Ctrl-C while it waits there (the pipe
    still open) is one line and exit 130, like Ctrl-C anywhere else."""
    proc = await asyncio.create_subprocess_exec(
        *PYTHON, "chat", "--sandbox",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
    )  # fmt: skip
    try:
        for _ in range(600):  # up to 30 s for a slow start
            if _waiting_on_a_pipe(proc.pid) or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert _waiting_on_a_pipe(proc.pid), "the CLI never waited on stdin"
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)  # closes stdin only after the signal
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, err
    assert err.decode() == "atoma: interrupted\n"
    assert out == b""


def test_make_demo_ends_with_what_to_do_next() -> None:
    """`make demo` (with this environment's Python, nothing installed) streams, then says what next."""
    bin_dir = str(Path(sys.executable).parent)
    done = subprocess.run(
        ["make", "-s", "demo", "STAMP=", f"BIN={bin_dir}"],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, env=_env(), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "You said: Tell me about Atoma in one sentence."
    assert lines[-1].startswith("Next: ") and "ATOMASDK_BEARER_AUTH" in lines[-1], lines
    assert len(lines) == 2


# ------------------------------------------------------------------ the mapping itself


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidRequestError("x"), 2),
        (errors.AuthenticationError("x", status_code=401), 3),
        (errors.PermissionDeniedError("x", status_code=403), 3),
        (errors.BadRequestError("x", status_code=400), 4),
        (errors.UnprocessableEntityError("x", status_code=422), 4),
        (errors.TooEarlyError("x", status_code=425), 4),
        (errors.APIError("x", status_code=418), 4),
        (errors.RateLimitError("x", status_code=429), 5),
        (errors.InternalServerError("x", status_code=502), 5),
        (errors.APIConnectionError("x"), 6),
        (errors.RequestTimeoutError("x", phase="idle"), 6),
        (errors.StreamInterruptedError("x"), 7),
        (errors.StreamTruncatedError("x"), 7),
        (errors.ResponseValidationError("x"), 8),
        (errors.ResponseTooLargeError("x", limit=1), 8),
        (errors.UnexpectedClientError("x"), 1),
    ],
)
def test_exit_code_for(error: errors.AtomaError, code: int) -> None:
    assert exit_code_for(error) == code


async def test_closed_stdout_exits_quietly() -> None:
    """`atoma chat ... | head -c 3`: the reader goes away mid-stream; no traceback, exit 141."""
    script = '"$@" | head -c 3; echo " rc=${PIPESTATUS[0]}"'
    async with Sandbox(chunk_delay=0.05) as slow:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", script, "bash", *PYTHON, "chat", "one two three four five six seven eight",
            "--server-url", slow.url,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_env(),
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert out.decode() == "You rc=141\n"
    assert err == b""
