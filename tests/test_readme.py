"""Every ```python block of README.md and of every page under docs/ runs against the sandbox and
passes mypy --strict.

The environment points the SDK at a sandbox (ATOMASDK_SERVER_URL, ATOMASDK_BEARER_AUTH), as a
reader trying the docs would; a block that needs a real key reads it from there too. How blocks
are found, wrapped and given the quick start's names is in tests/readme_snippets.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atoma_core import AtomaCore
from atoma_core.testing import Sandbox
from atoma_funcs import AtomaSDK

from .conftest import TOKEN
from .readme_snippets import Snippet, all_snippets, snippets
from .usercheck import Report

SNIPPETS = all_snippets()
MODEL = "meta-llama/Llama-3.3-70B-Instruct"


def _prelude() -> dict[str, Any]:
    """The names a fragment may use (readme_snippets.PRELUDE), made from the environment."""
    core = AtomaCore()
    return {
        "core": core,
        "sdk": AtomaSDK(core=core),
        "request": {"model": MODEL, "messages": [{"role": "user", "content": "Hello from the prelude"}]},
        "model": MODEL,
        "messages": [{"role": "user", "content": "one two three"}],
    }


# ------------------------------------------------------------------ what each block must do

Output = pytest.CaptureFixture[str]
Check = Callable[[Output, Sandbox, dict[str, Any]], Awaitable[None]]


def _prints(*pieces: str) -> Check:
    async def check(output: Output, sandbox: Sandbox, namespace: dict[str, Any]) -> None:
        out = output.readouterr().out
        for piece in pieces:
            assert piece in out, out

    return check


async def _hooks_fire(output: Output, sandbox: Sandbox, namespace: dict[str, Any]) -> None:
    """The block only builds a client with hooks: make a call with it and see them print."""
    sdk = namespace["sdk"]
    await sdk.chat.create(model="m", messages=[{"role": "user", "content": "hooked"}])
    out = output.readouterr().out
    assert out.startswith("chat_completions_create attempt 1: 200 in "), out
    assert out.rstrip().endswith("request id chatcmpl-000001"), out


async def _configured(output: Output, sandbox: Sandbox, namespace: dict[str, Any]) -> None:
    sent = sandbox.requests[-1].headers
    assert sent["X-Trace"] == "1" and sent["X-Team"] == "search", sent


async def _debug_logging(output: Output, sandbox: Sandbox, namespace: dict[str, Any]) -> None:
    assert logging.getLogger("atoma").level == logging.DEBUG


# By block id (its file, then the section's heading as a slug, numbered). A block without an
# entry must still run.
CHECKS: dict[str, Check] = {
    "README.md#quick-start-standalone-functions-result-style-1": _prints(
        "You said: Hello! Usage(prompt_tokens=4,"
    ),
    "README.md#quick-start-standalone-functions-result-style-2": _prints("You said: Hello from the prelude"),
    "README.md#quick-start-the-bundled-client-raises-1": _prints("You said: Hello! Usage("),
    "README.md#streaming-1": _prints("You said: Hi", "StreamMetrics("),
    "docs/index.md#start-here-1": _prints("You said: Hi!"),
    "docs/getting-started.md#first-the-sandbox-1": _prints("You said: Hello, sandbox!"),
    "docs/getting-started.md#then-a-real-key-1": _prints("You said: Hello! Usage(prompt_tokens=4,"),
    "docs/guides/styles.md#the-result-style-1": _prints("You said: Hello from the prelude"),
    "docs/guides/styles.md#the-class-style-the-bundled-client-raises-1": _prints("You said: Hello! Usage("),
    "docs/guides/styles.md#synchronous-use-atomasyncsdk-1": _prints("You said: Hello!", "Usage("),
    "docs/guides/styles.md#synchronous-use-atomasyncsdk-2": _prints("You said: Hello, thread!"),
    "docs/guides/operations.md#every-operation-1": _prints("sandbox-model"),
    "docs/guides/operations.md#every-operation-2": _prints("You said: Once upon a time", "ok\n", "dict"),
    "docs/guides/operations.md#every-operation-3": _prints("You said: Once upon a time", "ok\n"),
    "docs/guides/operations.md#tool-calling-1": _prints('Tool said: {"words": 7}'),
    "docs/guides/streaming.md#reading-a-stream-1": _prints("You said: Hi", "StreamMetrics("),
    "docs/guides/streaming.md#with-the-bundled-client-1": _prints(
        "You said: one two three", "first token after"
    ),
    "docs/guides/streaming.md#deadlines-1": _prints("gave up: idle; kept 'You said:"),
    "docs/guides/errors.md#retries-1": _prints(
        "You said: hi after 3 attempts", "RateLimitError after 3 attempts"
    ),
    "docs/guides/limits.md#limits-and-hostile-servers-1": _prints(
        "ResponseTooLargeError\n307 http://elsewhere.invalid/\nResponseValidationError"
    ),
    "docs/guides/confidential-compute.md#confidential-compute-1": _prints(
        "You said: our merger plans", "Usage("
    ),
    "docs/guides/configuration.md#configuration-1": _configured,
    "docs/guides/tracing.md#hooks-1": _hooks_fire,
    "docs/guides/tracing.md#logging-1": _debug_logging,
    "docs/migration/atoma-sdk.md#the-client-1": _prints("You said: Hello!"),
    "docs/migration/atoma-sdk.md#confidential-compute-1": _prints("You said: sealed to the node", "Usage("),
    "docs/migration/openai.md#the-client-1": _prints("You said: Hello!"),
    "docs/migration/openai.md#streams-1": _prints("You said: one two three", "Usage("),
    "docs/guides/resilience.md#fallbacks-1": _prints(
        "main-model True", "tried main-model InternalServerError"
    ),
    "docs/guides/resilience.md#a-hedged-first-token-1": _prints("hedged: True", "'hedged': 1"),
    "docs/guides/resilience.md#circuit-breakers-1": _prints(
        "closed -> open", '"open"', "after waiting: True"
    ),
    "docs/guides/resilience.md#one-rate-limit-across-processes-1": _prints("10 calls took"),
    "docs/guides/resilience.md#all-together-1": _prints("True True"),
}


@pytest.fixture(autouse=True)
def readme_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A reader's shell aimed at the sandbox; the logging setup a block may change is put back."""
    monkeypatch.setenv("ATOMASDK_SERVER_URL", sandbox.url)
    monkeypatch.setenv("ATOMASDK_BEARER_AUTH", TOKEN)
    root, atoma = logging.getLogger(), logging.getLogger("atoma")
    saved = (list(root.handlers), root.level, atoma.level)
    yield
    root.handlers[:], atoma.level = saved[0], saved[2]
    root.setLevel(saved[1])


