"""The msgspec chat models against the Atoma OpenAPI spec (tests/data/atoma-openapi.yaml).

The spec is a verbatim copy of `atoma-proxy/docs/openapi.yml` (shared/spec/atoma-openapi.yaml).
For every object schema of the chat operations, mapped below to its Struct:

* every spec property exists in the Struct (by wire name, via `msgspec.inspect`), with a type that
  accepts every value the spec allows, and is optional in the Struct when the spec says optional;
* every spec example that is valid under the spec itself encodes (request side) and decodes
  (response side); the known-broken examples are listed, and what the SDK does with them is pinned;
* a whole instance synthesised from each schema (all properties, each union variant, then every
  nullable property as null) decodes, and request instances re-encode to the same JSON;
* what the SDK actually puts on the wire validates against `CreateChatCompletion[Stream]Request`.

Everything the SDK does differently on purpose is in DEVIATIONS with its reason; the tests fail both
on an unlisted difference and on a listed one that no longer exists.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
import yaml

from atoma_core import AtomaCore, Ok
from atoma_core.models import chat
from atoma_funcs import chat_create, chat_create_stream

SPEC_PATH = Path(__file__).parent / "data" / "atoma-openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]

REQUEST, RESPONSE = "request", "response"


def _variant(name: str, which: str | int) -> dict[str, Any]:
    variants = SCHEMAS[name]["oneOf"]
    if isinstance(which, int):
        return variants[which]
    (found,) = [v for v in variants if v.get("title") == which]
    return found


# key -> (spec object schema, Struct, side). Keys of union variants are "Union/title-or-index".
MODELS: dict[str, tuple[dict[str, Any], type[msgspec.Struct], str]] = {
    # request side
    "ChatCompletionRequest": (SCHEMAS["ChatCompletionRequest"], chat.ChatCompletionRequest, REQUEST),
    "ChatCompletionMessage/System": (
        _variant("ChatCompletionMessage", "System"),
        chat.SystemMessage,
        REQUEST,
    ),
    "ChatCompletionMessage/User": (_variant("ChatCompletionMessage", "User"), chat.UserMessage, REQUEST),
    "ChatCompletionMessage/Assistant": (
        _variant("ChatCompletionMessage", "Assistant"),
        chat.AssistantMessage,
        REQUEST,
    ),
    "ChatCompletionMessage/Tool": (_variant("ChatCompletionMessage", "Tool"), chat.ToolMessage, REQUEST),
    "MessageContentPart/0": (_variant("MessageContentPart", 0), chat.TextContentPart, REQUEST),
    "MessageContentPart/1": (_variant("MessageContentPart", 1), chat.ImageContentPart, REQUEST),
    "MessageContentPartImageUrl": (SCHEMAS["MessageContentPartImageUrl"], chat.ImageURL, REQUEST),
    "ToolCall": (SCHEMAS["ToolCall"], chat.ToolCall, REQUEST),
    "ToolCallFunction": (SCHEMAS["ToolCallFunction"], chat.ToolCallFunction, REQUEST),
    "ChatCompletionToolsParam": (SCHEMAS["ChatCompletionToolsParam"], chat.Tool, REQUEST),
    "ChatCompletionToolFunctionParam": (
        SCHEMAS["ChatCompletionToolFunctionParam"],
        chat.FunctionDefinition,
        REQUEST,
    ),
    "ChatCompletionNamedToolChoiceParam": (
        SCHEMAS["ChatCompletionNamedToolChoiceParam"],
        chat.ChatCompletionNamedToolChoice,
        REQUEST,
    ),
    "ChatCompletionNamedFunction": (
        SCHEMAS["ChatCompletionNamedFunction"],
        chat.ChatCompletionNamedFunction,
        REQUEST,
    ),
    "ResponseFormat": (SCHEMAS["ResponseFormat"], chat.ResponseFormat, REQUEST),
    "JsonSchemaResponseFormat": (SCHEMAS["JsonSchemaResponseFormat"], chat.JsonSchemaResponseFormat, REQUEST),
    "StreamOptions": (SCHEMAS["StreamOptions"], chat.StreamOptions, REQUEST),
    # response side
    "ChatCompletionResponse": (SCHEMAS["ChatCompletionResponse"], chat.ChatCompletionResponse, RESPONSE),
    "ChatCompletionChoice": (SCHEMAS["ChatCompletionChoice"], chat.ChatCompletionChoice, RESPONSE),
    # The spec's response message is the request union; what an answer carries is its Assistant variant.
    "ChatCompletionChoice.message": (
        _variant("ChatCompletionMessage", "Assistant"),
        chat.ChatCompletionResponseMessage,
        RESPONSE,
    ),
    "ChatCompletionLogProbs": (SCHEMAS["ChatCompletionLogProbs"], chat.ChatCompletionLogProbs, RESPONSE),
    "ChatCompletionLogProbsContent": (
        SCHEMAS["ChatCompletionLogProbsContent"],
        chat.ChatCompletionLogProbsContent,
        RESPONSE,
    ),
    "ChatCompletionLogProb": (SCHEMAS["ChatCompletionLogProb"], chat.ChatCompletionLogProb, RESPONSE),
    "CompletionUsage": (SCHEMAS["CompletionUsage"], chat.Usage, RESPONSE),
    "PromptTokensDetails": (SCHEMAS["PromptTokensDetails"], chat.PromptTokensDetails, RESPONSE),
    "ChatCompletionChunk": (SCHEMAS["ChatCompletionChunk"], chat.ChatCompletionChunk, RESPONSE),
    "ChatCompletionChunkChoice": (
        SCHEMAS["ChatCompletionChunkChoice"],
        chat.ChatCompletionChunkChoice,
        RESPONSE,
    ),
    "ChatCompletionChunkDelta": (
        SCHEMAS["ChatCompletionChunkDelta"],
        chat.ChatCompletionChunkDelta,
        RESPONSE,
    ),
    "ChatCompletionChunkDeltaToolCall": (
        SCHEMAS["ChatCompletionChunkDeltaToolCall"],
        chat.ChatCompletionChunkDeltaToolCall,
        RESPONSE,
    ),
    "ChatCompletionChunkDeltaToolCallFunction": (
        SCHEMAS["ChatCompletionChunkDeltaToolCallFunction"],
        chat.ChatCompletionChunkDeltaToolCallFunction,
        RESPONSE,
    ),
}

# Schemas of the chat operations that are values, not objects with a Struct of their own.
VALUE_SCHEMAS = {
    "ChatCompletionMessage": "union of the four message Structs, tagged by `role`",
    "MessageContent": "str | list[TextContentPart | ImageContentPart]",
    "MessageContentPart": "union of TextContentPart / ImageContentPart, tagged by `type`",
    "ToolChoice": "str | ChatCompletionNamedToolChoice",
    "ToolChoiceLiteral": "str",
    "ResponseFormatType": "str",
    "StopReason": "int | str (see DEVIATIONS)",
    "ChatCompletionStreamResponse": "the SSE event `{data: chunk}`: the SDK decodes `data` as ChatCompletionChunk",
    "CreateChatCompletionRequest": "ChatCompletionRequest with stream=false (test_wire_request_*)",
    "CreateChatCompletionStreamRequest": "ChatCompletionRequest with stream=true (test_wire_request_*)",
}

_LENIENT = (
    "responses decode leniently (models/chat.py): only `choices`, `message` and `delta` are required, "
    "every other field has a default, so a server that omits one does not break decoding"
)

# (model key, wire property, kind) -> reason. Kinds: missing (in the spec, not in the Struct);
# narrower (the Struct's type refuses some value the spec allows); wider (request side: the Struct
# lets the caller send a value the spec does not allow); optional (spec-required, optional in the
# SDK); extra (in the Struct, not in the spec); tag (the property is the Struct's tag, other values).
# A "required" kind (spec-optional but required in the SDK) is never acceptable and not listed.
_ATOMA_FIELDS = (
    "Atoma's verifiability fields, sent by the proxy on every response and chunk (atoma-api.md 2.5, "
    "4.2) but not in the spec: kept as typed attributes (issue 13)"
)
DEVIATIONS: dict[tuple[str, str, str], str] = {
    # ---------------------------------------------------------------- request
    ("ChatCompletionRequest", "stop", "wider"): (
        "stop also accepts a bare string, as OpenAI does (the spec only allows an array)"
    ),
    ("ChatCompletionRequest", "messages", "wider"): (
        "messages also accept role 'developer' (OpenAI's newer 'system'; the proxy does not check roles): "
        "the union has a DeveloperMessage the spec lacks"
    ),
    ("ChatCompletionRequest", "logprobs", "extra"): (
        "`logprobs: bool` is added: the spec's own top_logprobs says 'logprobs must be set to true' but "
        "the spec has no such field"
    ),
    ("ChatCompletionRequest", "tool_choice", "wider"): (
        "tool_choice is a plain str, not the enum none|auto: OpenAI-compatible servers also take 'required'"
    ),
    ("ResponseFormat", "type", "wider"): (
        "a plain str rather than the enum text|json_object|json_schema, so new formats pass through"
    ),
    ("ResponseFormat", "schema", "extra"): (
        "json_object's `schema`: llama-cpp-python (no json_schema type) constrains the object to it"
    ),
    ("MessageContentPart/0", "type", "tag"): (
        "content parts are a union tagged by `type`: 'text' here; the spec leaves `type` a free string"
    ),
    ("MessageContentPart/1", "type", "tag"): (
        "content parts are a union tagged by `type`: 'image_url' here; the spec leaves `type` a free string"
    ),
    ("ToolCall", "id", "optional"): (
        "ToolCall doubles as the response's tool call and decodes leniently (id defaults to ''); on "
        "the request side it is always sent (no omit_defaults)"
    ),
    ("ToolCall", "type", "optional"): "defaults to 'function', the only kind; always sent",
    ("ToolCall", "function", "optional"): "defaults to an empty function (lenient decode); always sent",
    ("ToolCallFunction", "name", "optional"): "defaults to '' (lenient decode); always sent",
    ("ToolCallFunction", "arguments", "optional"): "defaults to '' (lenient decode); always sent",
    ("ChatCompletionToolsParam", "type", "optional"): "defaults to 'function', the only kind; always sent",
    ("ChatCompletionNamedToolChoiceParam", "type", "optional"): (
        "defaults to 'function', the only kind; always sent"
    ),
    # --------------------------------------------------------------- response
    ("ChatCompletionResponse", "id", "optional"): _LENIENT,
    ("ChatCompletionResponse", "created", "optional"): _LENIENT,
    ("ChatCompletionResponse", "model", "optional"): _LENIENT,
    ("ChatCompletionResponse", "object", "optional"): (
        _LENIENT + "; `object` in particular is absent from some servers' bodies"
    ),
    ("ChatCompletionChoice", "index", "optional"): _LENIENT,
    ("ChatCompletionChoice", "message", "narrower"): (
        "the spec reuses the request union (content parts, four roles) for the answer; the SDK decodes "
        "the assistant's answer into ChatCompletionResponseMessage (compared below as "
        "'ChatCompletionChoice.message')"
    ),
    ("ChatCompletionChoice", "stop_reason", "extra"): (
        "vLLM's stop_reason (int | str | null) appears in Atoma choices; decoded leniently"
    ),
    ("ChatCompletionChoice.message", "content", "narrower"): (
        "an answer's content is text: str | None, not the request's content-part array"
    ),
    ("ChatCompletionChoice.message", "name", "missing"): (
        "no server puts a participant name on its answer; an unknown `name` is ignored on decode"
    ),
    ("ChatCompletionChoice.message", "role", "optional"): _LENIENT + " (role defaults to 'assistant')",
    ("ChatCompletionChoice.message", "reasoning_content", "extra"): (
        "reasoning models (vLLM, DeepSeek) send reasoning_content; the chunk delta has it in the spec"
    ),
    ("ChatCompletionLogProbs", "refusal", "extra"): "OpenAI's logprobs.refusal",
    ("ChatCompletionLogProbsContent", "top_logprobs", "optional"): _LENIENT + " (defaults to [])",
    ("ChatCompletionLogProbsContent", "token", "extra"): (
        "the spec forgot the token's own token/logprob/bytes (OpenAI and vLLM send them)"
    ),
    ("ChatCompletionLogProbsContent", "logprob", "extra"): (
        "the spec forgot the token's own token/logprob/bytes (OpenAI and vLLM send them)"
    ),
    ("ChatCompletionLogProbsContent", "bytes", "extra"): (
        "the spec forgot the token's own token/logprob/bytes (OpenAI and vLLM send them)"
    ),
    ("ChatCompletionLogProb", "token", "optional"): _LENIENT,
    ("ChatCompletionLogProb", "logprob", "optional"): _LENIENT,
    ("CompletionUsage", "prompt_tokens", "optional"): _LENIENT + " (counts default to 0)",
    ("CompletionUsage", "completion_tokens", "optional"): _LENIENT + " (counts default to 0)",
    ("CompletionUsage", "total_tokens", "optional"): _LENIENT + " (counts default to 0)",
    ("CompletionUsage", "completion_tokens_details", "extra"): (
        "OpenAI's completion_tokens_details (the spec has it only on the completions `Usage`)"
    ),
    ("PromptTokensDetails", "audio_tokens", "optional"): (
        "over-required by the spec: vLLM sends only cached_tokens (breaks the TypeScript SDK)"
    ),
    ("PromptTokensDetails", "cached_tokens", "optional"): "both details are optional, like audio_tokens",
    ("ChatCompletionResponse", "response_hash", "extra"): _ATOMA_FIELDS,
    ("ChatCompletionResponse", "signature", "extra"): _ATOMA_FIELDS,
    ("ChatCompletionChunk", "response_hash", "extra"): _ATOMA_FIELDS,
    ("ChatCompletionChunk", "signature", "extra"): _ATOMA_FIELDS,
    ("ChatCompletionChunk", "id", "optional"): _LENIENT,
    ("ChatCompletionChunk", "created", "optional"): _LENIENT,
    ("ChatCompletionChunk", "model", "optional"): _LENIENT,
    ("ChatCompletionChunk", "object", "optional"): _LENIENT + "; some servers omit `object`",
    (
        "ChatCompletionChunk",
        "system_fingerprint",
        "extra",
    ): "OpenAI chunk field (on the response in the spec)",
    ("ChatCompletionChunk", "service_tier", "extra"): "OpenAI chunk field (on the response in the spec)",
    ("ChatCompletionChunkChoice", "index", "optional"): _LENIENT,
    ("ChatCompletionChunkChoice", "stop_reason", "narrower"): (
        "lenient stop_reason: the spec renders a Rust enum as {'Int': n} | {'String': s}, but its custom "
        "serializer (and vLLM) send a bare int or string, which is what the SDK decodes"
    ),
    ("ChatCompletionChunkDelta", "refusal", "extra"): "OpenAI's refusal delta",
    ("ChatCompletionChunkDeltaToolCall", "id", "optional"): (
        "tool-call deltas after the first carry only index + arguments (OpenAI, vLLM, llmock): id is "
        "optional (over-required by the spec; breaks the TypeScript SDK)"
    ),
    ("ChatCompletionChunkDeltaToolCall", "type", "optional"): (
        "tool-call deltas after the first carry only index + arguments: type is optional"
    ),
    ("ChatCompletionChunkDeltaToolCall", "index", "optional"): _LENIENT + " (index defaults to 0)",
}

# Examples in the spec that are not valid under the spec itself: (schema, property, keyword) -> why.
BROKEN_EXAMPLES: dict[tuple[str, str, str], str] = {
    ("ChatCompletionRequest", "stop", "example"): (
        "the junk string 'json([\"stop\", \"halt\"])' (meant the array ['stop', 'halt'])"
    ),
    ("ChatCompletionRequest", "stop", "default"): "the string '[]' (meant an empty array)",
    ("ChatCompletionResponse", "choices", "example"): "a JSON *string* holding the array, not the array",
    ("ChatCompletionChunk", "choices", "example"): "a JSON *string* holding the array, not the array",
}


# ------------------------------------------------------------------ spec helpers


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[_ref_name(schema)]
    return schema


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        return []
    return list(kind) if isinstance(kind, list) else [kind]


_INT32 = (-(2**31), 2**31 - 1)


def spec_valid(value: Any, schema: dict[str, Any]) -> bool:
    """A JSON Schema (2020-12 subset the spec uses) validator: type, enum, oneOf, allOf, properties,
    required, items, additionalProperties, propertyNames, minimum, format int32."""
    schema = _resolve(schema)
    if "allOf" in schema:
        return all(spec_valid(value, s) for s in schema["allOf"])
    if "oneOf" in schema:
        return sum(spec_valid(value, s) for s in schema["oneOf"]) == 1
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = _types(schema)
    if kinds and not any(_is_type(value, k) for k in kinds):
        return False
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int | float):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        return not (schema.get("format") == "int32" and not _INT32[0] <= value <= _INT32[1])
    if isinstance(value, list):
        return all(spec_valid(v, schema.get("items", {})) for v in value)
    if isinstance(value, dict):
        if any(name not in value for name in schema.get("required", ())):
            return False
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", {})
        names = schema.get("propertyNames")
        for key, item in value.items():
            as_int = _resolve(names or {}).get("type") == "integer" and key.isdigit()
            if names is not None and not spec_valid(int(key) if as_int else key, names):
                return False
            if key in props:
                if not spec_valid(item, props[key]):
                    return False
            elif isinstance(extra, dict) and not spec_valid(item, extra):
                return False
    return True


def _is_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    raise AssertionError(f"unknown JSON Schema type {kind!r}")


def _chat_closure() -> set[str]:
    roots = ["CreateChatCompletionRequest", "CreateChatCompletionStreamRequest", "ChatCompletionResponse"]
    roots += ["ChatCompletionStreamResponse"]
    seen: set[str] = set(roots)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node and _ref_name(node) not in seen:
                seen.add(_ref_name(node))
                walk(SCHEMAS[_ref_name(node)])
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for root in roots:
        walk(SCHEMAS[root])
    return seen


# ------------------------------------------------------------ type compatibility


def _alts(t: mi.Type) -> tuple[mi.Type, ...]:
    return t.types if isinstance(t, mi.UnionType) else (t,)


def _model_for(schema: dict[str, Any]) -> type[msgspec.Struct] | None:
    for spec_schema, cls, _ in MODELS.values():
        if spec_schema is schema:
            return cls
    return None


def accepts(t: mi.Type, schema: dict[str, Any]) -> bool:
    """Does the msgspec type `t` take every value the spec schema allows?"""
    alts = _alts(t)
    if any(isinstance(a, mi.AnyType) for a in alts):
        return True
    if "$ref" in schema:
        return accepts(t, SCHEMAS[_ref_name(schema)])
    cls = _model_for(schema)
    if cls is not None:
        return any(isinstance(a, mi.StructType) and a.cls is cls for a in alts)
    if "oneOf" in schema:
        return all(accepts(t, variant) for variant in schema["oneOf"])
    kinds = _types(schema)
    if not kinds:
        return False  # any JSON value, and `t` is not Any
    return all(_accepts_kind(alts, schema, kind) for kind in kinds)


def _accepts_kind(alts: tuple[mi.Type, ...], schema: dict[str, Any], kind: str) -> bool:
    if kind == "null":
        return any(isinstance(a, mi.NoneType) for a in alts)
    if kind == "string":
        if any(isinstance(a, mi.StrType) for a in alts):
            return True
        enum = schema.get("enum")
        literals = {v for a in alts if isinstance(a, mi.LiteralType) for v in a.values}
        return enum is not None and set(enum) <= literals
    if kind == "integer":
        return any(isinstance(a, mi.IntType | mi.FloatType) for a in alts)
    if kind == "number":
        return any(isinstance(a, mi.FloatType) for a in alts)
    if kind == "boolean":
        return any(isinstance(a, mi.BoolType) for a in alts)
    if kind == "array":
        items = schema.get("items", {})
        return any(isinstance(a, mi.ListType) and accepts(a.item_type, items) for a in alts)
    if kind == "object":
        if "properties" in schema:
            return False  # an inline object with properties needs a Struct of its own
        values = schema.get("additionalProperties", {})
        return any(
            isinstance(a, mi.DictType)
            and isinstance(a.key_type, mi.StrType)
            and accepts(a.value_type, values)
            for a in alts
        )
    raise AssertionError(kind)


def within(t: mi.Type, schema: dict[str, Any]) -> bool:
    """Is every value of the msgspec type `t` allowed by the spec schema? (Request side: may the SDK
    send something the spec does not allow?)"""
    return all(_alt_within(a, schema) for a in _alts(t))


def _alt_within(a: mi.Type, schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return _alt_within(a, SCHEMAS[_ref_name(schema)])
    if "oneOf" in schema:
        return any(_alt_within(a, variant) for variant in schema["oneOf"])
    cls = _model_for(schema)
    if cls is not None:
        return isinstance(a, mi.StructType) and a.cls is cls
    kinds = _types(schema)
    if not kinds:
        return True  # the spec allows any JSON value
    if isinstance(a, mi.NoneType):
        return "null" in kinds
    if isinstance(a, mi.StrType):
        return "string" in kinds and "enum" not in schema
    if isinstance(a, mi.LiteralType):
        return all(spec_valid(v, schema) for v in a.values)
    if isinstance(a, mi.BoolType):
        return "boolean" in kinds
    if isinstance(a, mi.IntType):
        return "integer" in kinds or "number" in kinds
    if isinstance(a, mi.FloatType):
        return "number" in kinds
    if isinstance(a, mi.ListType):
        return "array" in kinds and within(a.item_type, schema.get("items", {}))
    if isinstance(a, mi.DictType):
        values = schema.get("additionalProperties", {})
        return "object" in kinds and "properties" not in schema and within(a.value_type, values)
    return False  # Any, or a Struct where the spec has a plain type


def mismatches(key: str) -> set[tuple[str, str, str]]:
    schema, cls, side = MODELS[key]
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    fields = {f.encode_name: f for f in info.fields}
    required = set(schema.get("required", ()))
    found: set[tuple[str, str, str]] = set()
    props: dict[str, Any] = schema["properties"]
    for prop, prop_schema in props.items():
        if prop == info.tag_field:
            if info.tag not in _resolve(prop_schema).get("enum", ()):
                found.add((key, prop, "tag"))
            continue
        field = fields.get(prop)
        if field is None:
            found.add((key, prop, "missing"))
            continue
        if not accepts(field.type, prop_schema):
            found.add((key, prop, "narrower"))
        if side == REQUEST and not within(field.type, prop_schema):
            found.add((key, prop, "wider"))
        if prop in required and not field.required:
            found.add((key, prop, "optional"))
        if prop not in required and field.required:
            found.add((key, prop, "required"))  # never acceptable: a valid payload would fail
    for name in fields:
        if name not in props:
            found.add((key, name, "extra"))
    return found


# ------------------------------------------------------------ synthetic payloads


def synth(schema: dict[str, Any], pick: int = 0, nulls: bool = False) -> Any:
    """A spec-valid value for `schema` with every property set. `pick` chooses union variants (and
    pick 0 takes the spec's valid examples, other picks synthesise), `nulls` takes null wherever
    the spec allows it. A content part's free-form `type` gets the SDK's tag (see DEVIATIONS)."""
    if "$ref" in schema:
        return synth(SCHEMAS[_ref_name(schema)], pick, nulls)
    if "oneOf" in schema:
        variants = schema["oneOf"]
        if nulls and any(v.get("type") == "null" for v in variants):
            return None
        real = [v for v in variants if v.get("type") != "null"]
        return synth(real[pick % len(real)], pick, nulls)
    if pick == 0 and "example" in schema and spec_valid(schema["example"], schema):
        return copy.deepcopy(schema["example"])
    kinds = _types(schema)
    if nulls and "null" in kinds:
        return None
    kinds = [k for k in kinds if k != "null"]
    if not kinds:
        return {"free": ["any", 1, None]}
    kind = kinds[0]
    if "enum" in schema:
        return schema["enum"][pick % len(schema["enum"])]
    if kind == "string":
        return "text"
    if kind == "integer":
        return 7
    if kind == "number":
        return 0.25
    if kind == "boolean":
        return True
    if kind == "array":
        items = schema.get("items", {})
        resolved = _resolve(items)
        if "oneOf" in resolved:
            variants = [v for v in resolved["oneOf"] if v.get("type") != "null"]
            return [synth(v, pick, nulls) for v in variants]  # one element per variant
        return [synth(items, pick, nulls)]
    if "properties" in schema:
        value = {name: synth(sub, pick, nulls) for name, sub in schema["properties"].items()}
        info = mi.type_info(_model_for(schema) or dict)
        if isinstance(info, mi.StructType) and info.tag_field in value:
            value[info.tag_field] = info.tag
        return value
    integer_keys = schema.get("propertyNames", {}).get("type") == "integer"
    return {"1234" if integer_keys else "key": synth(schema.get("additionalProperties", {}), pick, nulls)}


def _assistant_answer(pick: int, nulls: bool) -> dict[str, Any]:
    """A spec-valid assistant message whose content is text (what answers carry), without the
    `name` the SDK drops (test_response_message_name_is_ignored)."""
    message = synth(_variant("ChatCompletionMessage", "Assistant"), pick, nulls)
    message["content"] = None if nulls else "Hello there"
    del message["name"]
    return message


def wire_form(payload: Any) -> Any:
    """The spec payload as servers actually send it: `stop_reason` {"Int": n} / {"String": s}
    (the spec's rendering of a Rust enum) is a bare int or string on the wire (see DEVIATIONS)."""
    if isinstance(payload, list):
        return [wire_form(v) for v in payload]
    if not isinstance(payload, dict):
        return payload
    out = {k: wire_form(v) for k, v in payload.items()}
    reason = out.get("stop_reason")
    if isinstance(reason, dict):
        (out["stop_reason"],) = reason.values()
    return out


def synth_model(key: str, pick: int = 0, nulls: bool = False) -> dict[str, Any]:
    schema, _, _ = MODELS[key]
    value: dict[str, Any] = synth(schema, pick, nulls)
    # Fix-ups for the documented deviations, so the payload is both spec-valid and decodable.
    if key in ("ChatCompletionResponse", "ChatCompletionChoice"):
        choices = value["choices"] if key == "ChatCompletionResponse" else [value]
        for choice in choices:
            choice["message"] = _assistant_answer(pick, nulls)
    if key == "ChatCompletionChoice.message":
        value["content"] = None if nulls else "Hello there"
    return value


def subset(expected: Any, actual: Any) -> bool:
    """`expected` (spec JSON) is contained in `actual` (the SDK's builtins): extra keys allowed."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(subset(e, a) for e, a in zip(expected, actual))
        )
    if isinstance(expected, float) or isinstance(actual, float):
        return expected == pytest.approx(actual)
    return bool(expected == actual) and type(expected) is type(actual)


def roundtrip(key: str, payload: dict[str, Any]) -> Any:
    """Decode `payload` from JSON into the model; request models must re-encode to the same JSON,
    response models must hold everything the payload said (unknown keys excepted)."""
    _, cls, side = MODELS[key]
    payload = wire_form(payload)
    raw = json.dumps(payload).encode()
    decoded = msgspec.json.decode(raw, type=cls)
    if side == REQUEST:
        assert json.loads(msgspec.json.encode(decoded)) == payload
    else:
        dropped = {name for (k, name, kind) in DEVIATIONS if k == key and kind == "missing"}
        expected = {k: v for k, v in payload.items() if k not in dropped}
        assert subset(expected, msgspec.to_builtins(decoded)), (expected, msgspec.to_builtins(decoded))
    return decoded


# ===================================================================== the tests


def test_spec_copy_is_the_proxy_spec() -> None:
    assert SPEC["openapi"] == "3.1.0"
    assert SPEC["info"]["title"] == "atoma-proxy"
    ops = {op["operationId"] for path in SPEC["paths"].values() for op in path.values()}
    assert {"chat_completions_create", "chat_completions_create_stream"} <= ops


def test_every_chat_schema_is_mapped() -> None:
    """Each schema reachable from the chat operations has a Struct here, or is a value schema."""
    mapped = {key.split("/")[0] for key in MODELS if "." not in key}
    assert _chat_closure() == mapped | set(VALUE_SCHEMAS)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_properties_exist_with_compatible_types(key: str) -> None:
    expected = {d for d in DEVIATIONS if d[0] == key}
    assert mismatches(key) == expected


def test_deviation_table_has_no_unknown_models() -> None:
    assert {key for key, _, _ in DEVIATIONS} <= set(MODELS)


@pytest.mark.parametrize("title", ["System", "User", "Assistant", "Tool"])
def test_message_variants_are_tagged_by_role(title: str) -> None:
    schema = _variant("ChatCompletionMessage", title)
    info = mi.type_info(MODELS[f"ChatCompletionMessage/{title}"][1])
    assert isinstance(info, mi.StructType)
    assert info.tag_field == "role"
    assert schema["properties"]["role"]["enum"] == [info.tag]
    assert schema["required"] == ["role"]


def test_role_enum_plus_developer() -> None:
    """The SDK's message union is the spec's `Role` enum plus 'developer' (a listed deviation)."""
    union = mi.type_info(chat.ChatCompletionMessage)
    assert isinstance(union, mi.UnionType)
    tags = {t.tag for t in union.types if isinstance(t, mi.StructType)}
    assert tags == set(SCHEMAS["Role"]["enum"]) | {"developer"}


# ------------------------------------------------------------------- examples


def _examples() -> list[tuple[str, str, str, Any, dict[str, Any]]]:
    """(schema, property, keyword, value, property schema) for every example/default in the chat schemas."""
    out = []
    for name in sorted(_chat_closure()):
        schema = SCHEMAS[name]
        parts = [(name, schema)]
        parts += [(name, s) for s in schema.get("allOf", ())]
        parts += [(name, v) for v in schema.get("oneOf", ())]
        for owner, part in parts:
            for prop, sub in part.get("properties", {}).items():
                for keyword in ("example", "default"):
                    if keyword in sub:
                        out.append((owner, prop, keyword, sub[keyword], sub))
    return out


EXAMPLES = _examples()


def test_broken_examples_are_exactly_the_known_ones() -> None:
    broken = {(o, p, k) for o, p, k, value, sub in EXAMPLES if not spec_valid(value, sub)}
    assert broken == set(BROKEN_EXAMPLES)
    assert len(EXAMPLES) > 40  # the walk did find the examples


@pytest.mark.parametrize(
    ("owner", "prop", "keyword", "value"),
    [
        (o, p, k, v)
        for o, p, k, v, sub in EXAMPLES
        if spec_valid(v, sub) and o in {m.split("/")[0] for m in MODELS}
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_valid_example_encodes_and_decodes(owner: str, prop: str, keyword: str, value: Any) -> None:
    keys = [
        k for k, (schema, _, _) in MODELS.items() if k.split("/")[0] == owner and prop in schema["properties"]
    ]
    if owner == "ChatCompletionMessage":  # the `name` examples: one per variant, all strings
        keys = [k for k in keys if MODELS[k][0]["properties"][prop].get(keyword) == value]
    assert keys, (owner, prop)
    for key in keys:
        payload = synth_model(key)
        payload[prop] = copy.deepcopy(value)
        assert spec_valid(payload, MODELS[key][0])
        decoded = roundtrip(key, payload)
        if MODELS[key][2] == RESPONSE:
            assert subset(value, msgspec.to_builtins(getattr(decoded, prop)))


def test_example_stop_junk_string() -> None:
    """The `stop` example is a string; the SDK (stop: str | list) sends it as that bare string, and
    the array that was meant round-trips."""
    junk = SCHEMAS["ChatCompletionRequest"]["properties"]["stop"]["example"]
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for stop in (junk, ["stop", "halt"], json.loads(junk[len("json(") : -1])):
        req = msgspec.convert({**base, "stop": stop}, chat.ChatCompletionRequest)
        assert json.loads(msgspec.json.encode(req))["stop"] == stop


@pytest.mark.parametrize(
    ("owner", "key"), [("ChatCompletionResponse", "choices"), ("ChatCompletionChunk", "choices")]
)
def test_example_choices_json_strings_decode_once_parsed(owner: str, key: str) -> None:
    """`choices` examples are JSON text; parsed, they are spec-valid and decode."""
    text = SCHEMAS[owner]["properties"][key]["example"]
    choices = json.loads(text)
    payload = {**synth_model(owner), "choices": choices}
    assert spec_valid(payload, SCHEMAS[owner])
    decoded = roundtrip(owner, payload)
    first = decoded.choices[0]
    message = first.message if owner == "ChatCompletionResponse" else first.delta
    assert message.role == "assistant"
    assert message.content == "Hello! How can you help me today?"
    assert first.finish_reason is None
    assert first.stop_reason is None
    # As given (a string where the array belongs) the SDK refuses it, as it should.
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps({**payload, "choices": text}), type=MODELS[owner][1])


# --------------------------------------------------------- synthetic payloads


@pytest.mark.parametrize("pick", [0, 1, 2, 3])
@pytest.mark.parametrize("key", sorted(MODELS))
def test_full_instance_roundtrips(key: str, pick: int) -> None:
    """Every property set, union variants rotated by `pick`: spec-valid, and the SDK takes it whole."""
    payload = synth_model(key, pick)
    assert spec_valid(payload, MODELS[key][0]), payload
    roundtrip(key, payload)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_nullable_properties_take_null(key: str) -> None:
    """Every property the spec lets be null, as null: requests send null, responses decode it."""
    payload = synth_model(key, nulls=True)
    assert spec_valid(payload, MODELS[key][0]), payload
    roundtrip(key, payload)


def test_minimal_instances() -> None:
    """Only the spec's required properties: every model decodes it (nothing extra is required)."""
    for key, (schema, cls, _) in MODELS.items():
        full = synth_model(key)
        minimal = {name: full[name] for name in schema.get("required", ())}
        assert spec_valid(minimal, schema), key
        msgspec.json.decode(json.dumps(wire_form(minimal)), type=cls)


def test_request_messages_all_variants_and_content_parts() -> None:
    example = synth_model("ChatCompletionRequest")["messages"]
    assert example == SCHEMAS["ChatCompletionRequest"]["properties"]["messages"]["example"]
    for pick in (2, 3):
        request = synth_model("ChatCompletionRequest", pick)
        assert [m["role"] for m in request["messages"]] == ["system", "user", "assistant", "tool"]
        kinds = {type(m["content"]).__name__ for m in request["messages"]}
        assert kinds == ({"str"} if pick == 2 else {"list"})
        decoded = roundtrip("ChatCompletionRequest", request)
        assert [type(m).__name__ for m in decoded.messages] == [
            "SystemMessage",
            "UserMessage",
            "AssistantMessage",
            "ToolMessage",
        ]
        if pick == 3:
            parts = decoded.messages[1].content
            assert [type(p).__name__ for p in parts] == ["TextContentPart", "ImageContentPart"]


def test_tool_choice_both_variants() -> None:
    for choice in ("none", "auto", {"type": "function", "function": {"name": "get_current_weather"}}):
        payload = {**synth_model("ChatCompletionRequest"), "tool_choice": choice}
        assert spec_valid(payload, SCHEMAS["ChatCompletionRequest"])
        roundtrip("ChatCompletionRequest", payload)


@pytest.mark.parametrize("wire", [None, 0, 128009, "###", "</s>"])
def test_stop_reason_wire_forms_decode(wire: Any) -> None:
    chunk = {
        **synth_model("ChatCompletionChunk"),
        "choices": [{"index": 0, "delta": {}, "stop_reason": wire}],
    }
    decoded = msgspec.json.decode(json.dumps(chunk), type=chat.ChatCompletionChunk)
    assert decoded.choices[0].stop_reason == wire


@pytest.mark.parametrize("spec_form", [{"Int": 3}, {"String": "###"}])
def test_stop_reason_spec_form_is_refused(spec_form: dict[str, Any]) -> None:
    """The spec's object form never appears on the wire (deviation); the SDK does not accept it."""
    assert spec_valid(spec_form, SCHEMAS["StopReason"])
    chunk = {"choices": [{"index": 0, "delta": {}, "stop_reason": spec_form}]}
    with pytest.raises(msgspec.ValidationError, match="stop_reason"):
        msgspec.json.decode(json.dumps(chunk), type=chat.ChatCompletionChunk)


def test_lenient_tool_call_delta_and_usage_details() -> None:
    """What real servers send and the spec calls invalid: a continuation delta, partial details."""
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "prompt_tokens_details": {}},
    }
    assert not spec_valid(chunk, SCHEMAS["ChatCompletionChunk"])
    decoded = msgspec.json.decode(json.dumps(chunk), type=chat.ChatCompletionChunk)
    call = decoded.choices[0].delta.tool_calls[0]
    assert (call.id, call.type, call.function.arguments) == (None, None, '{"a"')
    assert decoded.usage.prompt_tokens_details == chat.PromptTokensDetails(
        cached_tokens=None, audio_tokens=None
    )
    no_object = {k: v for k, v in chunk.items() if k != "object"}
    assert (
        msgspec.json.decode(json.dumps(no_object), type=chat.ChatCompletionChunk).object
        == "chat.completion.chunk"
    )


