"""Run the side-by-side benchmarks: start the bench server, run every client on every workload in
fresh processes, alternating clients round after round, check that they all decoded the same
thing, then print the table and write JSON, Markdown and the chart to benchmarks/out/.

    python -m benchmarks.run [--quick] [--rounds N] [--clients a,b] [--workloads a,b]
                             [--results FILE.md] [--chart FILE.svg] [--chart-only RUN.json]
"""

from __future__ import annotations

import argparse
import compileall
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
from typing import Any, TypeVar

from . import chart, report
from .clients import COLD_IMPORTS, MODULES
from .payloads import expect
from .plan import FULL, HEAVY, QUICK, SLICED, WORKLOADS, Config, Job, jobs
from .server_process import ServerProcess, pin

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
ATOMA_VENV = ROOT / ".venv-bench-atoma"
ATOMA_SDK = "atoma-sdk==0.1.3"
CLIENTS = ["bare", "atoma", "atoma-confidential", "openai", "openai-aiohttp", "atoma-sdk"]
# Run only when named (--clients): "atoma" with a fallback and a breaker configured, untriggered.
EXTRA_CLIENTS = ["atoma-resilient"]
T = TypeVar("T")
# glibc moves its mmap threshold up after freeing a big mmapped block, and its trim threshold with
# it: so whether a fresh process returns and re-faults a 100 KB body's pages on every request
# (26 page faults, +25 % CPU) depended on its start-up history, at random, for every client alike.
# A fixed threshold makes every worker the same (trimming left at glibc's default).
WORKER_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(4 << 20)}
CLIENT_CPU = 0  # the server gets the last CPU, when there are two or more
TIMEOUT = 1800.0  # seconds one client process may take


# ------------------------------------------------------------------------------ processes


def python_for(client: str) -> str:
    return str(ATOMA_VENV / "bin" / "python") if client == "atoma-sdk" else sys.executable


def start(argv: list[str], cpu: int | None, **streams: Any) -> tuple[subprocess.Popen[Any], threading.Timer]:
    """Start a worker process from ROOT with WORKER_ENV, pinned to `cpu`; and its killer, a timer
    that kills it after TIMEOUT s unless cancelled."""
    proc = subprocess.Popen(argv, cwd=ROOT, env=WORKER_ENV, **streams)
    if cpu is not None:
        pin(proc.pid, cpu)
    killer = threading.Timer(TIMEOUT, proc.kill)
    killer.start()
    return proc, killer


def spawn(argv: list[str], cpu: int | None) -> dict[str, Any]:
    """Run a process to its end from ROOT (killed after TIMEOUT s); its wall time, own CPU and
    peak RSS (from wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc, killer = start(argv, cpu, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
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


def checked(client: str, job: Job, line: str, failure: str) -> dict[str, Any]:
    """A worker's record of `job`, checked against what the server sent; `failure` (the
    worker's stderr) is the error when there is no record."""
    if not line.strip():
        return {"client": client, "workload": job.workload, "error": failure}
    record: dict[str, Any] = json.loads(line)
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


def run_worker(client: str, todo: list[Job], url: str, cpu: int | None) -> tuple[list[dict[str, Any]], float]:
    """Run `todo` in one fresh worker process; a record per job, each checked against what the
    server sent, and the process's wall time."""
    argv = [python_for(client), "-m", "benchmarks.worker", client, url]
    done = spawn(argv + [json.dumps(job._asdict()) for job in todo], cpu)
    lines = done["stdout"].strip().splitlines()
    failure = done["stderr"][-1500:] or f"exit status {done['rc']}"
    return [
        checked(client, job, lines[n] if n < len(lines) else "", failure) for n, job in enumerate(todo)
    ], done["wall"]


