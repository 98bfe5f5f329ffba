"""docs/_tools/check_site.py (run by `make docs`) passes a page that renders and fails one that
does not: a console error, a failed request, a code block that is not shown. Real headless
Chromium over loopback; skipped where Chromium is not installed (`make docs` installs it)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make docs installs it)")

PAGE = """<!doctype html><html><head><title>{title}</title><link rel="icon" href="data:,"></head><body>
<div class="md-content"><article><h1>{title}</h1>
<pre><code>print("hello")</code></pre>{extra}</article></div></body></html>"""


def _check_site() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_check_site", ROOT / "docs/_tools/check_site.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _page(root: Path, path: str, title: str, extra: str = "") -> Path:
    page = root / path / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(PAGE.format(title=title, extra=extra))
    return page


async def test_good_pages_pass_and_broken_ones_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check = _check_site()
    assert CHROMIUM is not None
    pages = [
        _page(tmp_path, ".", "Home"),
        _page(tmp_path, "guide", "A guide"),
        _page(tmp_path, "noisy", "Noisy", '<script>console.error("boom")</script>'),
        _page(tmp_path, "hidden", "Hidden", '<pre style="display:none"><code>x = 1</code></pre>'),
        _page(tmp_path, "missing", "Missing", '<img src="/nowhere.png">'),
    ]
    assert await check.check_site(tmp_path, pages, CHROMIUM) == 1
    out = capsys.readouterr().out
    assert "ok   /: 1 code blocks" in out and "ok   /guide/: 1 code blocks" in out, out
    assert "FAIL /noisy/" in out and "console: boom" in out, out
    assert "FAIL /hidden/" in out and "1 code blocks shown of 2" in out, out
    assert "FAIL /missing/" in out and "404" in out and "image not shown" in out, out
    assert "2 of 5 pages render in Chromium, 3 FAILED" in out, out
