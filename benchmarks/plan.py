"""What a run measures: the settings of a full and a quick run, and from them the job of every
workload (what each unit asks the server for, how many units, how they are sent).

Standard library only: the worker imports it too, in the atoma-sdk venv.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["FULL", "HEAVY", "QUICK", "SLICED", "WORKLOADS", "Config", "Job", "jobs"]


class Config(NamedTuple):
    rounds: int
    counts: dict[str, int]  # units of each workload: requests, streams, or TTFT samples; each
    # row of a full run takes at least ~0.5 s of the bare loop's CPU, so noise stays small
    chunks: int  # events per stream in the stream and delta workloads
    batch: int  # events per write in the batched stream
    keep_alive: int  # a `: keep-alive` comment after every this many events (batched stream)
    concurrency: int  # lanes of the conc and burst workloads
    burst: int  # requests per fresh client in the burst workload
    open_events: int  # events in each stream of the open workloads ...
    open_hold: int  # ... and the chunk each one holds after while RSS is read
    import_reps: int  # cold-import runs per client
    first_reps: int  # import + first request runs per client
    slow: dict[str, int]  # a client here runs 1/n of every count (1/n of the bursts), for time
    slow_rounds: int  # ... and only in this many rounds of the heavy workloads (HEAVY)
    together: bool  # one process per client and round for every workload but the open ones
    slices: int  # a SLICED job runs in this many turns per client, the clients taking turns


class Job(NamedTuple):
    workload: str
    kind: str  # seq | conc | burst | stream | open | ttft: what the worker does
    count: int  # units: requests, streams, or TTFT samples
    model: str  # what each unit asks for ("{group}" is the worker's own hold group)
    concurrency: int = 1
    hold_at: int = 0  # open: the chunk every stream holds after
    burst: int = 0  # burst: requests per fresh client

    def scaled(self, divisor: int) -> Job:
        """The same job with 1/divisor of the units (whole bursts for a burst; at least one)."""
        step = self.burst or 1
        return self._replace(count=max(step, self.count // divisor // step * step))

    def parts(self, slices: int) -> list[Job]:
        """The job cut into at most `slices` jobs of about the same size (whole bursts), whose
        counts add up to its own."""
        step = self.burst or 1
        units = self.count // step
        k = max(1, min(slices, units))
        return [self._replace(count=(units // k + (i < units % k)) * step) for i in range(k)]


# The order of the table; import and first are `python -c` runs, not worker jobs.
WORKLOADS = [
    "seq", "conc", "burst", "stream", "stream-batched", "delta-4", "delta-256", "delta-4k", "large",
    "body-1k", "body-100k", "body-1m", "open-512", "open-2000", "ttft", "import", "first",
]  # fmt: skip
# What a slow client runs in fewer rounds: a unit that cannot shrink (a burst) or costs it much
HEAVY = {"burst", "delta-256", "delta-4k", "body-1m", "open-512", "open-2000"}
# Kinds measured in slices, every client's worker taking turns (run.run_interleaved), so that a
# VM whose speed drifts by the second slows every client alike. The open streams (RSS at one
# moment) run whole.
SLICED = {"seq", "conc", "burst", "stream", "ttft"}
DELTAS = {"delta-4": 4, "delta-256": 256, "delta-4k": 4096}
BODIES = {"body-1k": 1_000, "body-100k": 100_000, "body-1m": 1_000_000}

# fmt: off
FULL = Config(
    rounds=7,
    counts={
        "seq": 1000, "conc": 4000, "burst": 1600, "stream": 20, "stream-batched": 80,
        "delta-4": 10, "delta-256": 10, "delta-4k": 30, "large": 200,
        "body-1k": 1000, "body-100k": 800, "body-1m": 30,
        "open-512": 512, "open-2000": 2000, "ttft": 1000,
    },
    chunks=2000,
    batch=50,
    keep_alive=25,
    concurrency=64,
    burst=320,
    open_events=200,
    open_hold=100,
    import_reps=15,
    first_reps=7,
    slow={"openai": 4, "openai-aiohttp": 4, "atoma-sdk": 20},
    slow_rounds=2,
    together=False,
    slices=8,
)
QUICK = FULL._replace(
    rounds=1,
    counts={
        "seq": 200, "conc": 256, "burst": 320, "stream": 3, "stream-batched": 3,
        "delta-4": 2, "delta-256": 2, "delta-4k": 2, "large": 40,
        "body-1k": 200, "body-100k": 40, "body-1m": 6,
        "open-512": 512, "open-2000": 2000, "ttft": 200,
    },
    chunks=200,
    open_events=24,
    open_hold=12,
    import_reps=1,
    first_reps=1,
    slow={"openai": 16, "openai-aiohttp": 16, "atoma-sdk": 40},
    slow_rounds=0,  # the slow clients skip the heavy rows: about a minute in all
    together=True,
    slices=1,
)
# fmt: on


def jobs(cfg: Config) -> dict[str, Job]:
    """Every worker job of this config, by workload name."""
    n = cfg.counts
    stream = f"bench:stream:{cfg.chunks}:1:0"
    batched = f"bench:stream:{cfg.chunks}:{cfg.batch}:{cfg.keep_alive}"
    held = f"bench:hold:{{group}}:{cfg.open_events}:{cfg.open_hold}"
    out = {
        "seq": Job("seq", "seq", n["seq"], "bench:small"),
        "conc": Job("conc", "conc", n["conc"], "bench:small", cfg.concurrency),
        "burst": Job("burst", "burst", n["burst"], "bench:small", cfg.concurrency, burst=cfg.burst),
        "stream": Job("stream", "stream", n["stream"], stream),
        "stream-batched": Job("stream-batched", "stream", n["stream-batched"], batched),
        "large": Job("large", "seq", n["large"], "bench:large"),
        "ttft": Job("ttft", "ttft", n["ttft"], "bench:stream:8:1:0"),
    }
    for name, size in DELTAS.items():
        out[name] = Job(name, "stream", n[name], f"bench:stream:{cfg.chunks // 2}:1:0:{size}")
    for name, size in BODIES.items():
        out[name] = Job(name, "seq", n[name], f"bench:body:{size}")
    for name in ("open-512", "open-2000"):
        out[name] = Job(name, "open", n[name], held, hold_at=cfg.open_hold)
    return {name: out[name] for name in WORKLOADS if name in out}
