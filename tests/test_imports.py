"""Tree-shaking: importing one function loads only what it needs (checked with -X importtime)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def imported_modules(statement: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True, check=True
    )
    return {
        line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
    }


STREAM_ONLY = {"atoma_core._stream", "atoma_core._events", "atoma_core._sse", "atoma_core._accumulate"}
NEVER = {"aiohttp.web", "atoma_core.testing", "atoma_core.testing._server"}
# Structured outputs and tools: loaded only by their own functions, pydantic only if the caller has it.
STRUCTURED = {
    "atoma_funcs._parse",
    "atoma_funcs._parse_stream",
    "atoma_funcs._partial_json",
    "atoma_funcs._schema",
    "atoma_funcs._tools",
    "atoma_core.models.parsed",
    "atoma_core.models.tool_run",
    "pydantic",
}


def test_chat_create_imports_no_stream_code_no_server() -> None:
    modules = imported_modules("from atoma_funcs import chat_create")
    assert "atoma_core._request" in modules and "atoma_core.models.chat" in modules
    assert not modules & (STREAM_ONLY | NEVER), modules & (STREAM_ONLY | NEVER)
    assert "backoff" not in modules  # loaded on the first retry only
    assert not modules & STRUCTURED, modules & STRUCTURED


@pytest.mark.parametrize(
    "statement",
    ["from atoma_funcs import chat_parse", "from atoma_funcs import tool, chat_run_tools"],
)
def test_structured_outputs_load_no_stream_code_and_no_pydantic(statement: str) -> None:
    modules = imported_modules(statement)
    assert not modules & (STREAM_ONLY | NEVER | {"pydantic", "atoma_funcs._parse_stream"})


def test_a_parse_call_without_pydantic_types_imports_no_pydantic() -> None:
    modules = imported_modules(
        "import asyncio, msgspec\n"
        "from atoma_core import AtomaCore\n"
        "from atoma_funcs import chat_parse\n"
        "class P(msgspec.Struct):\n    a: int\n"
        "res = asyncio.run(chat_parse(AtomaCore('t', 'http://127.0.0.1:9'), {}, P))\n"
        "assert type(res.error).__name__ == 'InvalidRequestError'"
    )
    assert "atoma_funcs._schema" in modules and "pydantic" not in modules


def test_chat_create_stream_loads_the_stream_modules_on_its_first_call_only() -> None:
    modules = imported_modules("from atoma_funcs import chat_create_stream")
    assert not modules & (STREAM_ONLY | NEVER), modules & (STREAM_ONLY | NEVER)
    called = imported_modules(
        "import asyncio\n"
        "from atoma_core import AtomaCore\n"
        "from atoma_funcs import chat_create_stream\n"
        "res = asyncio.run(chat_create_stream(AtomaCore('t', 'http://127.0.0.1:9'), {}))\n"
        "assert type(res.error).__name__ == 'InvalidRequestError'"
    )
    assert called >= STREAM_ONLY
    assert not called & NEVER


@pytest.mark.parametrize(
    "statement", ["import atoma_core", "import atoma_funcs", "from atoma_core import errors"]
)
def test_package_faces_are_cheap(statement: str) -> None:
    modules = imported_modules(statement)
    assert "aiohttp" not in modules and "msgspec" not in modules


def test_lazy_names_resolve() -> None:
    import atoma_core
    import atoma_funcs

    for name in atoma_core.__all__:
        assert getattr(atoma_core, name) is not None
    assert callable(atoma_funcs.chat_create) and callable(atoma_funcs.chat_create_stream)
    with pytest.raises(AttributeError):
        atoma_funcs.nope  # noqa: B018


@pytest.mark.parametrize(
    ("name", "area"),
    [
        ("embeddings_create", "embeddings"),
        ("images_generate", "images"),
        ("models_list", "models"),
        ("health", "models"),
        ("nodes_create_lock", "nodes"),
    ],
)
def test_each_function_loads_only_its_own_area(name: str, area: str) -> None:
    modules = imported_modules(f"from atoma_funcs import {name}")
    loaded = {m.rsplit(".", 1)[-1] for m in modules if m.startswith("atoma_core.models.")}
    assert loaded <= {area, "meta"}, loaded
    assert not modules & (STREAM_ONLY | NEVER)


def test_the_models_table_lists_every_public_model() -> None:
    import importlib

    import atoma_core.models as models

    for area, names in models._AREAS.items():
        module = importlib.import_module(f"atoma_core.models.{area}")
        assert set(names) == set(module.__all__), area
        assert all(getattr(models, n) is getattr(module, n) for n in names)
    with pytest.raises(AttributeError):
        models.Nope  # noqa: B018


def test_resilience_needs_no_redis_and_a_plain_call_no_resilience_state() -> None:
    """Fallbacks, breakers, hedging and the local limiter are light; Redis loads only with a
    `RedisLimiter`; `from atoma_funcs import chat_create` loads none of the Redis code."""
    modules = imported_modules("from atoma_funcs import chat_create")
    assert not {m for m in modules if m == "redis" or m.startswith("redis.")}
    assert "atoma_core.redis_limiter" not in modules
    configured = imported_modules(
        "from atoma_core import AtomaCore\n"
        "from atoma_core.config import Breaker, Hedge\n"
        "from atoma_core.limiter import LocalLimiter\n"
        "AtomaCore('t', 'http://127.0.0.1:9', fallbacks=['m'], hedge=Hedge(), breaker=Breaker(),"
        " limiter=LocalLimiter(requests=1))"
    )
    assert not {m for m in configured if m == "redis" or m.startswith("redis.")}
    assert not configured & (STREAM_ONLY | NEVER)


def test_node_key_verification_loads_only_when_used() -> None:
    verification = {"atoma_core.attest", "atoma_core._sui", "atoma_funcs._node_lock", "blake3"}
    modules = imported_modules("from atoma_funcs import chat_create")
    assert not modules & verification, modules & verification
    modules = imported_modules("from atoma_funcs import confidential_chat_create")
    assert not modules & (verification - {"atoma_funcs._node_lock"})
    modules = imported_modules("from atoma_core.attest import PinnedKeys, SuiKeyCommitments")
    assert not modules & (NEVER | {"atoma_core._sui", "blake3", "cryptography", "aiohttp"})


FRAMEWORKS = ("langchain_core", "langchain", "pydantic_ai", "pydantic")


@pytest.mark.parametrize(
    "statement",
    [
        "import atoma_funcs",
        "from atoma_funcs import chat_create, chat_create_stream, embeddings_create",
        "from atoma_funcs import AtomaSDK, confidential_chat_create",
        "import atoma_funcs.integrations",
    ],
)
def test_no_framework_is_loaded_by_the_sdk(statement: str) -> None:
    modules = imported_modules(statement)
    loaded = {m for m in modules if m.split(".")[0] in FRAMEWORKS}
    assert not loaded, loaded


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("atoma_funcs.integrations.langchain", "langchain_core", "langchain"),
        ("atoma_funcs.integrations.pydantic_ai", "pydantic_ai", "pydantic-ai"),
    ],
)
def test_an_adapter_without_its_framework_names_its_extra(module: str, framework: str, extra: str) -> None:
    # The framework made unimportable (a None entry in sys.modules), as if the extra were missing.
    code = (
        "import sys\n"
        f"sys.modules[{framework!r}] = None\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f'pip install "atoma-async[{extra}]"' in proc.stdout, proc.stdout + proc.stderr


def test_each_adapter_loads_only_its_own_framework() -> None:
    langchain = imported_modules("import atoma_funcs.integrations.langchain")
    assert "langchain_core" in langchain and "pydantic_ai" not in langchain
    pydantic_ai = imported_modules("import atoma_funcs.integrations.pydantic_ai")
    assert "pydantic_ai" in pydantic_ai and "langchain_core" not in pydantic_ai
