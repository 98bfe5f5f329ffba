"""A Python type -> the strict JSON Schema a model is asked to fill, and the decoder back into
that type; compiled once per type (`output_spec`). msgspec serves Structs, dataclasses,
TypedDicts, lists, Literals and unions; pydantic serves types that mention a `BaseModel`, and is
only looked at when the caller already imported it (so it is never imported here).

OpenAI's strict-mode rules, which open servers (vLLM, llama.cpp) also accept: every object
`additionalProperties: false`, every property required (an optional one as a union with
`null`), a `$ref` with sibling keys inlined, `default`s (and OpenAPI's `discriminator`) dropped.
A model that answers `null` for an optional field gets the field's default: the null is dropped
before validating.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import typing
from typing import Any, Callable

import msgspec

__all__ = ["DecodeFailure", "OutputSpec", "mentions", "output_spec", "strict_schema"]

DecodeFailure = (msgspec.DecodeError, ValueError, TypeError, KeyError)
"""What a decoder raises on content that does not fit (pydantic's ValidationError is a ValueError)."""


class OutputSpec:
    """What `T` compiles to: a name, the strict schema (object-shaped for a tool's parameters
    when `wrapped`: `{"value": T}`), and `decode(text) -> T`."""

    __slots__ = ("_convert", "_decode", "_original", "name", "parameters", "schema", "type", "wrapped")

    def __init__(
        self,
        type_: Any,
        schema: dict[str, Any],
        decode: Callable[[str], Any],
        convert: Callable[[Any], Any],
    ) -> None:
        self.type = type_
        self.name = _name_of(type_)
        self._original = schema
        self.schema = strict_schema(schema)
        self._decode = decode
        self._convert = convert
        root = _resolve(self.schema, self.schema)
        self.wrapped = not (root.get("type") == "object" and "properties" in root)
        if self.wrapped:
            inner = {k: v for k, v in self.schema.items() if k != "$defs"}
            self.parameters = {
                "type": "object",
                "properties": {"value": inner},
                "required": ["value"],
                "additionalProperties": False,
            }
            if "$defs" in self.schema:
                self.parameters["$defs"] = self.schema["$defs"]
        else:
            self.parameters = self.schema

    def decode(self, text: str) -> Any:
        """The content as a `T`; raises one of `DecodeFailure` with the decoder's message."""
        try:
            return self._decode(text)
        except DecodeFailure:
            relaxed = self._without_added_nulls(text)
            if relaxed is None:
                raise
        return self._convert(relaxed)

    def decode_arguments(self, text: str) -> Any:
        """A tool call's arguments as a `T` (unwrapping `{"value": ...}` when wrapped)."""
        if not self.wrapped:
            return self.decode(text)
        value = json.loads(text)
        if not isinstance(value, dict) or "value" not in value:
            raise ValueError("Object missing required field `value`")
        return self.decode(json.dumps(value["value"]))

    def _without_added_nulls(self, text: str) -> Any:
        """The content with the nulls of optional fields dropped, or None if there are none."""
        try:
            value = json.loads(text)
        except ValueError:
            return None
        stripped = _strip_nulls(value, self._original, self._original, 0)
        return None if stripped == value else stripped


_SPECS: dict[Any, OutputSpec] = {}


def output_spec(type_: Any) -> OutputSpec:
    """The compiled spec of `type_`, cached (TypeError if no schema can be made for it)."""
    try:
        return _SPECS[type_]
    except KeyError:
        pass
    except TypeError:  # unhashable: compiled every time
        return _compile(type_)
    spec = _SPECS[type_] = _compile(type_)
    return spec


def _compile(type_: Any) -> OutputSpec:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and mentions(type_, pydantic.BaseModel):
        adapter = pydantic.TypeAdapter(type_)
        return OutputSpec(type_, adapter.json_schema(), adapter.validate_json, adapter.validate_python)
    schema = msgspec.json.schema(type_)  # TypeError for what msgspec cannot describe
    decoder = msgspec.json.Decoder(type_)
    return OutputSpec(type_, schema, decoder.decode, lambda value: msgspec.convert(value, type_))


def mentions(type_: Any, base: type, depth: int = 0) -> bool:
    """Whether `type_` is `base` (or a subclass), or has one among its type arguments."""
    if isinstance(type_, type) and issubclass(type_, base):
        return True
    return depth < 8 and any(mentions(arg, base, depth + 1) for arg in typing.get_args(type_))


def _name_of(type_: Any) -> str:
    name = getattr(type_, "__name__", None) or getattr(typing.get_origin(type_), "__name__", None)
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name or "output")[:64]


