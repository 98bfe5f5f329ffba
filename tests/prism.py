"""Stoplight Prism, a third-party OpenAPI validator, run as a proxy in front of the sandbox.

`prism proxy <spec> <sandbox> --errors` checks every request against tests/data/atoma-openapi.yaml
(body schema, Content-Type, bearer auth) and refuses a bad one with 422 (401 without a token) before
it reaches the sandbox; it checks the sandbox's answer too, and turns one that breaks the spec into
a 500. Proxy mode rather than `prism mock`: a mock answers from the spec's examples or schemas, which
are wrong in places (shared/docs/atoma-api.md 9.1 #9, #14), so tests would fail for the spec's sake.
Prism (npm `@stoplight/prism-cli`, pinned by tests/data/prism/package-lock.json) is installed by `make`
into .prism/ (git-ignored); without npm the tests are skipped with a message saying so.
Prism reads a whole answer before passing it on, so a stream arrives at once: it is no place to
test timing (deadlines, keep-alives).

Prism is given the spec with the changes in SPEC_FIXES and `merge_stream_operations`, each one for
a spec bug or for something Prism cannot do; request schemas are otherwise the spec's, untouched.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .conftest import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "tests" / "data" / "atoma-openapi.yaml"
PRISM_BIN = ROOT / ".prism" / "node_modules" / ".bin" / "prism"
STREAM_SUFFIX = "#stream"


class SpecFix(NamedTuple):
    """One value of the spec replaced for Prism: where (keys from the root), what the spec has
    there (checked, so a changed spec fails loudly instead of silently losing the fix), what
    Prism gets instead, and why."""

    at: tuple[str, ...]
    was: Any
    now: Any
    why: str


_SCHEMAS = ("components", "schemas")

SPEC_FIXES: tuple[SpecFix, ...] = (
    # ---------------------------------------------------------------- request side: one spec bug
    SpecFix(
        (*_SCHEMAS, "ChatCompletionRequest", "properties", "logit_bias", "propertyNames"),
        {"type": "integer", "format": "int32", "minimum": 0},
        {"type": "string", "pattern": "^[0-9]+$"},
        "JSON object keys are strings, so `propertyNames: {type: integer}` (the spec's rendering of a "
        "Rust HashMap<u32, f32>) refuses every non-empty logit_bias, the spec's own example included; "
        "a string of digits is what the spec means (CompletionsRequest already says `type: string`)",
    ),
    # --------------------------------------------------------------- response side: spec bugs
    SpecFix(
        (*_SCHEMAS, "PromptTokensDetails", "required"),
        ["audio_tokens", "cached_tokens"],
        [],
        "over-required (shared/docs/atoma-api.md 9.1 #9): vLLM, the proxy's upstream, sends only "
        "cached_tokens; the SDK's PromptTokensDetails has both optional",
    ),
    SpecFix(
        (*_SCHEMAS, "Usage", "required"),
        ["prompt_tokens", "completion_tokens", "total_tokens", "completion_tokens_details", "prompt_tokens_details"],
        ["prompt_tokens", "total_tokens"],
        "over-required (shared/docs/atoma-api.md section 7): the proxy's Rust Usage (completions and "
        "confidential answers) has only prompt_tokens, completion_tokens?, total_tokens and "
        "completion_tokens_details?, and an embeddings answer sealed for confidential compute carries "
        "prompt_tokens and total_tokens only",
    ),
)


def apply_fix(spec: dict[str, Any], fix: SpecFix) -> None:
    """Replace the value at `fix.at`, after checking it is still `fix.was`."""
    *parents, last = fix.at
    node = spec
    for key in parents:
        node = node[key]
    if node.get(last) != fix.was:
        raise AssertionError(f"the spec changed at {'/'.join(fix.at)}: {node.get(last)!r}; revisit {fix}")
    node[last] = copy.deepcopy(fix.now)


def merge_stream_operations(spec: dict[str, Any]) -> None:
    """Fold each `<path>#stream` operation into `<path>`'s.

    A URL never carries its fragment, so Prism can route no request to a `#stream` path: every
    stream request would be checked against the non-stream operation and its SSE answer refused
    as "not application/json". The merged operation checks a request with `"stream": true` against
    the stream operation's schema and any other against the plain one (if/then/else, which is how
    the proxy itself tells the two apart), and accepts the stream's `text/event-stream` answer.
    That answer keeps no schema: Prism would validate the whole event-stream text as one JSON value.
    """
    paths: dict[str, Any] = spec["paths"]
    for stream_path in [p for p in paths if p.endswith(STREAM_SUFFIX)]:
        stream_ops = paths.pop(stream_path)
        plain_ops = paths[stream_path.removesuffix(STREAM_SUFFIX)]
        for method, stream_op in stream_ops.items():
            plain_op = plain_ops[method]
            body = plain_op["requestBody"]["content"]["application/json"]
            body["schema"] = {
                "if": {"type": "object", "required": ["stream"], "properties": {"stream": {"const": True}}},
                "then": stream_op["requestBody"]["content"]["application/json"]["schema"],
                "else": body["schema"],
            }
            answers = plain_op["responses"]["200"]["content"]
            for media_type, content in stream_op["responses"]["200"]["content"].items():
                answers[media_type] = {k: v for k, v in content.items() if k != "schema"}


def load_spec() -> dict[str, Any]:
    """tests/data/atoma-openapi.yaml, parsed (with libyaml where present: 15x faster)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec: dict[str, Any] = yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=loader)
    return spec


def spec_for_prism() -> dict[str, Any]:
    """The spec as Prism gets it: tests/data/atoma-openapi.yaml with SPEC_FIXES and merged streams."""
    spec = load_spec()
    for fix in SPEC_FIXES:
        apply_fix(spec, fix)
    merge_stream_operations(spec)
    return spec


def missing_reason() -> str | None:
    """Why Prism cannot run here (a message for pytest.skip), or None when it can."""
    if PRISM_BIN.exists():
        return None
    if shutil.which("npm") is None or shutil.which("node") is None:
        return "Prism tests need npm and Node.js (not found on PATH): install them, then `make test`"
    return "Prism is not installed: run `make .prism/.installed` (npm ci into .prism/)"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Prism(NamedTuple):
    """A running Prism proxy: its URL, the port it forwards to, and its log file."""

    url: str
    upstream_port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def running_prism(start_timeout: float = 60.0) -> Iterator[Prism]:
    """Start `prism proxy --errors` on a free loopback port, forwarding to another free port where
    the caller runs the sandbox; stop it by its PID at the end."""
    port, upstream_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="prism-") as tmp:
        spec_file, log = Path(tmp) / "atoma-openapi.json", Path(tmp) / "prism.log"
        # default=str: YAML reads one `created` example as a date; examples play no part in proxy mode.
        spec_file.write_text(json.dumps(spec_for_prism(), default=str), encoding="utf-8")
        command = [str(PRISM_BIN), "proxy", str(spec_file), f"http://127.0.0.1:{upstream_port}"]
        flags = ["--host", "127.0.0.1", "--port", str(port), "--errors", "--cors=false", "-v", "warn"]
        with log.open("wb") as out:
            proc = subprocess.Popen([*command, *flags], stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
        prism = Prism(f"http://127.0.0.1:{port}", upstream_port, log)
        try:
            deadline = time.monotonic() + start_timeout
            while not _listening(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Prism did not start (rc={proc.poll()}):\n{prism.log_text()}")
                time.sleep(0.1)
            yield prism
        finally:
            stop_process(proc)
