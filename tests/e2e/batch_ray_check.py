"""`make batch-ray`: examples/batch_ray.py on a local Ray instance, against the sandbox run as a
process of its own. Checks that every custom_id lands in OUT exactly once, that bad lines are
reported and left out, that the job's request limit held (the run cannot be faster than the
limit allows), and that a rerun after losing part of OUT (and a torn last line) fills in exactly
what is missing. Run with the .venv-ray interpreter (ray installed); not part of `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sk-ray-check"
CHATS, EMBEDS = 3000, 200
RPM = 30_000  # 500 a second for the whole job, split over 2 actors


def write_input(path: Path) -> None:
    with path.open("w") as f:
        for i in range(CHATS):
            body = {"model": "m", "messages": [{"role": "user", "content": f"item {i}"}], "max_tokens": 8}
            f.write(json.dumps({"custom_id": f"chat-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n")
        for i in range(EMBEDS):
            body = {"model": "e", "input": [f"text {i}", "more text"]}
            f.write(json.dumps({"custom_id": f"emb-{i}", "url": "/v1/embeddings", "body": body}) + "\n")
        f.write("{not json\n")
        f.write(json.dumps({"custom_id": "img", "url": "/v1/images/generations", "body": {}}) + "\n")
        f.write(json.dumps({"url": "/v1/embeddings", "body": {}}) + "\n")


def run_example(src: Path, out: Path, url: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(ROOT / "examples" / "batch_ray.py"), str(src), "-o", str(out)]
    argv += ["--server-url", url, "--workers", "2", "--rpm", str(RPM), "--block", "1000"]
    env = {**os.environ, "ATOMASDK_BEARER_AUTH": TOKEN}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "(no stderr)")
    return done


def ids_in(out: Path) -> Counter[str]:
    text = out.read_text()
    assert text.endswith("\n"), "OUT ends with a torn line"
    rows = [json.loads(row) for row in text.splitlines()]
    assert all(row["error"] is None and row["response"]["status_code"] == 200 for row in rows)
    return Counter(row["custom_id"] for row in rows)


def main() -> int:
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "atoma_core.testing", "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        url = sandbox.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
            write_input(src)
            wanted = {f"chat-{i}" for i in range(CHATS)} | {f"emb-{i}" for i in range(EMBEDS)}

            started = time.monotonic()
            first = run_example(src, out, url)
            elapsed = time.monotonic() - started
            assert first.returncode == 2, first.stderr[-3000:]  # 2: there were bad lines
            assert first.stderr.count("bad line ") == 3, first.stderr[-3000:]
            counts = ids_in(out)
            assert set(counts) == wanted and max(counts.values()) == 1, "ids missing or repeated"
            # Each actor's bucket holds one second's worth: k requests take >= (k - 2 * burst) / rate.
            rate = RPM / 60
            least = (len(wanted) - 2 * rate / 2) / rate
            assert elapsed >= least, f"{len(wanted)} requests in {elapsed:.1f} s: faster than {RPM}/min"

            rows = out.read_text().splitlines(keepends=True)
            out.write_text("".join(rows[:1000]) + '{"id": "batch_req_torn", "custom_')
            second = run_example(src, out, url)
            assert second.returncode == 2, second.stderr[-3000:]
            assert f"{len(wanted) - 1000} lines written" in second.stderr, second.stderr[-3000:]
            counts = ids_in(out)
            assert set(counts) == wanted and max(counts.values()) == 1, "ids missing or repeated on resume"
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print(f"batch-ray: ok ({len(wanted)} requests on 2 actors in {elapsed:.1f} s; resume filled in the rest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
