"""Packaging metadata (issue 26, item 17): the licence as a PEP 639 SPDX expression (the
`{ text = ... }` table stops building with setuptools after 2027-02-18) and a description that
names what the SDK covers, as installed by `pip install -e .`."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def test_the_installed_metadata_has_an_spdx_licence_and_a_current_description() -> None:
    meta = importlib.metadata.metadata("atoma-async")
    assert meta.get("License-Expression") == "Apache-2.0"
    assert meta.get("License") is None  # the deprecated free-text field is gone
    summary = meta["Summary"]
    assert "chat completions API" not in summary
    for area in ("chat", "embeddings", "confidential"):
        assert area in summary


async def test_the_build_system_pins_a_setuptools_that_reads_spdx_licences() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = "Apache-2.0"$', text, re.MULTILINE)
    pin = re.search(r'requires = \["setuptools>=(\d+)"\]', text)
    assert pin is not None and int(pin.group(1)) >= 77  # setuptools 77 implements PEP 639
