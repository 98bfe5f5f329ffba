"""The API reference (docs/reference/, expanded by docs/_tools/mkdocs_hooks.py) covers every public
name: each module's `__all__`, read at run time, so a name added there appears with no edit to the
pages, at a path griffe (mkdocstrings' static loader) can find. `make test` also builds the whole
site strictly (`make docs-build`), which fails on a path griffe cannot resolve."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("mkdocs", reason='the docs extra is not installed (pip install -e ".[docs]")')
griffe = pytest.importorskip("griffe")

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    """docs/_tools/mkdocs_hooks.py, loaded as MkDocs loads it, with the reference pages found."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs/_tools/mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    for page in sorted(REFERENCE.glob("*.md")):
        for name in module.MARKER.findall(page.read_text()):
            module._pages[name] = f"reference/{page.name}"
    return module


@pytest.fixture(scope="module")
def static_view() -> dict[str, object]:
    """griffe's view of both packages, read from the source as mkdocstrings reads it."""
    return {top: griffe.load(top, search_paths=[str(ROOT)]) for top in ("atoma_core", "atoma_funcs")}


REQUIRED = [
    "atoma_funcs",
    "atoma_core",
    "atoma_core.models",
    "atoma_core.errors",
    "atoma_core.config",
    "atoma_core.testing",
    "atoma_core.otel",
]


def test_every_required_module_has_a_page(hooks: ModuleType) -> None:
    assert set(REQUIRED) <= set(hooks._pages) == set(PAGES)


# Every module with a reference page, found as the hook finds them.
PAGES = sorted(
    {m for p in REFERENCE.glob("*.md") for m in re.findall(r"<!--\s*reference:\s*([\w.]+)", p.read_text())}
)


@pytest.mark.parametrize("module_name", PAGES)
def test_every_public_name_is_rendered_where_griffe_finds_it(
    hooks: ModuleType, static_view: dict[str, Any], module_name: str
) -> None:
    module = import_module(module_name)
    entries = hooks.entries(module_name)
    own_pages = {name for name in module.__all__ if f"{module_name}.{name}" in hooks._pages}
    submodules = {n for n in module.__all__ if inspect.ismodule(getattr(module, n))}
    assert {e.name for e in entries} == set(module.__all__) - own_pages - (submodules - {
        e.name for e in entries if e.kind == "module"
    })  # fmt: skip
    paths = [e.path for e in entries if e.kind != "module"]
    paths += [m.path for e in entries if e.kind == "module" for m in hooks.entries(e.path)]
    for path in paths:
        top, _, rest = path.partition(".")
        assert static_view[top][rest] is not None, path
    for entry in entries:  # documented once: here, or on the page of a more specific module
        assert entry.page in hooks._pages.values(), entry


def test_a_name_griffe_cannot_see_falls_back_to_where_it_is_defined(hooks: ModuleType) -> None:
    """A name added to `__all__` and `_LAZY` but not to the TYPE_CHECKING imports still renders."""
    import atoma_funcs
    from atoma_funcs._chat import chat_create

    fake = ModuleType("atoma_funcs")
    fake.__all__ = ["brand_new"]  # type: ignore[attr-defined]
    fake.brand_new = chat_create  # type: ignore[attr-defined]
    assert hooks._defined_path(fake, "brand_new", chat_create) == (
        "atoma_funcs._chat.chat_create",
        "function",
    )
    assert hooks._defined_path(atoma_funcs, "chat_create", chat_create) == (
        "atoma_funcs.chat_create",
        "function",
    )
