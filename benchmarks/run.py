"""Run the side-by-side benchmarks: start the bench server, run every client on every workload in
its own fresh process, alternating clients round after round, check that they all decoded the same
thing, then print the table and write JSON (and Markdown) to benchmarks/out/.

    python -m benchmarks.run [--quick] [--rounds N] [--clients a,b] [--workloads a,b] [--results FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from . import report
from .clients import COLD_IMPORTS, MODULES
from .payloads import expect
from .server_process import ServerProcess, pin

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
ATOMA_VENV = ROOT / ".venv-bench-atoma"
ATOMA_SDK = "atoma-sdk==0.1.3"
CLIENTS = ["bare", "atoma", "openai", "openai-aiohttp", "atoma-sdk"]
WORKLOADS = ["seq", "conc", "stream", "stream-batched", "large", "open", "import", "first"]
CLIENT_CPU = 0  # the server gets the last CPU, when there are two or more
TIMEOUT = 900.0  # seconds one client process may take


class Config(NamedTuple):
    rounds: int
    seq: int  # sequential small requests
    conc: int  # small requests at `concurrency`
    concurrency: int
    streams: int  # sequential streams of `chunks` events each
    chunks: int
    batch: int  # events per write in the batched stream
    keep_alive: int  # a `: keep-alive` comment after every this many events (batched stream)
    large: int  # sequential ~4,000-token bodies
    open: int  # streams open at once
    hold_events: int  # events in each of those streams
    import_reps: int  # cold-import runs per client
    first_reps: int  # import + first request runs per client


FULL = Config(5, 1000, 2000, 64, 20, 2000, 50, 25, 200, 1000, 8, 15, 7)
QUICK = Config(1, 200, 256, 64, 3, 400, 50, 25, 40, 100, 8, 3, 1)


class Job(NamedTuple):
    count: int
    param: str
    concurrency: int
    model: str  # what each unit of the workload asks for, for the expected totals


def jobs(cfg: Config) -> dict[str, Job]:
    stream = f"bench:stream:{cfg.chunks}:1:0"
    batched = f"bench:stream:{cfg.chunks}:{cfg.batch}:{cfg.keep_alive}"
    return {
        "seq": Job(cfg.seq, "", 1, "bench:small"),
        "conc": Job(cfg.conc, "", cfg.concurrency, "bench:small"),
        "stream": Job(cfg.streams, stream, 1, stream),
        "stream-batched": Job(cfg.streams, batched, 1, batched),
        "large": Job(cfg.large, "", 1, "bench:large"),
        "open": Job(cfg.open, str(cfg.hold_events), 1, f"bench:hold:check:{cfg.hold_events}"),
    }


# ------------------------------------------------------------------------------ processes


def python_for(client: str) -> str:
    return str(ATOMA_VENV / "bin" / "python") if client == "atoma-sdk" else sys.executable


def spawn(argv: list[str], cpu: int | None) -> dict[str, Any]:
    """Run a process to its end from ROOT (killed after TIMEOUT s); its wall time, own CPU and
    peak RSS (from wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        if cpu is not None:
            pin(proc.pid, cpu)
        killer = threading.Timer(TIMEOUT, proc.kill)
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "rc": proc.returncode,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "maxrss": usage.ru_maxrss * 1024,
        }


def ensure_atoma_venv() -> bool:
    """Create .venv-bench-atoma with atoma-sdk 0.1.3 on first use (it pins pydantic ~2.10)."""
    stamp = ATOMA_VENV / ".installed-atoma-sdk-0.1.3"
    if stamp.exists():
        return True
    print(f"creating {ATOMA_VENV.name} with {ATOMA_SDK} (first run only) ...", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(ATOMA_VENV)],
        [python_for("atoma-sdk"), "-m", "pip", "install", "-q", "--disable-pip-version-check", ATOMA_SDK],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"cannot set up atoma-sdk, skipping it:\n{done.stderr[-2000:]}", file=sys.stderr)
            return False
    stamp.touch()
    return True


# ------------------------------------------------------------------------------ measurements


def run_worker(client: str, workload: str, job: Job, url: str, cpu: int | None) -> dict[str, Any]:
    argv = [python_for(client), "-m", "benchmarks.worker", client, workload, url, str(job.count)]
    argv += ["--param", job.param, "--concurrency", str(job.concurrency)]
    done = spawn(argv, cpu)
    if done["rc"] != 0:
        return {"client": client, "workload": workload, "error": done["stderr"][-1500:]}
    record: dict[str, Any] = json.loads(done["stdout"].strip().splitlines()[-1])
    want = expect(job.model)
    wanted = {
        "requests": job.count,
        "chunks": want.chunks * job.count,
        "chars": want.chars * job.count,
        "tokens": want.tokens * job.count,
    }
    got = {key: record[key] for key in wanted}
    if got != wanted:
        record["error"] = f"decoded {got}, expected {wanted}"
    return record


_FIRST = """import asyncio, importlib
async def main():
    client = await importlib.import_module({module!r}).connect({url!r}, {client!r}, 100)
    result = await client.complete("bench:small")
    await client.aclose()
    assert result == {expected!r}, result
asyncio.run(main())
"""