def test_response_message_name_is_ignored() -> None:
    """The spec's answer may carry `name` (request union); the SDK has no field for it (deviation)."""
    choice = synth_model("ChatCompletionChoice")
    choice["message"]["name"] = "AI"
    assert spec_valid(choice, SCHEMAS["ChatCompletionChoice"])
    decoded = msgspec.json.decode(json.dumps(wire_form(choice)), type=chat.ChatCompletionChoice)
    assert decoded.message.content == "Hello there"
    assert not hasattr(decoded.message, "name")


def test_response_message_content_parts_are_refused() -> None:
    """Spec-valid (the request union allows parts) but refused: answers carry text (deviation)."""
    choice = synth_model("ChatCompletionChoice")
    choice["message"]["content"] = [{"type": "text", "text": "hi"}]
    assert spec_valid(choice, SCHEMAS["ChatCompletionChoice"])
    with pytest.raises(msgspec.ValidationError, match=r"message.content"):
        msgspec.json.decode(json.dumps(wire_form(choice)), type=chat.ChatCompletionChoice)


def test_atoma_fields_are_kept_and_vllm_extras_ignored() -> None:
    body = wire_form(synth_model("ChatCompletionResponse"))
    atoma = {"response_hash": "aGFzaA==", "signature": "sig"}
    vllm = {"prompt_logprobs": None, "kv_transfer_params": None}
    decoded = msgspec.json.decode(json.dumps({**body, **atoma, **vllm}), type=chat.ChatCompletionResponse)
    assert subset(body, msgspec.to_builtins(decoded))
    assert (decoded.response_hash, decoded.signature) == ("aGFzaA==", "sig")
    assert not any(hasattr(decoded, name) for name in vllm)


