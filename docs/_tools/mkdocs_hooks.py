"""MkDocs hooks (mkdocs.yml `hooks:`): the API reference driven by each module's `__all__`, and
the benchmark chart served from benchmarks/ without a copy under docs/.

A reference page holds one line `<!-- reference: atoma_core.errors -->`; at build time it becomes
the module's docstring plus a `::: path` block (mkdocstrings) per public name, read from the
module's `__all__` at run time. griffe reads code statically and cannot follow the packages' lazy
PEP 562 `__getattr__`, so each name is rendered at the path where it is defined (its
`__module__`), and a name that another reference page also exports (e.g. `atoma_core.Hooks`,
defined in `atoma_core.config`) is documented once, on the page of the most specific module, and
linked from the others. A name someone adds to an `__all__` appears with no edit here.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

import griffe
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

MARKER = re.compile(r"^<!--\s*reference:\s*([\w.]+)\s*-->\s*$", re.M)
ROOT = Path(__file__).resolve().parents[2]
# Files outside docs/ that pages link to, served at the same path as in the repository.
EXTERNAL_FILES = ("benchmarks/RESULTS.svg",)


@dataclass(frozen=True)
class Entry:
    """One public name of a reference page: what it is, and where mkdocstrings finds it."""

    name: str
    path: str  # the dotted path griffe renders (and autorefs links to)
    kind: str  # "class", "function", "attribute" or "module" (a namespace without a page of its own)
    page: str  # src_uri of the page that documents it in full


_pages: dict[str, str] = {}  # module -> src_uri of its reference page
_packages: dict[str, griffe.Object | griffe.Alias] = {}  # top-level package -> griffe's static view of it


def on_files(files: Files, config: MkDocsConfig) -> Files:
    _pages.clear()
    _packages.clear()
    for file in files.documentation_pages():
        for module in MARKER.findall(Path(file.abs_src_path or "").read_text(encoding="utf-8")):
            _pages[module] = file.src_uri
    for relative in EXTERNAL_FILES:
        files.append(File.generated(config, relative, abs_src_path=str(ROOT / relative)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return MARKER.sub(lambda match: _render(match.group(1), page.file.src_uri), markdown)


def _statically_visible(path: str) -> bool:
    """Whether griffe, reading the source, finds `path` (a TYPE_CHECKING import counts)."""
    top, _, rest = path.partition(".")
    if top not in _packages:
        _packages[top] = griffe.load(top, search_paths=[str(ROOT)])
    try:
        _packages[top][rest]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    return True


def _defined_path(module: ModuleType, name: str, value: Any) -> tuple[str, str]:
    """(dotted path mkdocstrings renders `value` at, its kind): the public one where griffe can
    see it, else where it is defined (a name missing from the TYPE_CHECKING imports)."""
    public = f"{module.__name__}.{name}"
    if inspect.isclass(value) or inspect.isfunction(value):
        kind = "class" if inspect.isclass(value) else "function"
        if _statically_visible(public):
            return public, kind
        return f"{value.__module__}.{value.__qualname__}", kind
    return public, "attribute"  # an alias, constant or Literal: defined where it is exported


def entries(module_name: str) -> list[Entry]:
    """The public names of `module_name` in the order shown: classes and functions (the more
    numerous kind first), then constants and aliases, then namespaces; else as in `__all__`."""
    module = import_module(module_name)
    found: list[Entry] = []
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.ismodule(value):
            if value.__name__ not in _pages and f"{module_name}.{name}" not in _pages:
                found.append(Entry(name, value.__name__, "module", _pages.get(module_name, "")))
            continue  # else a submodule with its own page
        path, kind = _defined_path(module, name, value)
        found.append(Entry(name, path, kind, _home(module_name, value)))
    # The kind a module is mostly made of comes first (atoma_funcs: its functions).
    functions_first = sum(e.kind == "function" for e in found) > sum(e.kind == "class" for e in found)
    order = {"class": int(functions_first), "function": int(not functions_first), "attribute": 2, "module": 3}
    return sorted(found, key=lambda entry: order[entry.kind])


def _home(module_name: str, value: Any) -> str:
    """The page documenting `value` in full: the most specific documented module exporting it."""
    best = module_name
    for other in _pages:
        if other.startswith(module_name + ".") and len(other) > len(best):
            exported = import_module(other)
            if any(getattr(exported, n, None) is value for n in exported.__all__):
                best = other
    return _pages.get(best, "")


def _render(module_name: str, src_uri: str) -> str:
    """The Markdown that replaces a reference marker."""
    lines = [f"::: {module_name}", "    options:", "      members: false", "      show_root_heading: false"]
    lines.append("")
    elsewhere = []
    for entry in entries(module_name):
        if entry.page != src_uri:
            elsewhere.append(f"- [`{entry.name}`][{entry.path}]")
            continue
        if entry.kind == "module":  # e.g. `testing.faults`: a heading, then each of its names
            lines += [f"## `{entry.name}`", "", f"::: {entry.path}", "    options:", "      members: false",
                      "      show_root_heading: false", ""]  # fmt: skip
            for member in entries(entry.path):
                lines += [f"::: {member.path}", "    options:", "      heading_level: 3", ""]
            continue
        lines += [f"::: {entry.path}", "    options:", "      heading_level: 2", ""]
    if elsewhere:
        lines += ["## Also exported here", "", "Documented on the page of the module that defines them:", ""]
        lines += [*elsewhere, ""]
    return "\n".join(lines)
