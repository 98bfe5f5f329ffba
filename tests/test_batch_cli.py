"""`atoma batch IN -o OUT`, run as a subprocess against the sandbox: bad lines, the output shape,
resuming after SIGKILL and Ctrl-C with no duplicates; the files and the progress display."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from atoma_core import Err, errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs import BatchResult
from atoma_funcs import _batch_progress as progress_module
from atoma_funcs._batch_files import batch_output_line, read_batch_output
from atoma_funcs._batch_progress import Progress, Totals

from .test_cli import PYTHON, _env, arun, assert_clean, run


def line(i: int, **extra: Any) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": f"item {i}"}]}
    return json.dumps(
        {"custom_id": f"id-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body, **extra}
    )


def write_input(path: Path, count: int) -> None:
    path.write_text("".join(line(i) + "\n" for i in range(count)))


def output(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")  # never a torn line
    return [json.loads(row) for row in text.splitlines()]


def test_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [
        line(1),
        "{not json",
        "",
        json.dumps({"url": "/v1/chat/completions", "body": {}}),
        line(1),
        json.dumps({"custom_id": "img", "url": "/v1/images/generations", "body": {}}),
        json.dumps({"custom_id": "emb", "url": "/v1/embeddings", "body": {"model": "e", "input": "a b"}}),
        "[1, 2]",
    ]
    src.write_text("\n".join(rows) + "\n")
    done = run("batch", str(src), "-o", str(out), "--sandbox")
    assert done.returncode == 2, done.stderr
    reports = [row for row in done.stderr.splitlines() if row.startswith("line ")]
    assert reports == [
        "line 2: not JSON (JSON is malformed: object keys must be strings (byte 1))",
        "line 4: no custom_id (a non-empty string)",
        "line 5: duplicate custom_id 'id-1' (first on line 1)",
        "line 6: unknown url '/v1/images/generations' (batch runs /v1/chat/completions, /v1/completions, /v1/confidential/completions, /v1/embeddings)",
        "line 8: not a JSON object but list",
    ]
    assert sorted(row["custom_id"] for row in output(out)) == ["emb", "id-1"]
    assert "batch done: 2 requests, 2 succeeded, 0 failed | 5 bad lines" in done.stderr
    assert_clean(done.stderr)


async def test_output_shape_exit_code_and_a_rerun_skipping_everything(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(src, 3)
    sandbox.script(faults.status(400))  # the first request is refused (not retried)
    code, _, err = await arun(
        "batch", str(src), "-o", str(out), "--server-url", sandbox.url, "--concurrency", "1"
    )
    assert code == 4, err
    rows = {row["custom_id"]: row for row in output(out)}
    refused, ok = rows["id-0"], rows["id-1"]
    assert refused["response"]["status_code"] == 400
    assert refused["response"]["body"] == {
        "error": {"code": "REQUEST_ERROR", "message": "Request error: bad request"}
    }
    assert refused["error"] == {
        "code": "REQUEST_ERROR",
        "message": "400 REQUEST_ERROR: Request error: bad request",
    }
    assert set(ok) == {"id", "custom_id", "response", "error"} and ok["error"] is None
    assert ok["id"].startswith("batch_req_") and ok["id"] != refused["id"]
    assert ok["response"]["status_code"] == 200 and ok["response"]["request_id"] == "chatcmpl-000001"
    assert ok["response"]["body"]["choices"][0]["message"]["content"] == "You said: item 1"
    assert "usage: 10 prompt + 8 completion = 18 tokens" in err
    # Rerun: everything is in OUT already; the earlier failure still decides the exit code.
    code, _, err = await arun("batch", str(src), "-o", str(out), "--server-url", sandbox.url)
    assert code == 4, err
    assert "batch done: 0 requests" in err and "3 skipped, already in OUT (1 failed there)" in err
    assert len(sandbox.requests) == 3 and len(output(out)) == 3


async def _start(src: Path, out: Path, url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *PYTHON,
        "batch",
        str(src),
        "-o",
        str(out),
        "--server-url",
        url,
        "--concurrency",
        "8",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=_env("sk-test-secret-token-123"),
    )


def _lines_in(out: Path) -> int:
    return out.read_bytes().count(b"\n") if out.exists() else 0


async def _wait_for_lines(out: Path, count: int) -> None:
    for _ in range(1500):
        if _lines_in(out) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} lines in {out}")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
async def test_a_stopped_run_resumes_with_no_duplicates(
    sandbox: Sandbox, tmp_path: Path, how: signal.Signals
) -> None:
    n = 300
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(src, n)
    sandbox.script(faults.delay(0.01, times=None))
    proc = await _start(src, out, sandbox.url)
    await _wait_for_lines(out, 60)
    proc.send_signal(how)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    if how == signal.SIGINT:
        assert (
            proc.returncode == 130 and "batch interrupted (rerun the same command to resume)" in err.decode()
        )
        assert_clean(err.decode())
    else:
        with out.open("ab") as f:  # what a crash in the middle of a write could leave
            f.write(b'{"id": "batch_req_x", "custom_id": "id-')
    written = out.read_bytes().count(b"\n")
    assert 60 <= written < n

    code, _, err2 = await arun(
        "batch", str(src), "-o", str(out), "--server-url", sandbox.url, "--concurrency", "8"
    )
    assert code == 0, err2
    rows = output(out)
    assert sorted(row["custom_id"] for row in rows) == sorted(f"id-{i}" for i in range(n))
    assert all(row["error"] is None for row in rows)
    sent = Counter(r.json["messages"][0]["content"] for r in sandbox.requests)
    assert len(sent) == n
    assert sum(c - 1 for c in sent.values()) <= 2 * 8  # sent twice: in flight, or done but not yet written


async def test_missing_input_and_same_file_are_usage_errors(tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    code, _, err = await arun("batch", str(src), "-o", str(out), "--server-url", "http://127.0.0.1:9")
    assert code == 2 and "cannot read" in err and not out.exists()
    write_input(src, 1)
    code, _, err = await arun("batch", str(src), "-o", str(src), "--server-url", "http://127.0.0.1:9")
    assert code == 2 and "OUT must not be IN" in err


def test_limits_must_be_positive() -> None:
    done = run("batch", "in.jsonl", "-o", "out.jsonl", "--rpm", "0")
    assert done.returncode == 2 and "must be a positive number" in done.stderr


# ------------------------------------------------------------------ the files


def test_a_torn_last_line_is_cut_off_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    whole = (
        b'{"id":"a","custom_id":"x","response":null,"error":{"code":"APIConnectionError","message":"m"}}\n'
    )
    out.write_bytes(whole + b'{"id":"b","custom_id":"y","resp')
    done = read_batch_output(str(out))
    assert done.ids == {"x"} and done.failed == 1 and done.failures == {(None, "APIConnectionError")}
    assert out.read_bytes() == whole


def test_a_corrupt_line_in_out_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"custom_id":"x"}\nnot json\n')
    with pytest.raises(errors.InvalidRequestError, match="line 2: not a batch output line"):
        read_batch_output(str(out))


def test_output_line_of_a_failure_without_an_answer() -> None:
    result = BatchResult("x", Err(errors.APIConnectionError("cannot connect to 127.0.0.1:9")), 3)
    row = json.loads(batch_output_line(result))
    assert row["response"] is None
    assert row["error"] == {"code": "APIConnectionError", "message": "cannot connect to 127.0.0.1:9"}


# ------------------------------------------------------------------ what stderr shows


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _failure() -> BatchResult:
    return BatchResult("x", Err(errors.APIConnectionError("down")), 1)


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    src = tmp_path / "in.jsonl"
    write_input(src, 10)
    err, totals = Terminal(), Totals()
    progress = Progress(err, totals, str(src), already=0)
    for _ in range(4):
        totals.add(_failure())
        progress.step()
    progress.note("line 7: not JSON")
    progress.close()
    text = err.getvalue()
    compact = text.replace(" ", "")
    assert "4/10" in compact or "4req" in compact  # with the total, once the input is counted
    assert "line 7: not JSON\n" in text


def test_plain_progress_lines_without_tqdm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "_tqdm", lambda: None)
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL", 0.0)
    err, totals = Terminal(), Totals()
    progress = Progress(err, totals, str(tmp_path / "in.jsonl"), already=0)
    totals.add(_failure())
    progress.step()
    assert err.getvalue().startswith("atoma: batch: 1 done, 1 failed, 0 bad lines,")


def test_nothing_but_the_summary_when_stderr_is_not_a_terminal() -> None:
    err, totals = io.StringIO(), Totals()
    progress = Progress(err, totals, "unused", already=0)
    totals.add(_failure())
    progress.step()
    progress.close()
    assert err.getvalue() == ""
    assert totals.summary().startswith("batch done: 1 requests, 0 succeeded, 1 failed | usage: 0 prompt")


# ------------------------------------------------------------------ hostile files (issue 26)


def run_limited(*args: str, limits: dict[int, int]) -> subprocess.CompletedProcess[str]:
    """`run`, with resource limits set in the child (RLIMIT_AS keeps a runaway read from taking
    the machine's memory; RLIMIT_FSIZE plays a full disk)."""
    import resource

    def limit() -> None:
        for which, value in limits.items():
            resource.setrlimit(which, (value, value))

    return subprocess.run(
        [*PYTHON, *args], capture_output=True, text=True, env=_env(), timeout=60, preexec_fn=limit
    )


def test_a_device_as_out_is_refused_not_read_for_ever(tmp_path: Path) -> None:
    """`-o /dev/full` was read for the resume until 2 GB, then MemoryError."""
    import resource

    src = tmp_path / "in.jsonl"
    write_input(src, 1)
    done = run_limited(
        "batch", str(src), "-o", "/dev/full", "--sandbox", limits={resource.RLIMIT_AS: 1 << 30}
    )
    assert done.returncode == 2, done.stderr
    assert "atoma: error: OUT /dev/full is not a regular file" in done.stderr
    assert_clean(done.stderr)


async def test_a_fifo_as_out_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    src, fifo = tmp_path / "in.jsonl", tmp_path / "out.fifo"
    write_input(src, 1)
    os.mkfifo(fifo)
    code, _, err = await arun("batch", str(src), "-o", str(fifo), "--server-url", "http://127.0.0.1:9")
    assert code == 2 and f"OUT {fifo} is not a regular file" in err, err


def test_reading_out_holds_at_most_one_bounded_line(tmp_path: Path) -> None:
    """A 3 MB line in OUT is refused after reading a bounded prefix of it, not held whole, and
    never cut off as if a crash had torn it (with or without its newline)."""
    import tracemalloc

    out = tmp_path / "out.jsonl"
    good = b'{"id":"a","custom_id":"x","response":null,"error":null}\n'
    for ending in (b"\n", b""):
        out.write_bytes(good + b'{"custom_id":"' + b"y" * 3_000_000 + b'"}' + ending)
        tracemalloc.start()
        try:
            with pytest.raises(errors.InvalidRequestError, match=r"^OUT line 2: .*longer than 100000 bytes"):
                read_batch_output(str(out), max_line=100_000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1_000_000
        assert out.stat().st_size > 3_000_000  # not truncated


def test_a_corrupt_line_in_out_is_a_usage_error_naming_the_line(tmp_path: Path) -> None:
    """It was a traceback with exit 1 ("a bug")."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(src, 1)
    out.write_bytes(b'{"id":"a","custom_id":"x","response":null,"error":null}\nnot json\n')
    done = run("batch", str(src), "-o", str(out), "--sandbox")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("atoma: error: OUT line 2: not a batch output line"), done.stderr
    assert str(out) in done.stderr
    assert_clean(done.stderr)
    deep = b"[" * 200_000 + b"]" * 200_000  # nested too deeply to decode, in a field skipped
    out.write_bytes(b'{"custom_id":"x","extra":' + deep + b"}\n")
    done = run("batch", str(src), "-o", str(out), "--sandbox")
    assert (
        done.returncode == 2 and "OUT line 1: not a batch output line (JSON nested too deeply)" in done.stderr
    )
    assert_clean(done.stderr)


def test_a_write_error_names_out_and_leaves_no_torn_line(tmp_path: Path) -> None:
    """A file-size limit (a full disk alike) on OUT printed `atoma: error: <IN>: File too large`
    and left half a line behind."""
    import resource

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(src, 20)
    limit = 1_000  # a few output lines: the third or so is cut by the limit part way
    done = run_limited(
        "batch",
        str(src),
        "-o",
        str(out),
        "--sandbox",
        "--concurrency",
        "1",
        limits={resource.RLIMIT_FSIZE: limit},
    )
    assert done.returncode == 2, done.stderr
    assert f"atoma: error: {out}: File too large" in done.stderr
    assert f"{src}:" not in done.stderr
    rows = output(out)  # whole lines only
    assert 1 <= len(rows) < 20 and out.stat().st_size < limit
    assert_clean(done.stderr)


def test_a_bad_line_is_echoed_cut_saying_how_long_it_was(tmp_path: Path) -> None:
    """Two bad lines with 12 MB values put 25 MB on stderr."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    huge = "u" * 1_000_000
    rows = [
        json.dumps({"custom_id": "a", "url": huge, "body": {}}),
        json.dumps({"custom_id": "b", "method": huge, "url": "/v1/chat/completions", "body": {}}),
        json.dumps({"custom_id": huge, "url": "/v1/embeddings", "body": {"model": "e", "input": "x"}}),
        json.dumps({"custom_id": huge, "url": "/v1/embeddings", "body": {"model": "e", "input": "x"}}),
    ]
    src.write_text("\n".join(rows) + "\n")
    done = run("batch", str(src), "-o", str(out), "--sandbox")
    assert done.returncode == 2, done.stderr[:1000]
    assert len(done.stderr) < 3_000
    reports = [row for row in done.stderr.splitlines() if row.startswith("line ")]
    assert len(reports) == 3
    for report in reports:
        assert "(1000000 characters)" in report and len(report) < 400
    assert_clean(done.stderr)
