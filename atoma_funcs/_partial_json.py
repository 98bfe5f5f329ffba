"""An incremental, lenient JSON parser: feed it text as it streams in, read `value()` at any
point to get what has arrived as plain dicts and lists (open strings, arrays and objects shown
as far as they go; keys, numbers and literals once complete).

Incremental so that reading after every chunk stays linear: each character is looked at once,
strings are skipped with one C-level search per chunk, and containers are built in place (so
`value()` returns the live value: copy it to keep a snapshot that does not change). Only the
string being received is re-joined when read. Malformed input stops the updates; it never raises
(the complete text is validated at the end anyway).
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

__all__ = ["PartialJSON"]

_VALUE, _KEY, _COLON, _AFTER, _DONE = range(5)
_SPACE = re.compile(r"[ \t\r\n]*")
_STRING_STOP = re.compile(r'["\\]')
_SCALAR = re.compile(r"[^ \t\r\n,\]\}]*")
_ROOT_START = re.compile(r"[\[{]")
_STARTS_VALUE = frozenset('{["-0123456789tfn')


class PartialJSON:
    """Feed text with `feed`; `value()` is the JSON value received so far (None before any)."""

    __slots__ = (
        "_dirty",
        "_escaped",
        "_has_escapes",
        "_key",
        "_keys",
        "_parts",
        "_root",
        "_scalar",
        "_slot",
        "_stack",
        "_started",
        "_state",
        "_string_is_key",
    )

    def __init__(self) -> None:
        self._stack: list[Any] = []  # the open containers, innermost last
        self._keys: list[Any] = []  # for each open object, the key its next value goes to
        self._key: Any = None
        self._state = _VALUE
        self._root: Any = None
        self._started = False
        self._parts: list[str] | None = None  # the raw text of the string being received
        self._string_is_key = False
        self._has_escapes = False
        self._escaped = False  # the last chunk ended inside an escape (right after a backslash)
        self._slot: tuple[Any, Any] | None = None  # where the open string value is shown
        self._dirty = False
        self._scalar: str | None = None  # a number or literal that may go on in the next chunk

    # ------------------------------------------------------------------ reading

    def value(self) -> Any:
        """The value so far: the live containers, with the open string brought up to date."""
        if self._dirty:
            self._dirty = False
            parts = self._parts
            if parts is not None and not self._string_is_key:
                raw = "".join(parts)
                parts[:] = [raw]  # joined once: the next read joins only what came since
                self._show(_lenient_string(raw) if self._has_escapes else raw)
        return self._root

    # ------------------------------------------------------------------ feeding

    def feed(self, text: str) -> None:
        """Take the next piece of the text."""
        i = 0
        n = len(text)
        if self._parts is not None:
            i = self._string(text, 0, n)
        elif self._scalar is not None:
            end = _SCALAR.match(text).end()  # type: ignore[union-attr]
            self._scalar += text[:end]
            if end == n:
                return
            i = end
            self._end_scalar()
        while i < n:
            state = self._state
            c = text[i]
            if c in " \t\r\n":
                i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
                continue
            if state == _VALUE:
                if c == '"':
                    self._open_string(False)
                    i = self._string(text, i + 1, n)
                    continue
                if c == "{":
                    self._open({}, _KEY)
                elif c == "[":
                    self._open([], _VALUE)
                elif c == "]" and self._stack and type(self._stack[-1]) is list:
                    self._close()
                elif not self._started and c not in _STARTS_VALUE:  # prose before the JSON
                    found = _ROOT_START.search(text, i)
                    i = n if found is None else found.start()
                    continue
                else:
                    end = _SCALAR.match(text, i).end()  # type: ignore[union-attr]
                    self._scalar = text[i:end]
                    if end == n:
                        return
                    i = end
                    self._end_scalar()
                    continue
            elif state == _AFTER:
                if c == ",":
                    self._state = _KEY if type(self._stack[-1]) is dict else _VALUE
                elif c in "}]":
                    self._close()
                else:
                    return self._stop()
            elif state == _KEY:
                if c == '"':
                    self._open_string(True)
                    i = self._string(text, i + 1, n)
                    continue
                if c != "}":
                    return self._stop()
                self._close()
            elif state == _COLON:
                if c != ":":
                    return self._stop()
                self._state = _VALUE
            else:  # _DONE: whatever follows the value (a closing fence, prose) is not ours
                return
            i += 1

    def _stop(self) -> None:
        """Malformed: keep what was shown, take nothing more."""
        self._state = _DONE
        self._parts = None
        self._scalar = None

    def _attach(self, value: Any) -> None:
        stack = self._stack
        if not stack:
            self._root = value
            self._started = True
        elif type(stack[-1]) is dict:
            stack[-1][self._key] = value
        else:
            stack[-1].append(value)

    def _open(self, container: Any, state: int) -> None:
        self._attach(container)
        if self._stack and type(self._stack[-1]) is dict:
            self._keys.append(self._key)
        self._stack.append(container)
        self._state = state

    def _close(self) -> None:
        stack = self._stack
        stack.pop()
        if stack and type(stack[-1]) is dict:
            self._key = self._keys.pop()
        self._state = _AFTER if stack else _DONE

    def _after_value(self) -> None:
        self._state = _AFTER if self._stack else _DONE

    def _end_scalar(self) -> None:
        token, self._scalar = self._scalar, None
        try:
            value = json.loads(token)  # type: ignore[arg-type]
        except ValueError:
            return self._stop()
        self._attach(value)
        self._after_value()

    # ------------------------------------------------------------------ strings

    def _open_string(self, is_key: bool) -> None:
        self._parts = []
        self._string_is_key = is_key
        self._has_escapes = False
        if is_key:
            return
        stack = self._stack
        if not stack:
            self._slot = None
            self._root = ""
            self._started = True
        elif type(stack[-1]) is dict:
            stack[-1][self._key] = ""
            self._slot = (stack[-1], self._key)
        else:
            stack[-1].append("")
            self._slot = (stack[-1], len(stack[-1]) - 1)

    def _show(self, text: str) -> None:
        slot = self._slot
        if slot is None:
            self._root = text
        else:
            slot[0][slot[1]] = text

    def _string(self, text: str, i: int, n: int) -> int:
        """Take string text from `i`: returns where to go on (n if the string is still open)."""
        parts = self._parts
        assert parts is not None
        if self._escaped and i < n:  # the character after a backslash that ended the last chunk
            parts.append(text[i])
            i += 1
            self._escaped = False
        search = _STRING_STOP.search
        while True:
            found = search(text, i)
            if found is None:
                if i < n:
                    parts.append(text[i:])
                    self._dirty = True
                return n
            j = found.start()
            if text[j] == '"':
                if j > i:
                    parts.append(text[i:j])
                self._end_string()
                return j + 1
            self._has_escapes = True
            if j + 1 < n:
                parts.append(text[i : j + 2])
                i = j + 2
            else:
                parts.append(text[i:])
                self._escaped = True
                self._dirty = True
                return n

    def _end_string(self) -> None:
        parts, self._parts = self._parts, None
        raw = "".join(parts)  # type: ignore[arg-type]
        if self._has_escapes:
            try:
                raw = scanstring(raw + '"', 0, False)[0]
            except ValueError:
                return self._stop()
        self._dirty = False
        if self._string_is_key:
            self._key = raw
            self._state = _COLON
            return
        self._show(raw)
        self._after_value()


def _lenient_string(raw: str) -> str:
    """An open string's text so far, without an escape cut in half at its end."""
    for cut in range(min(len(raw), 12) + 1):
        try:
            return str(scanstring(raw[: len(raw) - cut] + '"', 0, False)[0])
        except ValueError:
            continue
    return ""
