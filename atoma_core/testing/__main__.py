"""Run the sandbox on its own: `python -m atoma_core.testing [--port 8000] [--token T]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from ._server import Sandbox


async def _serve(args: argparse.Namespace) -> None:
    async with Sandbox(
        token=args.token, host=args.host, port=args.port, chunk_delay=args.chunk_delay
    ) as sandbox:
        print(sandbox.url, flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m atoma_core.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between stream chunks")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