# ------------------------------------------------------------------- the wire


FULL_REQUEST = {
    "model": "sandbox-model",
    "messages": [
        {"role": "system", "content": "be brief", "name": "AI expert"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:,"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
    ],
    "frequency_penalty": 0.0,
    "logit_bias": {"1234567890": 0.5},
    "max_tokens": 16,
    "n": 1,
    "parallel_tool_calls": True,
    "presence_penalty": 0.0,
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    "seed": 123,
    "stop": ["stop", "halt"],
    "temperature": 0.7,
    "tool_choice": "auto",
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "top_logprobs": 1,
    "top_p": 1.0,
    "user": "user-1234",
}


async def test_wire_request_create_is_a_create_chat_completion_request(sandbox: Any, core: AtomaCore) -> None:
    result = await chat_create(core, FULL_REQUEST)
    assert isinstance(result, Ok), result
    sent = sandbox.requests[-1].json
    assert spec_valid(sent, SCHEMAS["CreateChatCompletionRequest"]), sent
    assert sent["stream"] is False
    # The one change the SDK makes: null content on an assistant tool-call message becomes "" (the
    # proxy answers 400 to null content, docs 2.1 #7); both are spec-valid.
    assert sent["messages"][2]["content"] == ""
    assert {k: v for k, v in sent.items() if k not in ("stream", "messages")} == {
        k: v for k, v in FULL_REQUEST.items() if k != "messages"
    }


async def test_wire_request_stream_is_a_create_chat_completion_stream_request(
    sandbox: Any, core: AtomaCore
) -> None:
    result = await chat_create_stream(core, {**FULL_REQUEST, "tool_choice": "none"})
    assert isinstance(result, Ok), result
    async with result.unwrap() as stream:
        done = await stream.collect()
    assert isinstance(done, Ok), done
    sent = sandbox.requests[-1].json
    assert spec_valid(sent, SCHEMAS["CreateChatCompletionStreamRequest"]), sent
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
