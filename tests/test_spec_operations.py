"""Every operation of the Atoma spec (tests/data/atoma-openapi.yaml) has a public function in
`atoma_funcs`: each function below is run against the sandbox, the call-level hook records which
operationId it ran (with its method and path), and the spec's operationIds must all be among them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import atoma_funcs
from atoma_core import AtomaCore, Hooks
from atoma_core.config import CallInfo
from atoma_core.testing import Sandbox

from .conftest import TOKEN, acquired_connections

SPEC = yaml.safe_load((Path(__file__).parent / "data" / "atoma-openapi.yaml").read_text(encoding="utf-8"))
CHAT = {"model": "sandbox-model", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {"model": "sandbox-model", "prompt": "hi"}
# A valid request for each public operation function (None: it takes none). An operation of the
# spec whose function is not here is reported missing: add its function, then its line here.
REQUESTS: dict[str, Any] = {
    "chat_create": CHAT,
    "chat_create_stream": CHAT,
    "completions_create": COMPLETION,
    "completions_create_stream": COMPLETION,
    "confidential_chat_create": CHAT,
    "confidential_chat_create_stream": CHAT,
    "confidential_completions_create": COMPLETION,
    "confidential_completions_create_stream": COMPLETION,
    "confidential_embeddings_create": {"model": "e", "input": "hi"},
    "confidential_images_generate": {"model": "i", "prompt": "a cat"},
    "embeddings_create": {"model": "e", "input": "hi"},
    "images_generate": {"model": "i", "prompt": "a cat"},
    "nodes_create": {
        "data": {"node_small_id": 7, "public_address": "https://node.example:3000", "country": "DE"},
        "signature": "c2lnbmF0dXJl",
    },
    "nodes_create_lock": {"model": "sandbox-model"},
    "health": None,
    "models_list": None,
    "open_router_models_list": None,
}


def spec_operations() -> dict[str, tuple[str, str]]:
    """operationId -> (method, path); a `#stream` path is the same route, streamed."""
    return {
        op["operationId"]: (method.upper(), path.partition("#")[0])
        for path, item in SPEC["paths"].items()
        for method, op in item.items()
    }


def test_the_spec_has_the_operations_we_expect() -> None:
    assert len(spec_operations()) == 17  # a new spec version: this test walks it, look at what is new


async def test_every_spec_operation_has_a_function() -> None:
    ran: dict[str, tuple[str, str]] = {}

    def record(info: CallInfo) -> None:
        ran[info.operation_id] = (info.method, "/" + info.url.split("/", 3)[3])

    async with Sandbox(token=TOKEN) as sandbox, AtomaCore(
        TOKEN, sandbox.url, hooks=Hooks(on_call_start=record)
    ) as core:
        for name in atoma_funcs.__all__:
            if name not in REQUESTS:  # not one operation (a client, batch_run, parse, tools...)
                continue
            function = getattr(atoma_funcs, name)
            args = () if REQUESTS[name] is None else (REQUESTS[name],)
            value = (await function(core, *args)).unwrap()
            if hasattr(value, "aclose"):
                (await value.collect()).unwrap()
        assert acquired_connections(core) == 0
    missing = sorted(set(spec_operations()) - set(ran))
    assert not missing, f"spec operations without a function in atoma_funcs: {missing}"
    for operation_id, (method, path) in spec_operations().items():
        assert ran[operation_id] == (method, path), operation_id
