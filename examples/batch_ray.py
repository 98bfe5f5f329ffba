"""A batch job sharded over a Ray cluster: the same input and output files as `atoma batch`.

    pip install atoma-async "ray[data]>=2.9"
    ATOMASDK_BEARER_AUTH=... python examples/batch_ray.py IN.jsonl -o OUT.jsonl --workers 8 --rpm 6000

Ray Data reads IN, `map_batches` hands blocks of lines to a pool of `AtomaBatcher` actors, each
holding one `AtomaCore` and running its blocks through `batch_run` with its share of the limits
(`--rpm` and `--tpm` split evenly over `--workers`), and the driver appends the batch-output
lines to OUT as blocks come back. Resumable like the CLI: custom_ids already in OUT are skipped.

IN is read as text (`read_text`), one row per line, rather than with `read_json`: Arrow would
give every row the union of all rows' keys (absent ones as null, which a server may refuse) and
fails outright when a field is a string in one line and a list in another (message `content`).
Bad lines are reported by custom_id or text, not by number (Ray does not keep line numbers), and
not written to OUT; a custom_id repeated in two shards is not noticed.

Without --server-url this starts the bundled sandbox and runs a demo against it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import ray

from atoma_core import AtomaCore
from atoma_funcs import BatchOutputFile, batch_output_line, batch_run, read_batch_output


class AtomaBatcher:
    """One per Ray actor: a core and an event loop that live as long as the actor, so
    connections are reused from one block to the next."""

    def __init__(
        self, server_url: str, concurrency: int, rpm: float | None, tpm: float | None, done: set[str]
    ) -> None:
        self.core = AtomaCore(server_url=server_url)  # the token: $ATOMASDK_BEARER_AUTH on the worker
        self.loop = asyncio.new_event_loop()
        self.limits = {"concurrency": concurrency, "requests_per_minute": rpm, "tokens_per_minute": tpm}
        self.done = done

    def __call__(self, block: dict[str, Any]) -> dict[str, list[str]]:
        """Lines of IN in; a batch-output line (or a reason the line is bad) per line out."""
        return self.loop.run_until_complete(self._run(list(block["text"])))

    async def _run(self, texts: list[str]) -> dict[str, list[str]]:
        lines: list[str] = []
        bad: list[str] = []
        items = []
        for text in texts:
            try:
                item = json.loads(text)
            except ValueError as exc:
                bad.append(f"{text[:60]!r}: not JSON ({exc})")
                continue
            if not isinstance(item, dict) or item.get("custom_id") not in self.done:
                items.append(item)
        # Each block starts with full buckets (one second's worth): make blocks take many seconds.
        async for result in batch_run(self.core, items, **self.limits):
            if result.attempts == 0:  # refused before sending: no custom_id, unknown url, ...
                bad.append(f"{result.custom_id or '(no custom_id)'}: {result.result.error}")
            else:
                lines.append(batch_output_line(result).decode())
        return {"line": lines + [""] * len(bad), "bad": [""] * len(lines) + bad}


def run(args: argparse.Namespace, server_url: str) -> tuple[int, int]:
    """Run IN through the actors; append to OUT. Returns (lines written, bad lines)."""
    done = read_batch_output(args.output).ids
    share = 1 / args.workers
    batcher = {
        "server_url": server_url,
        "concurrency": args.concurrency,
        "rpm": args.rpm * share if args.rpm else None,
        "tpm": args.tpm * share if args.tpm else None,
        "done": done,
    }
    results = ray.data.read_text(args.input).map_batches(
        AtomaBatcher,
        fn_constructor_kwargs=batcher,
        batch_size=args.block,
        compute=ray.data.ActorPoolStrategy(size=args.workers),
        num_cpus=0.5,  # the actors mostly wait on the network
        batch_format="numpy",
    )
    written = bad = 0
    with BatchOutputFile(args.output) as out:
        for block in results.iter_batches(batch_size=None, batch_format="numpy"):
            for line, why in zip(block["line"], block["bad"], strict=True):
                if line:
                    out.write(line.encode())
                    written += 1
                else:
                    print(f"bad line {why}", file=sys.stderr)
                    bad += 1
    return written, bad


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", metavar="IN.jsonl")
    p.add_argument("--output", "-o", required=True, metavar="OUT.jsonl")
    p.add_argument("--server-url", help="API base URL (default: start the bundled sandbox)")
    p.add_argument("--workers", type=int, default=2, help="Ray actors, each with its own core")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight per actor")
    p.add_argument("--rpm", type=float, help="requests a minute for the whole job")
    p.add_argument("--tpm", type=float, help="tokens a minute for the whole job")
    p.add_argument("--block", type=int, default=500, help="lines per block handed to an actor")
    p.add_argument("--address", help="a Ray cluster to join (default: a local instance)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    try:
        if args.server_url:
            written, bad = run(args, args.server_url)
        else:  # the demo: the bundled sandbox, in a thread of the driver (actors reach it on loopback)
            from atoma_core.testing import sandbox_in_thread

            with sandbox_in_thread() as sandbox:
                written, bad = run(args, sandbox.url)
    finally:
        ray.shutdown()
    print(f"batch on ray: {written} lines written to {args.output}, {bad} bad lines", file=sys.stderr)
    return 0 if bad == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
