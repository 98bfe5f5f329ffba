"""`sandbox_in_thread`: the sandbox on an event loop of its own, in a daemon thread, for code
under test that is synchronous or owns the main thread's loops (serverless handlers that call
`asyncio.run`, Ray drivers, WSGI apps)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Iterator

from ._server import Sandbox

__all__ = ["sandbox_in_thread"]


@contextlib.contextmanager
def sandbox_in_thread(**options: Any) -> Iterator[Sandbox]:
    """`with sandbox_in_thread() as sandbox: ... sandbox.url`: started on entry, closed (and its
    thread ended) on exit. `options` go to `Sandbox`."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="atoma-sandbox", daemon=True)
    thread.start()
    try:
        sandbox = asyncio.run_coroutine_threadsafe(Sandbox(**options).start(), loop).result()
        try:
            yield sandbox
        finally:
            asyncio.run_coroutine_threadsafe(sandbox.close(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
