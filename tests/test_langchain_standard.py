"""LangChain's own standard tests (`langchain-tests`), the suites every LangChain integration
package runs, for `ChatAtoma` and `AtomaEmbeddings`: the unit suites, and the integration suites
against the bundled sandbox (plain and confidential chat) over loopback HTTP.

What is skipped, and why (the suites skip a test when its `supports_*` flag is False):
- image, PDF and audio inputs and tool messages: each standard test downloads its file from the
  internet (github.com, w3.org, wikimedia.org), which this test machine cannot reach. Atoma
  takes images as `image_url` parts; tests/test_langchain.py sends one (a data URI) instead.
  PDF and audio content do not exist on Atoma's chat API.
- Anthropic-style inputs: Anthropic's own message format, not Atoma's (OpenAI's).
- test_stream_time: needs recorded VCR cassettes of a hosted API; speed is measured in
  benchmarks/, not in tests.
- test_serdes: ChatAtoma is not LangChain-serialisable (it may hold an `AtomaCore`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("langchain_tests", reason="the dev extra installs langchain-tests")

from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from atoma_core.testing import sandbox_in_thread
from atoma_funcs.integrations.langchain import AtomaEmbeddings, ChatAtoma

from .conftest import TOKEN

_SERVER: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _sandbox() -> Iterator[None]:
    with sandbox_in_thread(token=TOKEN) as sandbox:
        _SERVER["url"] = sandbox.url
        yield
    _SERVER.clear()


def _server_params() -> dict[str, Any]:
    return {"base_url": _SERVER["url"], "api_key": TOKEN}


class TestChatAtomaUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatAtoma]:
        return ChatAtoma

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "sandbox-model"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {"ATOMASDK_BEARER_AUTH": "env-token", "ATOMASDK_SERVER_URL": "http://127.0.0.1:9"}
        return env, {"model": "sandbox-model"}, {"api_key": "env-token", "base_url": "http://127.0.0.1:9"}


class TestChatAtomaIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatAtoma]:
        return ChatAtoma

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "sandbox-model", **_server_params()}

    @property
    def model_override_value(self) -> str:
        return "sandbox-model-2"

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[Any, list[Any]]:
        return {"invoke": ["cache_read_input"], "stream": ["cache_read_input"]}

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> Any:
        model = ChatAtoma(**self.chat_model_params)
        if not stream:
            return model.invoke("hello")
        full = None
        for chunk in model.stream("hello"):
            full = chunk if full is None else full + chunk
        return full


class TestChatAtomaConfidentialIntegration(TestChatAtomaIntegration):
    """The same suite with every call through confidential chat (sealed to the sandbox's node)."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**super().chat_model_params, "confidential": True}


class TestAtomaEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[AtomaEmbeddings]:
        return AtomaEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "sandbox-embed"}


class TestAtomaEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[AtomaEmbeddings]:
        return AtomaEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "sandbox-embed", "chunk_size": 2, **_server_params()}
