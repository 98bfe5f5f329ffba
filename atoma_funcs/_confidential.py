"""Confidential compute: chat (plain and streamed), embeddings and images, encrypted to a node in a
TEE (`POST /v1/confidential/...`). The same request path as every operation, with two plug-ins:

- a body builder, run before EVERY attempt: lock a node for the model (`_node_lock`: cached per
  core, server and model, re-locked after a 423 LOCKED / 425 UNAVAILABLE_STACK, its key checked
  by the core's node-key verifier, if any), then seal the ordinary
  request JSON with a fresh X25519 key pair, salt and nonce (`_crypto.seal_request`), so a retry
  is a new ciphertext and none is ever resent to another node; the key that opens the answer is
  left in `ctx.state`;
- an unwrap step for the answer, or a decoder for each stream event, that opens it with that key
  (hash checked in constant time) and decodes exactly what the plain operation returns.

`cryptography` (the `confidential` extra) is imported on the first call, never at import.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import msgspec

from atoma_core._body import decode_json_body, json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.errors import StreamInterruptedError
from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse
from atoma_core.models.confidential import ConfidentialComputeResponse
from atoma_core.models.embeddings import EmbeddingRequest, EmbeddingResponse
from atoma_core.models.images import ImageGenerationRequest, ImageGenerationResponse

from ._chat import prepare_create, prepare_stream
from ._node_lock import lock_node

if TYPE_CHECKING:
    from atoma_core._compute_units import ConfidentialKind
    from atoma_core._crypto import ResponseKey
    from atoma_core._operation import BodyBuilder, CallContext
    from atoma_core._stream import ChatCompletionStream
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionChunk
    from atoma_core.models.nodes import NodesCreateLockResponse
    from atoma_core.result import Result
    from atoma_core.types import (
        ChatCompletionRequestParam,
        EmbeddingRequestParam,
        ImageGenerationRequestParam,
    )

__all__ = [
    "confidential_chat_create",
    "confidential_chat_create_stream",
    "confidential_embeddings_create",
    "confidential_images_generate",
]

T = TypeVar("T")
CHAT_PATH = "/v1/confidential/chat/completions"
# The proxy answers these on confidential routes so that "Atoma's native SDKs" re-lock and resend.
RELOCK_STATUSES = frozenset({423, 425})

_encoder = msgspec.json.Encoder()
_envelope = msgspec.json.Decoder(ConfidentialComputeResponse)


class _Sealed:
    """What one attempt's body builder leaves for its handle step (never shown: it holds a key)."""

    __slots__ = ("key", "lock")

    def __init__(self, key: ResponseKey, lock: NodesCreateLockResponse) -> None:
        self.key = key
        self.lock = lock

    def __repr__(self) -> str:
        return "_Sealed(<redacted>)"


def _sealer(kind: ConfidentialKind) -> BodyBuilder:
    """The per-attempt body builder: lock (or reuse the lock), then seal the request JSON."""

    async def seal(plaintext: bytes, ctx: CallContext) -> bytes:
        from atoma_core._compute_units import num_compute_units
        from atoma_core._crypto import require_cryptography, seal_request

        require_cryptography()  # MissingDependencyError, naming the extra, before any request
        request: dict[str, Any] = msgspec.json.decode(plaintext)
        model = request["model"]
        lock = await lock_node(ctx, model)
        sealed, key = seal_request(
            lock.public_key,
            plaintext,
            model=model,
            stack_small_id=lock.stack_small_id,
            num_compute_units=num_compute_units(kind, request),
            stream=request.get("stream"),
        )
        ctx.state = _Sealed(key, lock)
        return _encoder.encode(sealed)

    return seal


def _open(raw: bytes, ctx: CallContext) -> bytes:
    """A sealed answer's plaintext JSON (`ConfidentialComputeError` if it cannot be opened)."""
    envelope = decode_json_body(raw, _envelope, 200)
    sealed: _Sealed = ctx.state
    return sealed.key.open(envelope.ciphertext, envelope.nonce, envelope.response_hash)


def _event_decoder(ctx: CallContext) -> Callable[[bytes], ChatCompletionChunk]:
    """The decoder of one confidential stream: open each event with this call's key, then decode
    the chunk. An event that cannot be opened ends the stream: as `ConfidentialComputeError`
    (a bad response) when it is the first, as `StreamInterruptedError` (with `.partial`) after."""
    from atoma_core._stream import chat_chunk_decoder

    key = ctx.state.key
    decode_chunk = chat_chunk_decoder.decode
    opened = 0

    def decode(data: bytes) -> ChatCompletionChunk:
        nonlocal opened
        envelope = _envelope.decode(data)
        try:
            plaintext = key.open(envelope.ciphertext, envelope.nonce, envelope.response_hash)
        except Exception as exc:
            if opened == 0:
                raise
            raise StreamInterruptedError(f"stream event could not be opened: {exc}") from None
        opened += 1
        return decode_chunk(plaintext)

    return decode


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
        json_response(response_type, unwrap=_open),
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


@functools.cache
def _chat_stream_operation() -> Operation[ChatCompletionRequest, ChatCompletionStream]:
    from atoma_core._stream import open_chat_stream

    return Operation(
        "confidential_chat_completions_create_stream",
        "POST",
        CHAT_PATH,
        open_chat_stream(_event_decoder),
        request_type=ChatCompletionRequest,
        prepare=prepare_stream,
        build_body=_sealer("chat"),
        accept="text/event-stream",
        retry_statuses=RELOCK_STATUSES,
        idempotent=True,
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
