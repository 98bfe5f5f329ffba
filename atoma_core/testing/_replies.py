"""Deterministic answers for the sandbox, shaped like the Atoma proxy's (vLLM-style) output."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

__all__ = ["CompletionReply", "Reply", "split_tokens"]

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
    """One deterministic answer: text tokens or a tool call, and its usage."""

    def __init__(self, body: dict[str, Any], request_id: str) -> None:
        messages = body["messages"]
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 8192
        self.id = "chatcmpl-" + request_id
        self.model = body["model"]
        self.created = int(time.time())
        self.prompt_tokens = count_prompt_tokens(messages)
        self.tool_call: dict[str, Any] | None = None
        last = messages[-1] if messages else {}
        tools = body.get("tools") or []
        choice = body.get("tool_choice", "auto")
        if tools and choice != "none" and last.get("role") == "user":
            name = tools[0]["function"]["name"]
            if isinstance(choice, dict):
                name = choice["function"]["name"]
            arguments = json.dumps({"input": _text_of(last.get("content"))})
            self.tool_call = {
                "id": "call_" + request_id,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            self.tokens: list[str] = []
            self.finish_reason = "tool_calls"
            self.completion_tokens = max(1, len(arguments) // 4)
            return
        if last.get("role") == "tool":
            text = "Tool said: " + _text_of(last.get("content"))
        else:
            text = "You said: " + _text_of(last.get("content"))
        self.tokens, self.finish_reason = split_tokens(text, limit)
        self.completion_tokens = len(self.tokens)

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
            "content": None if self.tool_call else self.text,
            "reasoning_content": None,
            "tool_calls": [],
        }
        if self.tool_call:
            message["tool_calls"] = [self.tool_call]
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
        if self.tool_call:
            fn = self.tool_call["function"]
            out.append(
                self.chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": self.tool_call["id"],
                                "type": "function",
                                "function": {"name": fn["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            args = fn["arguments"]
            for i in range(0, len(args), 8):
                out.append(
                    self.chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 8]}}]})
                )
        else:
            out.extend(self.chunk({"content": token}) for token in self.tokens)
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
