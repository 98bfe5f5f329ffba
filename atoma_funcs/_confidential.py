"""Confidential compute: chat and legacy completions (plain and streamed), embeddings and images,
encrypted to a node in a TEE (`POST /v1/confidential/...`). The same request path as every
operation, with two plug-ins:

- a body builder, run before EVERY attempt: lock a node for the model (`_node_lock`: cached per
  core, server and model, re-locked after a 423 LOCKED / 425 UNAVAILABLE_STACK, its key checked
  by the core's node-key verifier, if any), then seal the ordinary
  request JSON with a fresh X25519 key pair, salt and nonce (`_crypto.seal_body`), so a retry
  is a new ciphertext and none is ever resent to another node; the key that opens the answer is
  left in `ctx.state`;
- a decode step for the answer, or a decoder for each stream event, that opens it with that key
  (hash checked in constant time, a stream's nonces never twice) and decodes exactly what the
  plain operation returns; nothing of the plaintext reaches an error.

`cryptography` (the `confidential` extra) is imported on the first call, never at import.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import msgspec

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse
from atoma_core.models.completions import CompletionRequest, CompletionResponse
from atoma_core.models.embeddings import EmbeddingRequest, EmbeddingResponse
from atoma_core.models.images import ImageGenerationRequest, ImageGenerationResponse

from . import _completions
from ._chat import prepare_create, prepare_stream
from ._node_lock import lock_node, reused_lock

if TYPE_CHECKING:
    from atoma_core._compute_units import ConfidentialKind
    from atoma_core._crypto import ResponseKey
    from atoma_core._operation import BodyBuilder, CallContext
    from atoma_core._stream import ChatCompletionStream, CompletionStream
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionChunk
    from atoma_core.models.nodes import NodesCreateLockResponse
    from atoma_core.result import Result
    from atoma_core.types import (
        ChatCompletionRequestParam,
        CompletionRequestParam,
        EmbeddingRequestParam,
        ImageGenerationRequestParam,
    )

__all__ = [
    "confidential_chat_create",
    "confidential_chat_create_stream",
    "confidential_completions_create",
    "confidential_completions_create_stream",
    "confidential_embeddings_create",
    "confidential_images_generate",
]

T = TypeVar("T")
CHAT_PATH = "/v1/confidential/chat/completions"
COMPLETIONS_PATH = "/v1/confidential/completions"
# The proxy answers these on confidential routes so that "Atoma's native SDKs" re-lock and resend.
RELOCK_STATUSES = frozenset({423, 425})


class _Sealed(msgspec.Struct, gc=False):
    """What one attempt's body builder leaves for its handle step (never shown: it holds a key).
    A Struct: made once per attempt, it costs less than a class with an `__init__`; no cycles."""

    key: ResponseKey
    lock: NodesCreateLockResponse

    def __repr__(self) -> str:
        return "_Sealed(<redacted>)"


class _Shape(msgspec.Struct, gc=False):
    """What sealing needs of the request JSON (the model, `stream`, what `num_compute_units`
    reads): decoded without building the rest of it. Typed loosely: the request Struct checked
    them, and `extra_body` may have changed them since."""

    model: Any
    stream: Any = None
    max_tokens: Any = None
    max_completion_tokens: Any = None
    size: Any = None
    n: Any = None


_read_shape = msgspec.json.Decoder(_Shape).decode


@functools.cache
def _sealing() -> tuple[Callable[..., tuple[bytes, ResponseKey]], Callable[..., int | None]]:
    """What sealing uses, imported on the first call (two imports per call cost ~1.4 us). Raises
    `MissingDependencyError`, naming the extra, before any request (and caches nothing then)."""
    from atoma_core._compute_units import num_compute_units
    from atoma_core._crypto import require_cryptography, seal_body

    require_cryptography()
    return seal_body, num_compute_units


def _sealer(kind: ConfidentialKind) -> BodyBuilder:
    """The per-attempt body builder: lock (or reuse the lock), then seal the request JSON."""
    images = kind == "images"

    async def seal(plaintext: bytes, ctx: CallContext) -> bytes:
        seal_body, num_compute_units = _sealing()
        shape = _read_shape(plaintext)
        lock = reused_lock(ctx, shape.model)  # the usual case: no await, no coroutine
        if lock is None:
            lock = await lock_node(ctx, shape.model)
        if images:
            fields = {"size": shape.size, "n": shape.n}
        else:
            fields = {"max_tokens": shape.max_tokens, "max_completion_tokens": shape.max_completion_tokens}
        body, key = seal_body(
            lock.public_key,
            plaintext,
            model=shape.model,
            stack_small_id=lock.stack_small_id,
            num_compute_units=num_compute_units(kind, fields),
            stream=shape.stream,
        )
        ctx.state = _Sealed(key, lock)
        return body

    return seal


def _opened(response_type: type[T]) -> Callable[[list[bytes | bytearray], CallContext], T]:
    """Decode a sealed answer: open it with this attempt's key, then decode the plaintext.
    Nothing of the plaintext reaches an error (`ResponseKey.open_answer`). The body comes in a
    one-item list and is passed on as it is, so the opener can let go of it (`json_response`)."""
    decode = msgspec.json.Decoder(response_type).decode

    def open_answer(body: list[bytes | bytearray], ctx: CallContext) -> T:
        sealed: _Sealed = ctx.state
        return sealed.key.open_answer(body, decode)

    return open_answer


def _event_decoder(decode_chunk: Callable[[bytes], T]) -> Callable[[CallContext], Callable[[bytes], T]]:
    """The decoder of one confidential stream: each event opened with this call's key (a fresh
    nonce each, hash checked), then decoded with `decode_chunk` (`ResponseKey.stream_decoder`)."""

    def for_call(ctx: CallContext) -> Callable[[bytes], T]:
        sealed: _Sealed = ctx.state
        return sealed.key.stream_decoder(decode_chunk)

    return for_call


def _chat_event_decoder(ctx: CallContext) -> Callable[[bytes], ChatCompletionChunk]:
    """The decoder of one confidential chat stream (`_parse_stream` plugs it in too)."""
    from atoma_core._stream import chat_chunk_decoder

    return _event_decoder(chat_chunk_decoder.decode)(ctx)


def _operation(
    operation_id: str,
    path: str,
    kind: ConfidentialKind,
    request_type: Any,
    response_type: type[T],
    **extra: Any,
) -> Operation[Any, T]:
    return Operation(
        operation_id,
        "POST",
        path,
        json_response(response_type, decode=_opened(response_type)),
        request_type=request_type,
        build_body=_sealer(kind),
        retry_statuses=RELOCK_STATUSES,
        **extra,
    )


_CHAT = _operation(
    "confidential_chat_completions_create",
    CHAT_PATH,
    "chat",
    ChatCompletionRequest,
    ChatCompletionResponse,
    prepare=prepare_create,
    idempotent=True,  # a hedged copy is sealed afresh: its own key, its own ciphertext
)
_EMBEDDINGS = _operation(
    "confidential_embeddings_create",
    "/v1/confidential/embeddings",
    "embeddings",
    EmbeddingRequest,
    EmbeddingResponse,
    idempotent=True,
)
_IMAGES = _operation(
    "confidential_image_generations_create",
    "/v1/confidential/images/generations",
    "images",
    ImageGenerationRequest,
    ImageGenerationResponse,
)


_COMPLETIONS = _operation(
    "confidential_completions_create",
    COMPLETIONS_PATH,
    "completions",
    CompletionRequest,
    CompletionResponse,
    prepare=_completions.prepare_create,
    idempotent=True,
)


def _stream_operation(
    operation_id: str, path: str, kind: ConfidentialKind, handle: Any, **extra: Any
) -> Operation[Any, Any]:
    return Operation(
        operation_id,
        "POST",
        path,
        handle,
        build_body=_sealer(kind),
        accept="text/event-stream",
        retry_statuses=RELOCK_STATUSES,
        idempotent=True,  # streamed inference: a hedged copy is sealed afresh
        **extra,
    )


@functools.cache
def _chat_stream_operation() -> Operation[ChatCompletionRequest, ChatCompletionStream]:
    from atoma_core._stream import open_chat_stream

    return _stream_operation(
        "confidential_chat_completions_create_stream",
        CHAT_PATH,
        "chat",
        open_chat_stream(_chat_event_decoder),
        request_type=ChatCompletionRequest,
        prepare=prepare_stream,
    )


@functools.cache
def _completions_stream_operation() -> Operation[CompletionRequest, CompletionStream]:
    from atoma_core._stream import completion_chunk_decoder, open_completion_stream

    return _stream_operation(
        "confidential_completions_create_stream",
        COMPLETIONS_PATH,
        "completions",
        open_completion_stream(_event_decoder(completion_chunk_decoder.decode)),
        request_type=CompletionRequest,
        prepare=_completions.prepare_stream,
    )


async def confidential_chat_create(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    options: RequestOptions | None = None,
) -> Result[ChatCompletionResponse, AtomaError]:
    """`chat_create`, encrypted to a node in a TEE: the same `ChatCompletionResponse`, decrypted.
    Needs the `confidential` extra (else `Err(MissingDependencyError)` naming it)."""
    return await call(core, _CHAT, request, options)


async def confidential_chat_create_stream(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    options: RequestOptions | None = None,
) -> Result[ChatCompletionStream, AtomaError]:
    """`chat_create_stream`, encrypted: every event is decrypted; usage, `collect()`, deadlines and
    `.partial` work as for a plain stream."""
    return await call(core, _chat_stream_operation(), request, options)


async def confidential_completions_create(
    core: AtomaCore,
    request: CompletionRequest | CompletionRequestParam,
    options: RequestOptions | None = None,
) -> Result[CompletionResponse, AtomaError]:
    """`completions_create` (legacy text completions), encrypted to a node in a TEE: the same
    `CompletionResponse`, decrypted."""
    return await call(core, _COMPLETIONS, request, options)


async def confidential_completions_create_stream(
    core: AtomaCore,
    request: CompletionRequest | CompletionRequestParam,
    options: RequestOptions | None = None,
) -> Result[CompletionStream, AtomaError]:
    """`completions_create_stream`, encrypted: every event is decrypted, as for confidential chat."""
    return await call(core, _completions_stream_operation(), request, options)


async def confidential_embeddings_create(
    core: AtomaCore, request: EmbeddingRequest | EmbeddingRequestParam, options: RequestOptions | None = None
) -> Result[EmbeddingResponse, AtomaError]:
    """`embeddings_create`, encrypted to a node in a TEE."""
    return await call(core, _EMBEDDINGS, request, options)


async def confidential_images_generate(
    core: AtomaCore,
    request: ImageGenerationRequest | ImageGenerationRequestParam,
    options: RequestOptions | None = None,
) -> Result[ImageGenerationResponse, AtomaError]:
    """`images_generate`, encrypted to a node in a TEE."""
    return await call(core, _IMAGES, request, options)