# ---------------------------------------------------------------- strict mode


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` under the strict-mode rules (see the module docstring)."""
    root = copy.deepcopy(schema)
    _strict(root, root)
    _prune_defs(root)
    return root


def _prune_defs(root: dict[str, Any]) -> None:
    """Drop the `$defs` nothing refers to any more (the root's own, once inlined)."""
    defs = root.get("$defs")
    if not isinstance(defs, dict):
        return
    used: set[str] = set()
    pending = [{k: v for k, v in root.items() if k != "$defs"}]
    while pending:
        for ref in _refs_in(pending.pop()):
            if ref not in used and ref in defs:
                used.add(ref)
                pending.append(defs[ref])
    for name in [n for n in defs if n not in used]:
        del defs[name]
    if not defs:
        del root["$defs"]


def _strict(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    for key in ("$defs", "definitions"):
        for sub in (node.get(key) or {}).values():
            if isinstance(sub, dict):
                _strict(sub, root)
    properties = node.get("properties")
    if node.get("type") == "object" or isinstance(properties, dict):
        node.setdefault("additionalProperties", False)
    if isinstance(properties, dict):
        required = set(node.get("required", ()))
        for name, sub in list(properties.items()):
            sub = _strict(sub, root) if isinstance(sub, dict) else sub
            if name not in required and isinstance(sub, dict) and not _allows_null(sub, root):
                sub = {"anyOf": [sub, {"type": "null"}]}
            properties[name] = sub
        node["required"] = list(properties)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _strict(node[key], root)
    for key in ("anyOf", "oneOf", "prefixItems"):
        if isinstance(node.get(key), list):
            node[key] = [_strict(sub, root) if isinstance(sub, dict) else sub for sub in node[key]]
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        del node["allOf"]
        node.update(_strict(all_of[0], root))
    node.pop("default", None)
    node.pop("discriminator", None)  # OpenAPI's, not JSON Schema's; the tags' enums say the same
    if "$ref" in node and len(node) > 1:  # a $ref with siblings: inline what it points to
        ref = node["$ref"]
        if node is not root and isinstance(ref, str) and _recursive(ref, root):
            # Inlining a type that contains itself never ends (and inlining it once would cut the
            # recursion off): keep the bare $ref; its siblings are annotations (a description).
            node.clear()
            node["$ref"] = ref
            return node
        del node["$ref"]
        merged = {**copy.deepcopy(_resolve({"$ref": ref}, root)), **node}
        node.clear()
        node.update(_strict(merged, root))
    return node


def _refs_in(node: Any) -> list[str]:
    """The `$defs` names `node` refers to directly (anywhere inside it)."""
    return re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(node))


def _recursive(ref: str, root: dict[str, Any]) -> bool:
    """Whether the definition `ref` points to refers back to itself, directly or through others."""
    defs = root.get("$defs")
    name = ref.removeprefix("#/$defs/")
    if not isinstance(defs, dict) or name == ref or name not in defs:
        return False
    seen: set[str] = set()
    pending = _refs_in(defs[name])
    while pending:
        found = pending.pop()
        if found == name:
            return True
        if found not in seen and found in defs:
            seen.add(found)
            pending.extend(_refs_in(defs[found]))
    return False


def _resolve(node: Any, root: dict[str, Any]) -> dict[str, Any]:
    for _ in range(32):
        if not isinstance(node, dict) or "$ref" not in node or not isinstance(node["$ref"], str):
            break
        target: Any = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) and part else target
        node = target
    return node if isinstance(node, dict) else {}


def _allows_null(node: dict[str, Any], root: dict[str, Any]) -> bool:
    node = _resolve(node, root)
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if None in node.get("enum", ()) or ("const" in node and node["const"] is None):
        return True
    return any(_allows_null(sub, root) for sub in [*node.get("anyOf", ()), *node.get("oneOf", ())])


def _strip_nulls(value: Any, node: Any, root: dict[str, Any], depth: int) -> Any:
    """`value` without the nulls a model sent for optional fields whose type does not take null."""
    node = _resolve(node, root)
    if depth > 64 or not node:
        return value
    if isinstance(value, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            required = set(node.get("required", ()))
            out = {}
            for key, item in value.items():
                sub = properties.get(key)
                if item is None and key not in required and sub is not None and not _allows_null(sub, root):
                    continue
                out[key] = _strip_nulls(item, sub, root, depth + 1) if sub is not None else item
            return out
        for branch in [*node.get("anyOf", ()), *node.get("oneOf", ())]:
            props = _resolve(branch, root).get("properties")
            if isinstance(props, dict) and value.keys() <= props.keys():
                return _strip_nulls(value, branch, root, depth + 1)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return {k: _strip_nulls(v, extra, root, depth + 1) for k, v in value.items()}
        return value
    if isinstance(value, list):
        prefix = node.get("prefixItems") or []
        items = node.get("items")
        if not prefix and not isinstance(items, dict):
            for branch in node.get("anyOf", ()):
                if _resolve(branch, root).get("type") == "array":
                    return _strip_nulls(value, branch, root, depth + 1)
        return [
            _strip_nulls(item, prefix[i] if i < len(prefix) else items, root, depth + 1)
            for i, item in enumerate(value)
        ]
    return value
