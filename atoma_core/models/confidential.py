"""msgspec Structs for confidential compute: the sealed request and the sealed answer or event.

Binary fields are standard base64 strings (`+/`, padded). Both structs encode without the fields
left unset and decode leniently (unknown fields are ignored), as the other response models do.
"""

from __future__ import annotations

from msgspec import UNSET, Struct, UnsetType

from .usage import Usage

__all__ = ["ConfidentialComputeRequest", "ConfidentialComputeResponse"]


class ConfidentialComputeRequest(Struct, omit_defaults=True, kw_only=True, gc=False):
    """The body of `POST /v1/confidential/...`: an ordinary request's JSON, sealed for one node.

    `ciphertext` is AES-256-GCM output (tag appended); `plaintext_body_hash` is BLAKE2b-256 of the
    plaintext; the two public keys are raw 32-byte X25519 keys; `nonce` is 12 bytes, `salt` 16.
    """

    ciphertext: str
    client_dh_public_key: str
    node_dh_public_key: str
    nonce: str
    salt: str
    plaintext_body_hash: str
    model_name: str
    stack_small_id: int
    num_compute_units: int | None | UnsetType = UNSET
    stream: bool | None | UnsetType = UNSET


class ConfidentialComputeResponse(Struct, omit_defaults=True, kw_only=True, gc=False):
    """A sealed answer, or one sealed stream event (each SSE `data:` is one of these).

    `response_hash` is BLAKE2b-256 of the plaintext; `usage` is kept in clear by the node.
    """

    ciphertext: str
    nonce: str
    response_hash: str | None = None
    signature: str | None = None
    usage: Usage | None = None
