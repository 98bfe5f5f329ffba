"""mypy --strict as a user of the installed package runs it: on files in a directory outside the
repository, with no configuration, finding atoma_core and atoma_funcs only through the
environment's site-packages (so an editable install that type checkers cannot follow shows up).

One mypy process checks every file at once; its cache lives in .mypy_cache/user-view.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".mypy_cache" / "user-view"
USER_CODE = Path(__file__).resolve().parent / "user_code"  # typing probes, copied out of the tree

_LINE = re.compile(
    r"^(?P<file>[^:\n]+\.py):(?P<line>\d+): error: (?P<message>.*?)(?:  \[(?P<code>[a-z-]+)\])?$"
)
# In a probe file, `# error: <code>` at the end of a line says mypy must report that error there.
EXPECTED = re.compile(r"#\s*error:\s*([a-z-]+)\s*$")


@dataclass
class Report:
    """What one mypy run said: errors by module name, as (line, code, message)."""

    returncode: int
    output: str
    errors: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)

    def codes(self, module: str) -> set[tuple[int, str]]:
        return {(line, code) for line, code, _ in self.errors.get(module, [])}


def probe_sources() -> dict[str, str]:
    """The probe files of tests/user_code/, by module name."""
    return {path.stem: path.read_text() for path in sorted(USER_CODE.glob("*.py"))}


def expected_errors(source: str) -> set[tuple[int, str]]:
    """The (line, code) pairs a probe file marks with `# error: <code>`."""
    found = set()
    for number, text in enumerate(source.splitlines(), 1):
        match = EXPECTED.search(text)
        if match:
            found.add((number, match.group(1)))
    return found


def run_mypy(directory: Path, sources: dict[str, str]) -> Report:
    """Write `sources` (module name -> code) into `directory` and type-check them all, from there."""
    assert ROOT not in directory.resolve().parents, "the user project must be outside the repository"
    for module, code in sources.items():
        (directory / f"{module}.py").write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONDEVMODE", "MYPY"))}
    done = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--config-file", "", "--no-error-summary",
            "--python-executable", sys.executable, "--cache-dir", str(CACHE),
            *(f"{module}.py" for module in sources),
        ],
        cwd=directory, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    report = Report(done.returncode, done.stdout + done.stderr)
    for line in done.stdout.splitlines():
        match = _LINE.match(line)
        if match:
            module = Path(match["file"]).stem
            entry = (int(match["line"]), match["code"] or "", match["message"])
            report.errors.setdefault(module, []).append(entry)
    return report
