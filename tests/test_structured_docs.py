"""Every ```python block of docs/guides/structured-outputs.md runs against the sandbox (as the
README's do: tests/readme_snippets.py's conventions, the quick start's names for fragments)."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from atoma_core import AtomaCore
from atoma_core.testing import Sandbox
from atoma_funcs import AtomaSDK

from .conftest import TOKEN
from .readme_snippets import Snippet, snippets

PAGE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "structured-outputs.md"
SNIPPETS = snippets(PAGE.read_text())
MODEL = "meta-llama/Llama-3.3-70B-Instruct"


def _compiled(snippet: Snippet) -> CodeType:
    """Compiled as a reader's file would be: without this module's `from __future__ import
    annotations` (compile() inherits it), which would leave the blocks' Struct annotations as
    strings that msgspec resolves in the wrong module."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    return compile(snippet.code, f"{PAGE.name}:{snippet.line}", "exec", flags=flags, dont_inherit=True)


async def _run(snippet: Snippet) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "structured_outputs_page"}
    if not snippet.awaits:
        await asyncio.to_thread(exec, _compiled(snippet), namespace)
        return namespace
    core = AtomaCore()
    prelude = {
        "core": core,
        "sdk": AtomaSDK(core=core),
        "request": {"model": MODEL, "messages": [{"role": "user", "content": "Hello from the prelude"}]},
        "model": MODEL,
        "messages": [{"role": "user", "content": "one two three"}],
    }
    namespace.update({name: prelude[name] for name in snippet.free_prelude_names()})
    try:
        await eval(_compiled(snippet), namespace)
    finally:
        await core.close()
    return namespace


def test_the_page_has_its_blocks() -> None:
    assert len(SNIPPETS) >= 6 and all(s.not_run is None for s in SNIPPETS)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.name for s in SNIPPETS])
async def test_block_runs(
    snippet: Snippet, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATOMASDK_SERVER_URL", sandbox.url)
    monkeypatch.setenv("ATOMASDK_BEARER_AUTH", TOKEN)
    await _run(snippet)
    assert capsys.readouterr().out.strip()  # every block shows something
