"""Checks of the benchmark harness itself (not of speed):

    .venv/bin/python -m pytest -q benchmarks/test_benchmarks.py

The payloads say what they hold, every new kind of job runs end to end against the real bench
server for the floor and this SDK, the report compares as it says, and the chart draws.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report, run
from benchmarks.payloads import expect, parse_model, render
from benchmarks.plan import FULL, QUICK, Job, jobs
from benchmarks.server_process import ServerProcess


def _decoded(model: str) -> tuple[int, int, int, int]:
    """What the bytes served for `model` hold: events, content chars, completion tokens, bytes."""
    answer = render(parse_model(model))
    if isinstance(answer, bytes):
        body = json.loads(answer)
        return (
            0,
            len(body["choices"][0]["message"]["content"]),
            body["usage"]["completion_tokens"],
            len(answer),
        )
    data = b"".join(answer)
    events = [json.loads(line[6:]) for line in data.split(b"\n\n") if line.startswith(b"data: ")]
    chars = sum(len(e["choices"][0]["delta"].get("content") or "") for e in events if e["choices"])
    return len(events), chars, events[-1]["usage"]["completion_tokens"], len(data)


@pytest.mark.parametrize("cfg", [QUICK, FULL], ids=["quick", "full"])
def test_every_job_serves_what_expect_says(cfg: object) -> None:
    for job in jobs(cfg).values():  # type: ignore[arg-type]
        model = job.model.format(group="g")
        events, chars, tokens, size = _decoded(model)
        assert (events, chars, tokens) == tuple(expect(model)), job.workload
        if job.workload.startswith("body-"):
            target = int(model.rsplit(":", 1)[1])
            assert target <= size < target + 20, (job.workload, size)


def test_sized_deltas_are_exactly_that_long() -> None:
    answer = render(parse_model("bench:stream:40:1:0:4096"))
    assert isinstance(answer, list)
    contents = [json.loads(w[6:])["choices"][0]["delta"]["content"] for w in answer[1:-2]]
    assert {len(c) for c in contents} == {4096}
    assert len(set(contents)) > 1  # consecutive slices, not one string repeated


def test_scaled_jobs_keep_whole_bursts() -> None:
    burst = Job("burst", "burst", 1600, "bench:small", 64, burst=320)
    assert burst.scaled(2).count == 640
    assert burst.scaled(10).count == 320  # never less than one burst
    assert Job("seq", "seq", 1000, "bench:small").scaled(3).count == 333


def test_new_kinds_run_end_to_end_and_decode_what_was_sent() -> None:
    cfg = QUICK._replace(
        counts={**QUICK.counts, "burst": 128, "open-512": 24, "ttft": 5, "body-1m": 1, "delta-4k": 1},
        burst=64,
        concurrency=16,
    )
    todo = [jobs(cfg)[name] for name in ("burst", "delta-4k", "body-1m", "ttft", "open-512")]
    with ServerProcess(sys.executable, run.ROOT) as server:
        for client in ("bare", "atoma"):
            records, _ = run.run_worker(client, todo, server.url, None)
            assert [r.get("error") for r in records] == [None] * len(todo)
            by_workload = {r["workload"]: r for r in records}
            assert by_workload["burst"]["requests"] == 128
            ttft = by_workload["ttft"]
            assert 0 < ttft["ttft_p10_us"] <= ttft["ttft_us"] <= ttft["ttft_p90_us"]
            opened = by_workload["open-512"]
            assert opened["rss_open"] > opened["rss_base"]


def test_confidential_client_opens_every_sealed_answer_of_the_bench_server() -> None:
    """The bench server's node really does the protocol: each answer and event is sealed and the
    SDK opens (and checks) all of them, with the content the plain answer holds."""
    todo = [
        Job("seq", "seq", 4, "bench:small"),
        Job("stream", "stream", 3, "bench:stream:8:1:0"),
        Job("batched", "stream", 2, "bench:stream:40:8:4"),
        Job("ttft", "ttft", 3, "bench:stream:8:1:0"),
    ]
    with ServerProcess(sys.executable, run.ROOT) as server:
        records, _ = run.run_worker("atoma-confidential", todo, server.url, None)
    assert [r.get("error") for r in records] == [None] * len(todo)
    for job, record in zip(todo, records, strict=True):
        want = expect(job.model)
        assert (record["chunks"], record["chars"]) == (want.chunks * job.count, want.chars * job.count)


def test_ttft_phases_prints_each_step_for_each_client() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.ttft_phases", "--count", "3", "--rounds", "1"],
        cwd=run.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rows = {line.split(" | ")[0].strip("| *"): line for line in out.splitlines() if line.startswith("|")}
    assert "bare | atoma | atoma-confidential" in rows["step (median us)"]
    assert rows["TOTAL: call -> first chunk"].count("|") == 5  # a figure for each client
    # steps no mark of the other process can fall between (it is waiting)
    for step in ("seal0 -> seal1", "s_start -> s_read", "s_read -> s_opened", "open0 -> dec0"):
        assert step in rows, step


def test_parts_add_up_to_the_job_in_whole_bursts() -> None:
    seq = Job("seq", "seq", 1000, "bench:small")
    assert [p.count for p in seq.parts(8)] == [125] * 8
    assert [p.count for p in seq._replace(count=10).parts(4)] == [3, 3, 2, 2]
    assert [p.count for p in seq._replace(count=2).parts(8)] == [1, 1]
    burst = Job("burst", "burst", 1600, "bench:small", 64, burst=320)
    assert [p.count for p in burst.parts(8)] == [320] * 5


def test_interleaved_workers_take_turns_and_report_whole_jobs() -> None:
    todo = {client: Job("seq", "seq", 30, "bench:small") for client in ("bare", "atoma")}
    ttft = {client: Job("ttft", "ttft", 9, "bench:stream:8:1:0") for client in ("bare", "atoma")}
    with ServerProcess(sys.executable, run.ROOT) as server:
        server.prime(["bench:small", "bench:stream:8:1:0"])
        records = run.run_interleaved(todo, server.url, None, 3)
        timed = run.run_interleaved(ttft, server.url, None, 3)
        broken = run.run_interleaved({"bare": Job("seq", "seq", 4, "bench:nonsense")}, server.url, None, 2)
    assert [(r["client"], r.get("error"), r["requests"]) for r in records] == [
        ("bare", None, 30),
        ("atoma", None, 30),
    ]
    assert all(r["cpu"] > 0 and r["wall"] > 0 for r in records)
    assert all(0 < r["ttft_p10_us"] <= r["ttft_us"] <= r["ttft_p90_us"] and r["requests"] == 9 for r in timed)
    assert broken[0]["client"] == "bare" and "error" in broken[0]


def _record(client: str, rnd: int, cpu: float, ttft: float) -> list[dict[str, object]]:
    stream = {"workload": "ttft", "kind": "ttft", "cpu": cpu, "wall": cpu, "chunks": 8, "requests": 1}
    return [{**stream, "client": client, "round": rnd, "ttft_us": ttft}]


def test_report_compares_pair_by_pair_by_ratio_or_difference() -> None:
    records = []
    for rnd, (floor, mine) in enumerate([(100.0, 110.0), (200.0, 212.0), (300.0, 330.0)]):
        records += _record("bare", rnd, 1.0, floor) + _record("atoma", rnd, 1.0, mine)
    (row,) = report.summarise(records, ["bare", "atoma"])
    cell = row["clients"]["atoma"]
    assert row["label"].startswith("time to first token")
    assert (
        cell["median"] == 212.0 and cell["diff"] == 12.0 and cell["ratio"] == pytest.approx(1.1)
    )  # of 1.1, 1.06, 1.1
    assert row["met"] is True  # +12 us against a target of +15 us
    assert "212 (+12.0)" in report.table([row], ["bare", "atoma"])


def test_chart_draws_the_rows_it_has(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the chart comes with the bench extra")
    from benchmarks import chart

    records = []
    for client, cpu in (("bare", 1.0), ("atoma", 1.1), ("openai", 9.0)):
        records.append(
            {"client": client, "workload": "seq", "kind": "seq", "round": 0, "cpu": cpu, "wall": cpu,
             "requests": 1000, "chunks": 0}
        )  # fmt: skip
    summary = report.summarise(records, ["bare", "atoma", "openai"])
    meta = {"mode": "quick", "date": "today", "commit": "abc1234"}
    chart.draw(summary, ["bare", "atoma", "openai"], meta, tmp_path / "chart.svg")
    svg = (tmp_path / "chart.svg").read_text()
    assert "sequential small" in svg and "1,100 (1.10x)" in svg and "atoma-sdk" not in svg


@pytest.mark.parametrize("model", ["bench:json:1000", "bench:jsonstream:20000:2000:10", "bench:jsonstream:400:7:1"])
def test_json_payloads_carry_the_document(model: str) -> None:
    """The structured-output rows (`benchmarks/structured.py`): the content is `json_document`,
    whole or in the asked number of content events."""
    from benchmarks.payloads import json_document

    spec = parse_model(model)
    answer = render(spec)
    events, chars, tokens, _ = _decoded(model)
    assert (events, chars, tokens) == tuple(expect(model))
    document = json_document(spec.delta)
    assert chars == len(document) and json.loads(document)["items"]
    if not isinstance(answer, bytes):
        data = b"".join(answer)
        parsed = [json.loads(line[6:]) for line in data.split(b"\n\n") if line.startswith(b"data: ")]
        pieces = [e["choices"][0]["delta"].get("content") for e in parsed if e["choices"]]
        assert "".join(p or "" for p in pieces) == document
        assert sum(1 for p in pieces if p) == spec.events - 3


def test_bare_sealed_floor_client_reads_what_the_bare_client_reads() -> None:
    """The in-loop floor of `confidential_profile` (`bare-sealed`) opens the bench server's sealed
    body and every sealed event of a stream (keep-alive comments and batched writes included), to
    the counts the plain bare client reads from the plain route and the payloads promise."""
    import asyncio

    from benchmarks.clients import bare
    from benchmarks.confidential_profile import BareSealed

    models = ["bench:small", "bench:body:100000", "bench:stream:40:8:4", "bench:stream:12:1:0:4096"]

    async def read_all(url: str) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        plain, sealed = bare.BareClient(url, 4), BareSealed(url, 4)
        try:
            await sealed.lock(url)
            assert sealed.url.endswith("/v1/confidential/chat/completions")
            out = []
            for model in models:
                if model.startswith("bench:stream:"):
                    out.append((await plain.stream(model), await sealed.stream(model)))
                else:
                    out.append((await plain.complete(model), await sealed.complete(model)))
            return out
        finally:
            await plain.aclose()
            await sealed.aclose()

    with ServerProcess(sys.executable, run.ROOT) as server:
        results = asyncio.run(read_all(server.url))
    for model, (plain_read, sealed_read) in zip(models, results, strict=True):
        want = expect(model)
        assert sealed_read == plain_read, model
        if model.startswith("bench:stream:"):
            assert sealed_read == (want.chunks, want.chars, want.tokens), model
        else:
            assert sealed_read == (want.chars, want.tokens), model
