"""A local Atoma-like server for tests (yours and ours): `Sandbox`, plus scripted `faults`.

    from atoma_core.testing import Sandbox, faults
    async with Sandbox() as sandbox:
        sandbox.script(faults.status(429, headers={"Retry-After": "0"}))
        core = AtomaCore(server_url=sandbox.url)

Never imported by the SDK's functions (it needs aiohttp.web).
"""

from __future__ import annotations

from . import _faults as faults
from ._faults import Fault
from ._node import OpenedRequest, SandboxNode, tamper_ciphertext, wrong_response_hash
from ._server import RecordedRequest, Sandbox
from ._sui import SuiChain
from ._thread import sandbox_in_thread

__all__ = [
    "Fault",
    "OpenedRequest",
    "RecordedRequest",
    "Sandbox",
    "SandboxNode",
    "SuiChain",
    "faults",
    "sandbox_in_thread",
    "tamper_ciphertext",
    "wrong_response_hash",
]
