"""`python -m atoma_funcs` and the `atoma` console script: see `atoma --help`."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from ._cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
