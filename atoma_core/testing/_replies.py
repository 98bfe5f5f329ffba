"""Deterministic answers for the sandbox, shaped like the Atoma proxy's (vLLM-style) output."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Mapping

from ._instances import instance_of, schema_in_text

__all__ = ["CompletionReply", "Reply", "split_json", "split_tokens"]

_SIGNATURE = "sandbox-signature"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Words per message plus 3 tokens of overhead, as the proxy's estimate does."""
    return sum(len(_text_of(m.get("content")).split()) + 3 for m in messages)


def split_tokens(text: str, limit: int) -> tuple[list[str], str]:
    """Word tokens (a space before all but the first), cut at `limit`, and the finish_reason."""
    words = text.split()
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)][:limit]
    return tokens, "length" if len(words) > limit else "stop"


def sign(obj: dict[str, Any]) -> dict[str, Any]:
    """Add Atoma's `response_hash` and `signature` fields, as the proxy passes them through."""
    digest = hashlib.blake2b(json.dumps(obj, sort_keys=True).encode(), digest_size=32)
    obj["response_hash"] = digest.hexdigest()
    obj["signature"] = _SIGNATURE
    return obj


class Reply:
    """One deterministic answer, and its usage. In order of precedence:
    - a scripted message (`faults.reply`);
    - tool calls, when tools are offered and `tool_choice` forces them ("required" or a named
      function) or allows them and the last message is the user's: every tool with
      `parallel_tool_calls: true`, else the named or first one; arguments fit its `parameters`;
    - JSON for a `json_schema` response_format (an instance of the schema) or `json_object` (an
      instance of a schema found in a system message, else `{"answer": ...}`);
    - text: "Tool said: ..." after a tool result, "You said: ..." otherwise.
    JSON is streamed in 4-character tokens, text word by word."""

    def __init__(
        self, body: dict[str, Any], request_id: str, scripted: Mapping[str, Any] | None = None
    ) -> None:
        messages = body["messages"]
        self.limit = body.get("max_completion_tokens") or body.get("max_tokens") or 8192
        self.id = "chatcmpl-" + request_id
        self.model = body["model"]
        self.created = int(time.time())
        self.prompt_tokens = count_prompt_tokens(messages)
        self.refusal: str | None = None
        self.tool_calls: list[dict[str, Any]] = []
        last = messages[-1] if messages else {}
        said = _text_of(last.get("content"))
        if scripted is not None:
            self._scripted(scripted, request_id)
            return
        forced = isinstance(body.get("tool_choice"), dict) or body.get("tool_choice") == "required"
        asked = last.get("role") == "user" or forced
        self.tool_calls = _tool_calls(body, said, request_id) if asked else []
        if self.tool_calls:
            self.tokens: list[str] = []
            self.finish_reason = "tool_calls"
            self.completion_tokens = sum(
                max(1, len(c["function"]["arguments"]) // 4) for c in self.tool_calls
            )
            return
        text = ("Tool said: " if last.get("role") == "tool" else "You said: ") + said
        value = _json_answer(body, said, text)
        if value is None:
            self.tokens, self.finish_reason = split_tokens(text, self.limit)
        else:
            self.tokens, self.finish_reason = split_json(json.dumps(value), self.limit)
        self.completion_tokens = len(self.tokens)

    def _scripted(self, scripted: Mapping[str, Any], request_id: str) -> None:
        content = scripted.get("content")
        self.refusal = scripted.get("refusal")
        self.tool_calls = [
            {
                "id": call.get("id") or f"call_{request_id}_{i}",
                "type": "function",
                "function": {"name": call["name"], "arguments": _arguments_text(call.get("arguments", {}))},
            }
            for i, call in enumerate(scripted.get("tool_calls") or ())
        ]
        self.tokens, finish = split_json(content, self.limit) if content else ([], "stop")
        default = "tool_calls" if self.tool_calls else finish
        self.finish_reason = scripted.get("finish_reason") or default
        self.completion_tokens = max(1, len(self.tokens))

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.text if self.tokens or not (self.tool_calls or self.refusal) else None,
            "reasoning_content": None,
            "tool_calls": self.tool_calls,
        }
        if self.refusal is not None:
            message["refusal"] = self.refusal
        return sign(
            {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": self.finish_reason,
                        "stop_reason": None,
                    }
                ],
                "usage": self.usage(),
                "prompt_logprobs": None,
            }
        )

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return sign(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish,
                        "stop_reason": None,
                    }
                ],
                "usage": None,
            }
        )

    def chunks(self, include_usage: bool) -> list[dict[str, Any]]:
        """Role chunk, content or tool-call chunks, the finish chunk, then the usage chunk."""
        out = [self.chunk({"role": "assistant", "content": ""})]
        if self.refusal is not None:
            out.append(self.chunk({"refusal": self.refusal}))
        out.extend(self.chunk({"content": token}) for token in self.tokens)
        for index, call in enumerate(self.tool_calls):
            fn = call["function"]
            head = {"index": index, "id": call["id"], "type": "function"}
            out.append(
                self.chunk({"tool_calls": [{**head, "function": {"name": fn["name"], "arguments": ""}}]})
            )
            args = fn["arguments"]
            for i in range(0, len(args), 8):
                piece = {"index": index, "function": {"arguments": args[i : i + 8]}}
                out.append(self.chunk({"tool_calls": [piece]}))
        out.append(self.chunk({}, self.finish_reason))
        if include_usage:
            out.append(
                sign(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": self.usage(),
                    }
                )
            )
        return out


