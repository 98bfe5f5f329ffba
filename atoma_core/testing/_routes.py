"""What the sandbox serves, route by route: the checks each body must pass (in the proxy's words)
and the deterministic answer, a JSON object or, for a stream, the list of its chunks."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any, Callable, Mapping, NamedTuple, Union

from ._replies import CompletionReply, Reply, sign

__all__ = ["ROUTES", "Route", "Served", "check_body", "padded_chunk"]

Answer = Union[dict[str, Any], list[dict[str, Any]]]  # a list is a stream's chunks
CREATED = 1686935002  # what Atoma's /v1/models says for every model

# A 1x1 transparent PNG, for response_format="b64_json".
_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()


class Served(NamedTuple):
    """What answers may depend on: the models served, the node's lock answer (None: no node)."""

    models: list[str]
    lock: Callable[[int], dict[str, Any]] | None
    scripted: Mapping[str, Any] | None = None  # a `faults.reply` message for this request


class Route(NamedTuple):
    """One route: whether it takes a token, which fields its body needs, how it answers.

    A confidential route names the plain route (`sealed`) whose answer it seals for the client.
    """

    auth: bool
    fields: tuple[tuple[str, Callable[[Any], bool]], ...]  # (name, valid?) checked in order
    answer: Callable[[dict[str, Any], str, Served], Answer]  # (body, request id, served)
    kind: str = ""  # named in 400 messages as the proxy does: "chat completions request model"
    sealed: tuple[str, str] | None = None


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _is_str_or_list(value: Any) -> bool:
    return isinstance(value, (str, list))


def _chat(body: dict[str, Any], rid: str, served: Served) -> Answer:
    reply = Reply(body, rid, served.scripted)
    # The Atoma node always forces include_usage, so streams always end with a usage chunk.
    return reply.chunks(include_usage=True) if body.get("stream") is True else reply.completion()


def _completions(body: dict[str, Any], rid: str, served: Served) -> Answer:
    reply = CompletionReply(body, rid)
    return reply.chunks() if body.get("stream") is True else reply.completion()


def _vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit-free vector in [-1, 1]: the same text always gets the same one."""
    digest = hashlib.blake2b(text.encode(), digest_size=64).digest()
    return [round(digest[i % 64] / 127.5 - 1.0, 6) for i in range(dimensions)]


def _embeddings(body: dict[str, Any], rid: str, served: Served) -> Answer:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dimensions = body.get("dimensions") or 8
    data = []
    for index, text in enumerate(texts):
        vector: Any = _vector(str(text), dimensions)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "embedding": vector, "index": index})
    tokens = sum(len(str(t).split()) for t in texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return sign({"object": "list", "model": body["model"], "data": data, "usage": usage})


def _images(body: dict[str, Any], rid: str, served: Served) -> Answer:
    count = body.get("n") or 1
    as_b64 = body.get("response_format") == "b64_json"
    data = [
        {"b64_json": _PNG, "revised_prompt": body["prompt"]}
        if as_b64
        else {"url": f"https://sandbox.invalid/images/{rid}-{i}.png", "revised_prompt": body["prompt"]}
        for i in range(count)
    ]
    return {"created": CREATED, "data": data}


def _models(body: dict[str, Any], rid: str, served: Served) -> Answer:
    data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "atoma"} for m in served.models]
    return {"object": "list", "data": data}


def _open_router(body: dict[str, Any], rid: str, served: Served) -> Answer:
    return {
        "data": [
            {"id": m, "name": m, "context_length": 131072, "pricing": {"prompt": "0"}} for m in served.models
        ]
    }


def _health(body: dict[str, Any], rid: str, served: Served) -> Answer:
    return {"message": "ok"}


def _lock(body: dict[str, Any], rid: str, served: Served) -> Answer:
    if served.lock is not None:  # the sandbox plays a confidential node: its real key
        return served.lock(int(rid))
    key = base64.b64encode(hashlib.sha256(body["model"].encode()).digest()).decode()
    return {"node_small_id": 1, "public_key": key, "stack_small_id": int(rid), "stack_entry_digest": None}


def _node_created(body: dict[str, Any], rid: str, served: Served) -> Answer:
    return {"message": "Success"}


def _is_assignment(value: Any) -> bool:
    """A `NodePublicAddressAssignment`: what the proxy parses before checking the signature."""
    return (
        isinstance(value, dict)
        and type(value.get("node_small_id")) is int
        and isinstance(value.get("public_address"), str)
        and isinstance(value.get("country"), str)
    )


_MODEL = (("model", _is_str),)

ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/chat/completions"): Route(
        True, (*_MODEL, ("messages", _is_list)), _chat, "chat completions request model"
    ),
    ("POST", "/v1/completions"): Route(True, (*_MODEL, ("prompt", _is_str_or_list)), _completions),
    ("POST", "/v1/embeddings"): Route(True, (*_MODEL, ("input", _is_str_or_list)), _embeddings),
    ("POST", "/v1/images/generations"): Route(True, (*_MODEL, ("prompt", _is_str)), _images),
    ("POST", "/v1/nodes/lock"): Route(True, _MODEL, _lock),
    # Authenticated by the node's signature, not a token (the sandbox does not verify it).
    ("POST", "/v1/nodes"): Route(False, (("data", _is_assignment), ("signature", _is_str)), _node_created),
    ("GET", "/v1/models"): Route(True, (), _models),
    ("GET", "/v1/open_router/models"): Route(False, (), _open_router),
    ("GET", "/health"): Route(False, (), _health),
}
_SEALED_FIELDS = tuple(
    (name, _is_str)
    for name in (
        "ciphertext",
        "client_dh_public_key",
        "node_dh_public_key",
        "nonce",
        "salt",
        "plaintext_body_hash",
    )
)
for _plain in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/images/generations"):
    ROUTES[("POST", "/v1/confidential" + _plain[3:])] = Route(
        True, _SEALED_FIELDS, ROUTES[("POST", _plain)].answer, sealed=("POST", _plain)
    )


def check_body(route: Route, body: Any) -> str | None:
    """The proxy's 400 message for a body missing a field this route needs, else None."""
    for name, valid in route.fields:
        if not isinstance(body, dict) or not valid(body.get(name)):
            reason = f"Request error: Missing or invalid '{name}' field"
            if route.kind:
                return f"Request error: Failed to parse body as {route.kind}: {reason}"
            return reason
    return None


def padded_chunk(chunk: dict[str, Any], size: int) -> dict[str, Any]:
    """A copy of a stream chunk whose first choice carries `size` characters of text."""
    choice = dict(chunk["choices"][0])
    if "delta" in choice:
        choice["delta"] = {"content": "x" * size}
    else:
        choice["text"] = "x" * size
    return {**chunk, "choices": [choice]}
