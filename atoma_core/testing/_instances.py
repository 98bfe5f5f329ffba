"""A deterministic valid instance of a JSON Schema: what the sandbox answers a `json_schema`
response_format or a tool's `parameters` with (a real server with guided decoding does the same).

Covers what msgspec and pydantic emit: `$ref`/`$defs`, `anyOf`/`oneOf`/`allOf`, `enum`, `const`,
`type` (one or a list), object properties, arrays with `minItems`/`prefixItems`, string lengths
and common `format`s, number bounds. Strings carry `text` (the user's words), cut to `maxLength`.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["instance_of", "schema_in_text"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FORMATS = {
    "date-time": "2026-01-02T03:04:05Z",
    "date": "2026-01-02",
    "time": "03:04:05Z",
    "uuid": "12345678-1234-5678-1234-567812345678",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "duration": "P1D",
    "decimal": "1.5",
}


def instance_of(schema: Any, text: str = "text") -> Any:
    """A value that `schema` accepts; optional (nullable) parts get their non-null branch."""
    return _Builder(schema if isinstance(schema, dict) else {}, text).build(schema, 0)


class _Builder:
    def __init__(self, root: dict[str, Any], text: str) -> None:
        self.root = root
        self.text = text or "text"
        self.numbers = [float(n) if "." in n else int(n) for n in _NUMBER.findall(self.text)]

    def resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            if part:
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
        return node

    def build(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > 32:
            return None
        if "$ref" in schema:
            return self.build({**self.resolve(schema["$ref"]), **_without(schema, "$ref")}, depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = schema[key]
                chosen = next((b for b in branches if not _is_null(b)), branches[0])
                return self.build({**_without(schema, key), **chosen}, depth + 1)
        if "allOf" in schema:
            merged = _without(schema, "allOf")
            for part in schema["allOf"]:
                merged = {**merged, **(self.resolve(part["$ref"]) if "$ref" in part else part)}
            return self.build(merged, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        return getattr(self, "_" + kind, self._null)(schema, depth)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        return {name: self.build(sub, depth + 1) for name, sub in schema.get("properties", {}).items()}

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix = [self.build(sub, depth + 1) for sub in schema.get("prefixItems", ())]
        # One item shows the shape; deep down only what minItems asks, so a recursive type ends.
        usual = 1 if "items" in schema and depth < 12 else 0
        count = max(schema.get("minItems", usual) - len(prefix), 0)
        items = schema.get("items")
        if items is False or not isinstance(items, dict):
            return prefix
        return prefix + [self.build(items, depth + 1) for _ in range(count)]

    def _string(self, schema: dict[str, Any], depth: int) -> str:
        value = _FORMATS.get(schema.get("format", ""), self.text)
        value = value.ljust(schema.get("minLength", 0), "x")
        return value[: schema["maxLength"]] if "maxLength" in schema else value

    def _number(self, schema: dict[str, Any], depth: int) -> float | int:
        for said in self.numbers:  # a number the user wrote ("magic_function(3)"), if it fits
            if _fits(said, schema):
                return said if schema.get("type") != "integer" else int(said)
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + 1 if "exclusiveMinimum" in schema else low
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if high is not None and value > high:
            value = high
        multiple = schema.get("multipleOf")
        if multiple:
            value = multiple * -(-value // multiple)
        return value if schema.get("type") != "integer" else int(value)

    def _integer(self, schema: dict[str, Any], depth: int) -> int:
        return int(self._number({**schema, "type": "integer"}, depth))

    def _boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return True

    def _null(self, schema: dict[str, Any], depth: int) -> None:
        return None


def _fits(value: float, schema: dict[str, Any]) -> bool:
    if schema.get("type") == "integer" and value != int(value):
        return False
    low, high = schema.get("minimum"), schema.get("maximum")
    above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    return (
        (low is None or value >= low)
        and (high is None or value <= high)
        and (above is None or value > above)
        and (below is None or value < below)
        and not (schema.get("multipleOf") and value % schema["multipleOf"])
    )


def _without(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def schema_in_text(text: str) -> dict[str, Any] | None:
    """The JSON Schema written into a prompt (the outermost `{...}`), as a model would read it."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        found = json.loads(text[start : end + 1])
    except ValueError:
        return None
    keys = {"type", "properties", "$ref", "anyOf", "enum", "const", "items"}
    if isinstance(found, dict) and found.keys() & keys:
        return found
    return None