def split_json(text: str, limit: int) -> tuple[list[str], str]:
    """4-character tokens (JSON is cut mid-string, as a tokenizer does), cut at `limit`."""
    tokens = [text[i : i + 4] for i in range(0, len(text), 4)]
    return tokens[:limit], "length" if len(tokens) > limit else "stop"


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _tool_calls(body: dict[str, Any], said: str, request_id: str) -> list[dict[str, Any]]:
    """The calls a request with tools gets: none when tool_choice is "none"."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and "function" in t]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return []
    if isinstance(choice, dict):
        named = choice.get("function", {}).get("name")
        tools = [t for t in tools if t["function"].get("name") == named] or tools[:1]
    elif body.get("parallel_tool_calls") is not True:
        # Forced again after a tool's result: the first tool not called yet (an agent's final
        # answer tool after its function tools), as a model moves on rather than repeating itself.
        called = _called(body["messages"]) if body["messages"][-1].get("role") != "user" else set()
        tools = [next((t for t in tools if t["function"].get("name") not in called), tools[0])]
    calls = []
    for i, spec in enumerate(tools):
        fn = spec["function"]
        schema = fn.get("parameters")
        # A schema that names no properties accepts any object: `{"input": <user text>}` then.
        open_schema = not isinstance(schema, dict) or not schema.keys() & {"properties", "$ref", "anyOf"}
        arguments = {"input": said} if open_schema else instance_of(schema, said)
        call_id = "call_" + request_id + (f"_{i}" if i else "")
        calls.append(
            {
                "id": call_id,
                "type": "function",
                "function": {"name": fn["name"], "arguments": json.dumps(arguments)},
            }
        )
    return calls


def _called(messages: list[Any]) -> set[str]:
    """The names of the tools the assistant has called in this conversation."""
    return {
        call.get("function", {}).get("name")
        for message in messages
        if isinstance(message, dict) and message.get("role") == "assistant"
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    }


def _json_answer(body: dict[str, Any], said: str, text: str) -> Any:
    """The JSON value a `json_schema` / `json_object` response_format asks for, else None."""
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
        return instance_of(spec.get("schema") if isinstance(spec, dict) else None, said)
    if kind == "json_object":
        for message in body["messages"]:
            if isinstance(message, dict) and message.get("role") in ("system", "developer"):
                schema = schema_in_text(_text_of(message.get("content")))
                if schema is not None:
                    return instance_of(schema, said)
        return {"answer": text}
    return None


class CompletionReply:
    """A legacy completion: `You said: <prompt>`, cut at `max_tokens` (16 by default, as OpenAI)."""

    def __init__(self, body: dict[str, Any], request_id: str) -> None:
        prompt = body["prompt"]
        text = prompt if isinstance(prompt, str) else str(prompt[0]) if prompt else ""
        self.id = "cmpl-" + request_id
        self.model = body["model"]
        self.created = int(time.time())
        self.prompt_tokens = len(text.split())
        self.tokens, self.finish_reason = split_tokens("You said: " + text, body.get("max_tokens") or 16)

    def usage(self) -> dict[str, Any]:
        completion = len(self.tokens)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }

    def _body(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
        return sign(
            {
                "id": self.id,
                "object": "text_completion",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "sandbox",
                "choices": choices,
                "usage": usage,
            }
        )

    def completion(self) -> dict[str, Any]:
        choice = {
            "text": "".join(self.tokens),
            "index": 0,
            "logprobs": None,
            "finish_reason": self.finish_reason,
        }
        return self._body([choice], self.usage())

    def chunks(self) -> list[dict[str, Any]]:
        """Text chunks, the finish chunk, then the usage chunk (`choices: []`)."""
        out = [
            self._body([{"text": t, "index": 0, "logprobs": None, "finish_reason": None}], None)
            for t in self.tokens
        ]
        out.append(
            self._body(
                [{"text": "", "index": 0, "logprobs": None, "finish_reason": self.finish_reason}], None
            )
        )
        out.append(self._body([], self.usage()))
        return out