async def _run(snippet: Snippet) -> dict[str, Any]:
    """Run a block: a fragment on this loop with the prelude's names, a script in a thread (it may
    call asyncio.run). Cores and clients it leaves open are closed, as its reader would."""
    code = snippet.compiled()
    namespace: dict[str, Any] = {"__name__": "__main__"}
    if snippet.awaits:
        prelude = _prelude()
        namespace.update({name: prelude[name] for name in snippet.free_prelude_names()})
        try:
            await eval(code, namespace)
        finally:
            await prelude["core"].close()
    else:
        await asyncio.to_thread(exec, code, namespace)
    return namespace


async def _close_leftovers(namespace: dict[str, Any]) -> None:
    for value in list(namespace.values()):
        if isinstance(value, (AtomaCore, AtomaSDK)):
            await value.close()


def _run_as_pytest_file(snippet: Snippet, tmp_path: Path) -> None:
    """A test module: run by pytest in a fresh project, with no configuration (pytest-asyncio's
    default strict mode) and no plugin but pytest-asyncio, as a reader would paste it."""
    (tmp_path / "test_readme_example.py").write_text(snippet.code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATOMASDK_", "PYTEST_", "PYTHONDEVMODE"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pytest_asyncio.plugin", "-W", "error::ResourceWarning"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout, done.stdout


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
async def test_block_runs(
    snippet: Snippet, sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if snippet.not_run is not None:
        pytest.skip(f"{snippet.source}:{snippet.line} is marked not-run: {snippet.not_run}")
    if snippet.is_pytest_file:
        await asyncio.to_thread(_run_as_pytest_file, snippet, tmp_path)
        return
    namespace = await _run(snippet)
    try:
        check = CHECKS.get(snippet.id)
        if check is not None:
            await check(capsys, sandbox, namespace)
    finally:
        await _close_leftovers(namespace)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_block_type_checks(snippet: Snippet, user_mypy: Report) -> None:
    """mypy --strict, as a user runs it (tests/usercheck.py); errors point at the Markdown's lines."""
    _, offset = snippet.checked_source()
    found = [
        f"{snippet.source}:{snippet.line + line - 1 - offset}: {message} [{code}]"
        for line, code, message in user_mypy.errors.get(snippet.module, [])
    ]
    assert not found, "\n".join(found)


def test_every_check_names_a_block() -> None:
    """A renamed heading must not silently drop a block's check."""
    assert set(CHECKS) <= {s.id for s in SNIPPETS}
    assert len(SNIPPETS) >= 12


def test_every_docs_page_is_searched() -> None:
    """A page added under docs/ is found with no change to the tests; ids are unique."""
    found = {s.source for s in SNIPPETS}
    assert "README.md" in found and any(source.startswith("docs/guides/") for source in found)
    assert len({s.id for s in SNIPPETS}) == len(SNIPPETS)
    assert len({s.module for s in SNIPPETS}) == len(SNIPPETS)


def test_blocks_are_found_and_marked() -> None:
    text = (
        "# Top\n\n```python\nx = 1\n```\n\n## Two words\n\n<!-- not-run: needs a GPU -->\n"
        "```python\nawait core.close()\n```\n\n```bash\nnot python\n```\n\n```python\nprint(sdk)\n```\n"
    )
    first, second, third = snippets(text)
    assert (first.name, first.line, first.code, first.not_run, first.awaits) == (
        "top-1",
        4,
        "x = 1\n",
        None,
        False,
    )
    assert (second.name, second.line, second.not_run, second.awaits) == (
        "two-words-1",
        11,
        "needs a GPU",
        True,
    )
    assert second.free_prelude_names() == ["core"]
    assert (third.name, third.not_run) == ("two-words-2", None)
    assert (first.id, first.module) == ("README.md#top-1", "snippet_readme_top_1")
    # A marker further up, then another comment right before a fence: that block runs.
    late, marked = snippets(
        "<!-- not-run: a -->\n```python\nx = 1\n```\n<!-- b -->\n```python\ny = 2\n```\n"
        "<!-- not-run: c -->\n```python\nz = 3\n```\n"
    )[1:]
    assert (late.not_run, marked.not_run) == (None, "c")
    (page,) = snippets("## Deep\n\n```python\ny = 2\n```\n", Path("docs/guides/x-y.md"))
    assert (page.id, page.module) == ("docs/guides/x-y.md#deep-1", "snippet_docs_guides_x_y_deep_1")
    source, offset = second.checked_source()
    assert source.splitlines()[offset] == "    await core.close()"
    assert "async def snippet(core: _AtomaCore) -> None:" in source
