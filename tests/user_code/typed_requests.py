"""A user's module, type-checked with mypy --strict outside the repository (tests/test_types.py).

Never run. Each line ending in `# error: <code>` must get exactly that mypy error; every other
line must get none. So the types reach a user's checker (not Any), request typos are caught, and
correct requests pass.
"""

from __future__ import annotations

import json
from typing import Any

from atoma_core import AtomaCore
from atoma_core.models import ChatCompletionRequest, ChatCompletionResponse
from atoma_core.types import (
    ChatCompletionMessageParam,
    ChatCompletionRequestParam,
    EmbeddingRequestParam,
    ToolParam,
)
from atoma_funcs import (
    AtomaSDK,
    chat_create,
    chat_create_stream,
    completions_create,
    confidential_chat_create,
    embeddings_create,
    images_generate,
    nodes_create_lock,
)


def answer_length(resp: ChatCompletionResponse) -> int:
    return resp.choices[0].message.content  # error: return-value


async def functions(core: AtomaCore, body: str, loose: dict[str, Any]) -> None:
    resp = (await chat_create(core, {"model": "m", "messages": [{"role": "user", "content": "hi"}]})).unwrap()
    answer_length(resp)
    await chat_create(core, {"model": "m", "mesages": []})  # error: arg-type
    await chat_create(core, {"model": 3, "messages": []})  # error: arg-type
    await chat_create(core, {"model": "m", "messages": [{"role": "usr", "content": "hi"}]})  # error: arg-type
    await chat_create(core, ChatCompletionRequest(model="m", messages=[]))
    await chat_create(core, json.loads(body))  # JSON is Any: checked at run time
    await chat_create(core, loose)  # error: arg-type
    await chat_create_stream(core, {"model": "m", "messages": [], "temprature": 0.5})  # error: arg-type
    await confidential_chat_create(core, {"model": "m", "messages": [], "temperature": 0.5})
    await completions_create(core, {"model": "m", "prompt": ["a", "b"], "max_tokens": 8})
    await completions_create(core, {"model": "m", "promt": "a"})  # error: arg-type
    await embeddings_create(core, {"model": "e", "input": "a", "dimensions": 3})
    await embeddings_create(core, {"model": "e", "input": "a", "dimension": 3})  # error: arg-type
    await images_generate(core, {"model": "i", "prompt": "a cat", "size": "256x256"})
    await nodes_create_lock(core, {"model": "m", "max_num_token": 8})  # error: arg-type


async def keywords(sdk: AtomaSDK, model: str) -> None:
    history: list[ChatCompletionMessageParam] = [{"role": "system", "content": "be brief"}]
    history.append({"role": "user", "content": [{"type": "text", "text": "hi"}]})
    tools: list[ToolParam] = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    resp = await sdk.chat.create(model=model, messages=history, tools=tools, tool_choice="auto")
    history.append(resp.choices[0].message.to_param())
    history.append({"role": "tool", "tool_call_id": "call-1", "content": "42"})
    history.append({"role": "tool", "content": "42"})  # error: arg-type
    await sdk.chat.create(model=model, mesages=history)  # error: call-arg
    await sdk.chat.create(model=model, messages=history, temperature="hot")  # error: arg-type
    await sdk.chat.create({"model": model, "messages": history})
    await sdk.confidential_chat.create(model=model, messages=history, max_tokens=16)
    await sdk.embeddings.create(model="e", input=["a", "b"], dimensions=3)
    await sdk.embeddings.create(model="e", inputs=["a"])  # error: call-arg
    request: EmbeddingRequestParam = {"model": "e", "input": "a"}
    await sdk.embeddings.create(request)
    prepared: ChatCompletionRequestParam = {"model": model, "messages": history, "stream": False}
    await sdk.chat.create(prepared)
