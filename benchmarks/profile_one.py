"""Profile ONE client on one bench model, in the loop, by CPU time: the measured phase only (after
a warm-up), per unit (request, or chunk for a stream model), with the page faults it took.

    python -m benchmarks.profile_one atoma-confidential bench:body:1000000 --count 200
    ... --cprofile out.prof      cProfile with a process-time timer
    ... --perf out.data          `perf record -e cpu-clock -g` attached to this process
    ... --py-spy out.txt         `py-spy record --native -f raw` attached to this process
    python -m benchmarks.profile_one --perf-report out.data US_PER_UNIT   the samples by kind

`perf` samples in software (cpu-clock: no hardware counters on this VM), and Python 3.11 has no
perf trampoline, so it names C functions and the kernel (page faults, copies), not Python lines;
py-spy names Python lines and the native calls under them.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import re
import resource
import signal
import subprocess
import time
from typing import Any

from .clients import atoma
from .server_process import run_against


async def _measure(url: str, args: argparse.Namespace) -> None:
    client = await atoma.connect(url, args.client, 100)
    streams = args.model.startswith("bench:stream")

    async def run(count: int) -> int:
        units = 0
        for _ in range(count):
            if streams:
                units += (await client.stream(args.model))[0]
            else:
                await client.complete(args.model)
                units += 1
        return units

    await run(max(1, args.count // 10))  # warm-up
    gc.collect()
    profile: Any = None
    sampler = None
    if args.cprofile:
        import cProfile

        profile = cProfile.Profile(time.process_time)
        profile.enable()
    else:
        sampler = _attach(args)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    started = time.process_time()
    units = await run(args.count)
    cpu = time.process_time() - started
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    if sampler is not None:  # blocking on purpose: nothing else runs in this loop
        sampler.send_signal(signal.SIGINT)
        sampler.wait()
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.cprofile)
    await client.aclose()
    print(
        f"{args.client} {args.model}: {cpu / units * 1e6:.2f} us/unit, {faults / units:.1f} minor faults/unit"
    )


def _attach(args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    """Start perf or py-spy on this process, if asked, and give it time to attach."""
    pid = str(os.getpid())
    if args.perf:
        argv = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-g", "-p", pid, "-o", args.perf]
    elif args.py_spy:
        argv = ["py-spy", "record", "--native", "-r", "2000", "-f", "raw", "-p", pid, "-o", args.py_spy]
    else:
        return None
    sampler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)  # attached before the measured phase starts
    return sampler


def _kind(stack: list[tuple[str, str]]) -> str:
    """What one perf sample was doing, from its stack (leaf first)."""
    symbols = [symbol for symbol, _ in stack]
    leaf, dso = stack[0] if stack else ("?", "?")
    if any("page_fault" in symbol for symbol in symbols):
        return "page faults (kernel)"
    if "kernel" in dso:
        if any("recvfrom" in s or "tcp_recvmsg" in s for s in symbols):
            return "kernel: recv"
        if any("munmap" in s or "brk" in s for s in symbols):
            return "kernel: munmap/brk"
        return "kernel: other"
    lowered = leaf.lower()
    if "blake2" in lowered:
        return "BLAKE2b"
    if "aes" in lowered or "gcm" in lowered or "ghash" in lowered:
        return "AES-GCM"
    if "x25519" in lowered or leaf.startswith("fe_"):
        return "X25519"
    if dso.startswith("_rust"):
        return "cryptography: bindings"
    if dso.startswith("_core.cpython"):
        return f"msgspec: {leaf}"
    if "libc" in dso and leaf.startswith("__mem"):
        return f"libc: {leaf.split('_')[2]}"
    if "libpython" in dso:
        return "python: eval" if "EvalFrame" in leaf else "python: other"
    return dso


def perf_report(path: str, us_per_unit: float) -> None:
    """The samples of the profiled process by kind, as microseconds per unit."""
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "ip,sym,dso"], capture_output=True, text=True, check=True
    ).stdout
    kinds: collections.Counter[str] = collections.Counter()
    samples = 0
    for block in out.split("\n\n"):
        stack = []
        for line in block.strip().splitlines():
            found = re.match(r"\s*\S+ (.*) \((.*)\)$", line)
            if found:
                stack.append(
                    (re.sub(r"\+0x[0-9a-f]+$", "", found.group(1)), found.group(2).rsplit("/", 1)[-1])
                )
        if stack:
            samples += 1
            kinds[_kind(stack)] += 1
    for kind, count in kinds.most_common(25):
        print(f"  {kind:40s} {count / samples * us_per_unit:9.2f} us/unit")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("client", nargs="?", default="atoma-confidential", help="atoma or atoma-confidential")
    parser.add_argument("model", nargs="?", default="bench:body:1000000")
    parser.add_argument("--count", type=int, default=100, help="requests or streams measured")
    parser.add_argument("--cprofile", help="write a cProfile (process time) here")
    parser.add_argument("--perf", help="write a perf record here")
    parser.add_argument("--py-spy", dest="py_spy", help="write py-spy's raw samples here")
    parser.add_argument(
        "--perf-report", nargs=2, metavar=("DATA", "US_PER_UNIT"), help="summarise a perf record"
    )
    args = parser.parse_args(argv)
    if args.perf_report:
        perf_report(args.perf_report[0], float(args.perf_report[1]))
        return
    run_against(args.model, lambda url: _measure(url, args))


if __name__ == "__main__":
    main()