class _Turns:
    """One client's worker in an interleaved run: started warm, then driven turn by turn."""

    def __init__(self, client: str, job: Job, url: str, cpu: int | None, slices: int) -> None:
        self.client, self.job = client, job
        self.turns = len(job.parts(slices))
        argv = [python_for(client), "-m", "benchmarks.worker", "--slices", str(slices), client, url]
        self.err = tempfile.TemporaryFile()  # noqa: SIM115  # closed in record(), after the last turn
        self.proc, self.killer = start(
            [*argv, json.dumps(job._asdict())], cpu, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.err, text=True,
        )  # fmt: skip
        self.ok = self.said("ready")

    def said(self, word: str) -> bool:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip() == word

    def turn(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except OSError:
            self.ok = False
            return
        self.ok = self.said("done")

    def record(self) -> dict[str, Any]:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        line = self.proc.stdout.readline() if self.ok else ""
        if not self.ok:
            self.proc.kill()  # it said something else, or nothing: its turns are over
        self.proc.stdin.close()
        self.proc.wait()
        self.proc.stdout.close()
        self.killer.cancel()
        self.err.seek(0)
        failure = self.err.read().decode(errors="replace")[-1500:] or f"exit status {self.proc.returncode}"
        self.err.close()
        return checked(self.client, self.job, line, failure)


def run_interleaved(todo: dict[str, Job], url: str, cpu: int | None, slices: int) -> list[dict[str, Any]]:
    """Run one job on every client in `todo` at once, each in its own fresh worker, the workers
    taking turns part by part (`Job.parts`): a machine whose speed drifts from one second to the
    next then slows every client alike, instead of whichever ran in the slow second."""
    workers = [_Turns(client, job, url, cpu, slices) for client, job in todo.items()]
    for n in range(max(worker.turns for worker in workers)):
        for worker in rotate(workers, n):
            if worker.ok and n < worker.turns:
                worker.turn()
    return [worker.record() for worker in workers]


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


def rotate(items: list[T], n: int) -> list[T]:
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


def batches(cfg: Config, planned: list[Job]) -> list[list[Job]]:
    """The jobs one worker process runs: one each, or (`cfg.together`) all in one but the open
    ones, which measure RSS and so get a process of their own."""
    if not cfg.together:
        return [[job] for job in planned]
    shared = [job for job in planned if job.kind != "open"]
    return ([shared] if shared else []) + [[job] for job in planned if job.kind == "open"]


def job_for(cfg: Config, client: str, job: Job, rnd: int) -> Job | None:
    """`job` as `client` runs it in round `rnd`: a slow client runs a smaller count, and the heavy
    workloads only in the first `cfg.slow_rounds` rounds."""
    divisor = cfg.slow.get(client)
    if divisor is None:
        return job
    if job.workload in HEAVY and rnd >= cfg.slow_rounds:
        return None
    return job.scaled(divisor)


def run_batch(
    cfg: Config, clients: list[str], batch: list[Job], rnd: int, url: str, cpu: int | None
) -> tuple[list[dict[str, Any]], str]:
    """One round of a batch of jobs on every client: its records, and a line saying how it went."""
    order = rotate(clients, rnd)
    if cfg.slices > 1 and len(batch) == 1 and batch[0].kind in SLICED:
        started = time.perf_counter()
        todo = {client: mine for client in order if (mine := job_for(cfg, client, batch[0], rnd))}
        records = run_interleaved(todo, url, cpu, cfg.slices)
        failed = "".join(f", {r['client']} ERROR" for r in records if "error" in r)
        return records, f"{', '.join(todo)} taking turns, {time.perf_counter() - started:.1f}s{failed}"
    records, said = [], []
    for client in order:
        todo_jobs = [mine for job in batch if (mine := job_for(cfg, client, job, rnd))]
        if todo_jobs:
            done, wall = run_worker(client, todo_jobs, url, cpu)
            records += done
            failed = any("error" in record for record in done)
            said.append(f"{client} {'ERROR' if failed else format(wall, '.1f') + 's'}")
    return records, ", ".join(said)


def measure(cfg: Config, clients: list[str], workloads: list[str], pinned: bool) -> list[dict[str, Any]]:
    cpus = sorted(os.sched_getaffinity(0))
    client_cpu = cpus[CLIENT_CPU] if pinned and len(cpus) > 1 else None
    server_cpu = cpus[-1] if client_cpu is not None else None
    planned = [job for name, job in jobs(cfg).items() if name in workloads]
    records: list[dict[str, Any]] = []
    with ServerProcess(sys.executable, ROOT, server_cpu) as server:
        server.prime([job.model for job in planned if job.kind != "open"])  # held ones cannot be
        for rnd in range(cfg.rounds):
            for batch in batches(cfg, planned):
                done, said = run_batch(cfg, clients, batch, rnd, server.url, client_cpu)
                for record in done:
                    record["round"] = rnd
                records += done
                names = ",".join(job.workload for job in batch)
                print(f"[round {rnd + 1}/{cfg.rounds}] {names}: {said}", file=sys.stderr)
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
        "clients": clients,
        "lscpu": "\n".join(_command("lscpu").splitlines()[:10]),
    }