def run_snippet(client: str, workload: str, url: str, cpu: int | None) -> dict[str, Any]:
    """`python -c` of the cold import, or of import + client + one request, timed from outside."""
    if workload == "import":
        code = COLD_IMPORTS[client]
    else:
        small = expect("bench:small")
        code = _FIRST.format(
            module=MODULES[client], url=url, client=client, expected=(small.chars, small.tokens)
        )
    done = spawn([python_for(client), "-c", code], cpu)
    if done["rc"] != 0:
        return {"client": client, "workload": workload, "error": done["stderr"][-1500:]}
    return {"client": client, "workload": workload, **{k: done[k] for k in ("wall", "cpu", "maxrss")}}


def rotate(items: list[str], n: int) -> list[str]:
    n %= len(items)
    return items[n:] + items[:n]


def run_snippets(
    workload: str, reps: int, clients: list[str], url: str, cpu: int | None, warm: bool
) -> list[dict[str, Any]]:
    """Alternate the clients and `python -c pass`; each figure is paired with that rep's `pass`.
    `warm`: run each once untimed first, to write bytecode caches and fill the page cache."""
    records = []
    for client in ["python", *clients] if warm else []:
        run_snippet(client, "import", url, cpu)
    for rep in range(reps):
        floor = run_snippet("python", "import", url, cpu)
        for client in rotate(clients, rep):
            record = run_snippet(client, workload, url, cpu)
            record.update(round=rep, python_wall=floor.get("wall", 0.0))
            records.append(record)
    return records


def measure(cfg: Config, clients: list[str], workloads: list[str], pinned: bool) -> list[dict[str, Any]]:
    cpus = sorted(os.sched_getaffinity(0))
    client_cpu = cpus[CLIENT_CPU] if pinned and len(cpus) > 1 else None
    server_cpu = cpus[-1] if client_cpu is not None else None
    records: list[dict[str, Any]] = []
    with ServerProcess(sys.executable, ROOT, server_cpu) as server:
        for rnd in range(cfg.rounds):
            for workload, job in jobs(cfg).items():
                if workload not in workloads:
                    continue
                line = []
                for client in rotate(clients, rnd):
                    record = run_worker(client, workload, job, server.url, client_cpu)
                    record["round"] = rnd
                    records.append(record)
                    line.append(
                        f"{client} {'ERROR' if 'error' in record else format(record['wall'], '.2f') + 's'}"
                    )
                print(f"[round {rnd + 1}/{cfg.rounds}] {workload}: {', '.join(line)}", file=sys.stderr)
        warm = not records  # the workers have imported everything once already
        if "import" in workloads:
            records += run_snippets("import", cfg.import_reps, clients, "", client_cpu, warm)
            print(f"cold import: {cfg.import_reps} runs each", file=sys.stderr)
            warm = False
        if "first" in workloads:
            records += run_snippets("first", cfg.first_reps, clients, server.url, client_cpu, warm)
            print(f"import + first request: {cfg.first_reps} runs each", file=sys.stderr)
    return records


# ------------------------------------------------------------------------------ report


def _versions(clients: list[str]) -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in ("atoma-async", "aiohttp", "msgspec", "openai", "httpx2"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    if "atoma-sdk" in clients:
        code = "import importlib.metadata as m; print(*(m.version(p) for p in ('atoma-sdk', 'pydantic', 'httpx')))"
        found = subprocess.run([python_for("atoma-sdk"), "-c", code], capture_output=True, text=True)
        names = ("atoma-sdk", "pydantic (atoma-sdk)", "httpx (atoma-sdk)")
        versions.update(zip(names, found.stdout.split(), strict=False))
    return versions


def _command(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return ""


def meta_of(cfg: Config, clients: list[str], quick: bool) -> dict[str, Any]:
    return {
        "mode": "quick" if quick else "full",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _command("git", "rev-parse", "--short", "HEAD") or "unknown",
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:]),
        "versions": _versions(clients),
        "config": cfg._asdict(),
        "lscpu": "\n".join(_command("lscpu").splitlines()[:10]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, one round (< 1 minute)")
    parser.add_argument("--rounds", type=int, help="rounds of every client on every workload")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated; bare is always run")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument("--results", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--no-pin", action="store_true", help="do not pin client and server to CPUs")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    cfg = QUICK if args.quick else FULL
    if args.rounds:
        cfg = cfg._replace(rounds=args.rounds)
    clients = ["bare"] + [c for c in args.clients.split(",") if c in CLIENTS and c != "bare"]
    workloads = [w for w in args.workloads.split(",") if w in WORKLOADS]
    if "atoma-sdk" in clients and not ensure_atoma_venv():
        clients.remove("atoma-sdk")

    meta = meta_of(cfg, clients, args.quick)
    records = measure(cfg, clients, workloads, pinned=not args.no_pin)
    summary = report.summarise(records, clients)
    head = _command("git", "rev-parse", "--short", "HEAD") or "unknown"
    if head != meta["commit"]:
        meta["commit"] += f" (HEAD moved to {head} during the run)"
    print(report.table(summary, clients))

    errors = [r for r in records if "error" in r]
    for record in errors:
        print(f"\nERROR {record['client']} {record['workload']}: {record['error']}", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    document = {"meta": meta, "summary": summary, "records": records}
    for name in (f"bench-{stamp}.json", "latest.json"):
        (OUT / name).write_text(json.dumps(document, indent=1) + "\n")
    text = report.markdown(meta, summary, clients)
    (OUT / "latest.md").write_text(text)
    if args.results:
        args.results.write_text(text)
    print(
        f"\nwrote {OUT.relative_to(ROOT)}/latest.json and latest.md in {time.perf_counter() - started:.0f} s"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
