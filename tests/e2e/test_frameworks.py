"""The framework adapters against a real LLM: LangChain's standard integration suites for
`ChatAtoma` and `AtomaEmbeddings`, and a pydantic-ai `Agent` on `AtomaModel`, streamed and not,
on llama-cpp-python's server with Gemma 3 270M (tests/e2e/run.sh starts it; skipped without
E2E_BASE_URL). Not part of `make test`.

What this server cannot do, so what is not asked of it here (Atoma itself does all of these):
- tool calls: llama-cpp-python's `gemma` chat format has no function calling, so the suite runs
  with `has_tool_calling = False` and the agent has no tools;
- a `json_schema` response_format: llama-cpp-python's server answers it with HTTP 500
  ("response_format.type: Input should be 'text' or 'json_object'"); it takes a schema as
  `{"type": "json_object", "schema": ...}` and turns it into a grammar, which is what the SDK's
  json_object mode sends, so structured output is asked for that way here (LangChain's
  `method="json_mode"`, pydantic-ai's `PromptedOutput`), as a user of this server would;
- strict JSON strings: llama-cpp-python's schema grammar lets raw control characters into a
  string, and test_json_mode's answer at times has a newline in one (may fail here);
- usage in streams: the server drops `stream_options`, so no usage chunk ends a stream
  (test_usage_metadata_streaming is expected to fail here);
- confidential compute: there is no TEE node behind a local server;
- embeddings: the server is started without --embedding, so the embeddings suite runs only when
  E2E_EMBEDDINGS_MODEL names a model it serves.
The model's wording is never asserted; a 270M base model only has to keep to the structure.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

pytest.importorskip("langchain_tests", reason="the dev extra installs langchain-tests")

from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests
from pydantic import BaseModel, Field

from atoma_core import AtomaCore, Timeouts
from atoma_funcs.integrations.langchain import AtomaEmbeddings, ChatAtoma

BASE_URL = os.environ.get("E2E_BASE_URL", "")
MODEL = os.environ.get("E2E_MODEL", "gemma-3-270m")
EMBEDDINGS_MODEL = os.environ.get("E2E_EMBEDDINGS_MODEL", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not BASE_URL, reason="needs a running LLM server: run `make e2e`"),
]


class TestChatAtomaOnLlamaCpp(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatAtoma]:
        return ChatAtoma

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # No token: the server runs without --api_key. Generous deadlines: 2 CPU threads shared
        # with other work decode ~5-10 tokens/s, and an unanswered "Hello" runs to max_tokens.
        # temperature 0: (almost) the same answers every run, so failures reproduce. A
        # frequency_penalty, as a user of a model this small would set: without it, greedy decoding
        # loops inside a JSON string ("punchline": "1000000...") until max_tokens.
        return {
            "model": MODEL,
            "base_url": BASE_URL + "/v1",
            "timeout": 180,
            "max_tokens": 128,
            "temperature": 0,
            "frequency_penalty": 1.0,
        }

    @property
    def has_tool_calling(self) -> bool:
        return False  # the server's gemma chat format has no function calling (see the docstring)

    @property
    def has_structured_output(self) -> bool:
        return True  # json_object + schema: llama-cpp-python turns the schema into a grammar

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        return {"method": "json_mode"}  # json_schema is a 500 here (see the module docstring)

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False  # one model is loaded; the server answers any name with it

    @pytest.mark.xfail(
        reason="llama-cpp-python 0.3.36's JSON Schema grammar has `char ::= [^\"\\\\] | ...`, which lets "
        "raw control characters into a string: for this prompt the model at times writes a newline "
        "inside 'punchline' (seen in 1 of 2 full runs), so the answer is not JSON (OutputValidationError: 'Invalid JSON: control "
        "character (\\u0000-\\u001F) found while parsing a string')"
    )
    def test_json_mode(self, model: Any) -> None:
        super().test_json_mode(model)

    @pytest.mark.xfail(reason="llama-cpp-python drops stream_options: no usage chunk ends a stream")
    def test_usage_metadata_streaming(self, model: Any) -> None:
        super().test_usage_metadata_streaming(model)


@pytest.mark.skipif(not EMBEDDINGS_MODEL, reason="set E2E_EMBEDDINGS_MODEL to a model the server embeds with")
class TestAtomaEmbeddingsOnLlamaCpp(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[AtomaEmbeddings]:
        return AtomaEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": EMBEDDINGS_MODEL, "base_url": BASE_URL + "/v1", "timeout": 180}


class Answer(BaseModel):
    # maxLength becomes a bound in llama-cpp-python's grammar: unbounded, the 270M model keeps
    # writing inside the string until max_tokens (pydantic-ai: OutputTokenLimitExceeded).
    text: str = Field(max_length=40)


@pytest.fixture
async def core() -> Any:
    sdk = AtomaCore(server_url=BASE_URL + "/v1", timeouts=Timeouts(connect=5, read=60, total=120))
    yield sdk
    await sdk.close()


async def test_a_pydantic_ai_agent_runs(core: AtomaCore) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.settings import ModelSettings

    from atoma_funcs.integrations.pydantic_ai import AtomaModel

    agent = Agent(AtomaModel(MODEL, core), model_settings=ModelSettings(max_tokens=32, temperature=0))
    result = await agent.run("Say hello in one short sentence.")
    assert isinstance(result.output, str) and result.output
    assert result.usage.requests == 1 and result.usage.input_tokens > 0
    async with agent.run_stream("Say hello in one short sentence.") as streamed:
        pieces = [text async for text in streamed.stream_text(delta=True, debounce_by=None)]
    assert "".join(pieces)


async def test_a_pydantic_ai_agent_gets_prompted_structured_output(core: AtomaCore) -> None:
    # PromptedOutput, not NativeOutput: native output is json_schema, a 500 on this server.
    from pydantic_ai import Agent, PromptedOutput
    from pydantic_ai.settings import ModelSettings

    from atoma_funcs.integrations.pydantic_ai import AtomaModel

    agent = Agent(
        AtomaModel(MODEL, core),
        output_type=PromptedOutput(Answer),
        model_settings=ModelSettings(max_tokens=64, temperature=0),
    )
    result = await agent.run("Answer with a greeting.")
    assert isinstance(result.output, Answer)
    async with agent.run_stream("Answer with a greeting.") as streamed:
        assert isinstance(await streamed.get_output(), Answer)