def draw_chart(summary: list[dict[str, Any]], clients: list[str], meta: dict[str, Any], path: Path) -> bool:
    """Write the chart to `path`; False, said on stderr, if matplotlib is missing."""
    try:
        chart.draw(summary, clients, meta, path)
    except chart.ChartUnavailable as exc:
        print(f"no chart: {exc}", file=sys.stderr)
        return False
    return True


def publish(document: dict[str, Any], args: argparse.Namespace, out: Path | None) -> list[Path]:
    """Print the table; write the report and the chart (to `out`'s latest.*, if given, and to
    --results / --chart), each report linking the chart next to it. The paths written."""
    meta, records = document["meta"], document["records"]
    clients = meta.get("clients") or list(dict.fromkeys(["bare", *(r["client"] for r in records)]))
    summary = document["summary"] = report.summarise(records, clients)
    print(report.table(summary, clients))
    written = []
    reports = [(out / "latest.md", out / "latest.svg")] if out else []
    if args.results:
        reports.append((args.results, args.results.with_suffix(".svg")))
    for markdown, svg in reports:
        drawn = draw_chart(summary, clients, meta, svg)
        markdown.write_text(report.markdown(meta, summary, clients, svg.name if drawn else None))
        written += [markdown, svg] if drawn else [markdown]
    if args.chart and draw_chart(summary, clients, meta, args.chart):
        written.append(args.chart)
    return written


def compile_project() -> None:
    """Write this project's bytecode caches, as installing a wheel does (pip compiles what it
    installs): with PYTHONDONTWRITEBYTECODE set, an editable install would otherwise compile its
    modules from source in every worker, and the import rows would time the compiler."""
    for package in ("atoma_core", "atoma_funcs", "benchmarks"):
        compileall.compile_dir(ROOT / package, quiet=1)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, one round (about a minute)")
    parser.add_argument("--rounds", type=int, help="rounds of every client on every workload")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated; bare is always run")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated, of: %(default)s")
    parser.add_argument(
        "--results", type=Path, help="also write the Markdown report here, its chart next to it"
    )
    parser.add_argument("--chart", type=Path, help="also draw the chart here (.svg, .png or .pdf)")
    parser.add_argument("--chart-only", type=Path, metavar="JSON", help="measure nothing: report a saved run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin client and server to CPUs")
    args = parser.parse_args(argv)
    for option, known in (("clients", CLIENTS + EXTRA_CLIENTS), ("workloads", WORKLOADS)):
        unknown = set(getattr(args, option).split(",")) - set(known)
        if unknown:
            parser.error(f"unknown {option}: {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.chart_only:
        try:
            document = json.loads(args.chart_only.read_text())
        except (OSError, ValueError) as exc:
            print(f"cannot read the saved run {args.chart_only}: {exc}", file=sys.stderr)
            return 2
        args.chart = args.chart or args.chart_only.with_suffix(".svg")
        written = publish(document, args, None)
        print(f"\nwrote {', '.join(map(str, written)) or 'nothing'}")
        return 0 if args.chart in written else 2

    started = time.perf_counter()
    cfg = QUICK if args.quick else FULL
    if args.rounds:
        cfg = cfg._replace(rounds=args.rounds)
    clients = ["bare"] + [c for c in args.clients.split(",") if c != "bare"]
    workloads = args.workloads.split(",")
    if "atoma-sdk" in clients and not ensure_atoma_venv():
        clients.remove("atoma-sdk")

    meta = meta_of(cfg, clients, args.quick)
    compile_project()
    records = measure(cfg, clients, workloads, pinned=not args.no_pin)
    head = _command("git", "rev-parse", "--short", "HEAD") or "unknown"
    if head != meta["commit"]:
        meta["commit"] += f" (HEAD moved to {head} during the run)"
    meta["seconds"] = round(time.perf_counter() - started)
    document = {"meta": meta, "summary": [], "records": records}
    OUT.mkdir(parents=True, exist_ok=True)
    written = publish(document, args, OUT)

    errors = [r for r in records if "error" in r]
    for record in errors:
        print(f"\nERROR {record['client']} {record['workload']}: {record['error']}", file=sys.stderr)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (OUT / name).write_text(json.dumps(document, indent=1) + "\n")
    shown = ", ".join(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path) for path in written)
    print(f"\nwrote {OUT.relative_to(ROOT)}/latest.json, {shown}; the run took {meta['seconds']} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
