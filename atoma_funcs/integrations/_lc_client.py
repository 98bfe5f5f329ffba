"""What `ChatAtoma` and `AtomaEmbeddings` share: the core they call (yours, or one made from
LangChain's connection parameters) and the loop thread their sync methods run on, closed with
them."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING

from pydantic import SecretStr

from atoma_core.core import AtomaCore

if TYPE_CHECKING:
    from .._sync import LoopThread

__all__ = ["AtomaClient"]


def _close_thread(thread: LoopThread, core: AtomaCore) -> None:
    with contextlib.suppress(Exception):  # called from a finaliser: nothing may escape
        thread.close(core)


class AtomaClient:
    """What ChatAtoma and AtomaEmbeddings share: the core they call (yours, or one made from the
    LangChain-style parameters), and the loop thread their sync methods run on."""

    _core: AtomaCore | None
    _thread: LoopThread | None
    _lock: threading.Lock

    core: AtomaCore | None
    api_key: SecretStr | None
    base_url: str | None
    timeout: float | None
    max_retries: int | None

    def _atoma_core(self) -> AtomaCore:
        if self.core is not None:
            return self.core
        with self._lock:
            return self._atoma_core_unlocked()

    def _loop_thread(self) -> LoopThread:
        with self._lock:
            if self._thread is None:
                from .._sync import LoopThread

                self._thread = thread = LoopThread()
                # Dropped without a close: close the core's session on that loop, then stop it
                # (not left to the garbage collector, which may take the connector first).
                weakref.finalize(self, _close_thread, thread, self._atoma_core_unlocked())
            return self._thread

    def _atoma_core_unlocked(self) -> AtomaCore:
        if self.core is not None:
            return self.core
        if self._core is None:
            key = None if self.api_key is None else self.api_key.get_secret_value()
            self._core = AtomaCore(key, self.base_url, timeouts=self.timeout, retry_config=self.max_retries)
        return self._core
