"""Every runnable ```python block of docs/guides/resilience.md runs (each starts its own sandbox
servers) and prints what its comments say."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from .readme_snippets import snippets

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "resilience.md"
BLOCKS = snippets(GUIDE.read_text())
EXPECTED = {
    "fallbacks-1": ["main-model True", "tried main-model InternalServerError", "InternalServerError"],
    "a-hedged-first-token-1": ["hedged: True", "'hedged': 1"],
    "circuit-breakers-1": ["circuit m: closed -> open", '"open"', "after waiting: True"],
    "one-rate-limit-across-processes-1": ["10 calls took"],
    "all-together-1": ["True True"],
}


def test_every_block_is_checked() -> None:
    runnable = {b.name for b in BLOCKS if b.not_run is None}
    assert runnable == set(EXPECTED)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.not_run is None], ids=lambda b: b.name)
async def test_block_runs(block: Any, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    await asyncio.to_thread(exec, block.compiled(), namespace)  # a script: it calls asyncio.run
    out = capsys.readouterr().out
    for piece in EXPECTED[block.name]:
        assert piece in out, out
