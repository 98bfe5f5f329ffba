"""The ```python blocks of README.md and of every page under docs/, as tests/test_readme.py runs
and type-checks them. A new page is picked up with no change here.

A block with top-level `await` is a fragment that continues the quick start: it may use the names
in `PRELUDE` without defining them (a core, a client, a request...). To run, it is executed as
top-level-await code with those names filled in; to type-check, it becomes the body of an
`async def` taking them as typed parameters. Any other block is a whole script, run and checked
as it is. A block marked `<!-- not-run: why -->` right before its fence is type-checked, not run.
Only ```python fences count: the migration pages fence other SDKs' code as ```py, shown only.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import CodeType

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

# What a fragment may use without defining it, with the type it has there.
PRELUDE = {
    "core": "_AtomaCore",
    "sdk": "_AtomaSDK",
    "request": "_ChatCompletionRequestParam",
    "model": "str",
    "messages": "list[_ChatCompletionMessageParam]",
}
# Imported under private names, so a block that forgets an import of its own still fails.
_PRELUDE_IMPORTS = """\
from atoma_core import AtomaCore as _AtomaCore
from atoma_core.types import ChatCompletionMessageParam as _ChatCompletionMessageParam
from atoma_core.types import ChatCompletionRequestParam as _ChatCompletionRequestParam
from atoma_funcs import AtomaSDK as _AtomaSDK
"""

_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# The marker right before the fence: its reason never spans another comment's end.
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*((?:(?!-->).)*?)\s*-->\s*\Z", re.S)
_HEADING = re.compile(r"^#+\s+(.*)$", re.M)
_ANY_FENCE = re.compile(r"^```.*?^```", re.S | re.M)  # a `# comment` inside one is not a heading


@dataclass(frozen=True)
class Snippet:
    """One ```python block: where it is, its code, and why it is not run (if it is marked so)."""

    name: str  # the heading it is under, as a slug, numbered within that section
    line: int  # the line of its file its code starts on
    code: str
    not_run: str | None
    source: str = "README.md"  # its file, relative to the repository

    @property
    def id(self) -> str:
        """Unique across files: `README.md#section-1`, `docs/guides/batch.md#batch-jobs-2`."""
        return f"{self.source}#{self.name}"

    @property
    def module(self) -> str:
        """The name of its file in the type-checked user project."""
        return "snippet_" + re.sub(
            r"[^a-z0-9]+", "_", f"{self.source.removesuffix('.md')}_{self.name}".lower()
        )

    def compiled(self) -> CodeType:
        """Compiled as a reader's file would be: `dont_inherit` keeps this module's `from
        __future__ import annotations` out, which would leave a block's Struct annotations as
        strings that msgspec resolves in the wrong module."""
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        return compile(self.code, f"{self.source}:{self.line}", "exec", flags=flags, dont_inherit=True)

    @property
    def awaits(self) -> bool:
        """A fragment with top-level `await` (else a whole script)."""
        return bool(self.compiled().co_flags & inspect.CO_COROUTINE)

    @property
    def is_pytest_file(self) -> bool:
        return "import pytest" in self.code and "def test_" in self.code

    def free_prelude_names(self) -> list[str]:
        """The `PRELUDE` names it uses without defining them."""
        used: set[str] = set()
        bound: set[str] = set()
        for node in ast.walk(ast.parse(self.code)):
            if isinstance(node, ast.Name):
                (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
        return [name for name in PRELUDE if name in used and name not in bound]

    def checked_source(self) -> tuple[str, int]:
        """The file mypy checks, and how many lines precede the block's first line in it."""
        if not self.awaits:
            return self.code, 0
        params = ", ".join(f"{name}: {PRELUDE[name]}" for name in self.free_prelude_names())
        head = f"{_PRELUDE_IMPORTS}\n\nasync def snippet({params}) -> None:\n"
        return head + textwrap.indent(self.code, "    "), head.count("\n")


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def sources() -> list[Path]:
    """README.md, then every Markdown page under docs/."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def all_snippets() -> list[Snippet]:
    """Every ```python block of README.md and of the docs, file by file, in order."""
    return [snippet for path in sources() for snippet in snippets(path.read_text(), path.relative_to(ROOT))]


def snippets(text: str | None = None, source: Path = Path("README.md")) -> list[Snippet]:
    """Every ```python block of README.md (or of `text`, the contents of `source`), in order."""
    text = README.read_text() if text is None else text
    found: list[Snippet] = []
    counts: dict[str, int] = {}
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        headings = _HEADING.findall(_ANY_FENCE.sub("", before))
        section = _slug(headings[-1]) if headings else "top"
        counts[section] = counts.get(section, 0) + 1
        marker = _NOT_RUN.search(before.rstrip("\n"))
        found.append(
            Snippet(
                name=f"{section}-{counts[section]}",
                line=before.count("\n") + 2,
                code=match.group(1),
                not_run=marker.group(1) if marker else None,
                source=source.as_posix(),
            )
        )
    return found
