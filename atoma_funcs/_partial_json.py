"""An incremental, lenient JSON parser: feed it text as it streams in, read `value()` at any
point to get what has arrived as plain dicts and lists (open strings, arrays and objects shown
as far as they go; keys, numbers and literals once complete).

Incremental so that reading after every chunk stays linear in the text: each character is
looked at once (a string's text by one C-level search), containers are built in place, and
`value()` returns the live value (copy it to keep a snapshot that does not change). Only the
string being received is shown anew when read, so one very long string costs a copy of itself
per read. Malformed input stops the updates; it never raises (the complete text is validated
at the end anyway).
"""

from __future__ import annotations

import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

__all__ = ["PartialJSON"]

_VALUE, _KEY, _COLON, _AFTER, _DONE = range(5)
_SCALAR = re.compile(r"[^ \t\r\n,\]\}]*")
_ROOT_START = re.compile(r"[\[{]")
_STRING_STOP = re.compile(r'["\\]')
_STARTS_SCALAR = frozenset("-0123456789tfn")
_SPACES = frozenset(" \t\r\n")
_STARTS_NUMBER = frozenset("-0123456789")
_LITERALS = {"true": True, "false": False, "null": None}


class PartialJSON:
    """Feed text with `feed`; `value()` is the JSON value received so far (None before any)."""

    __slots__ = (
        "_dirty",
        "_escaped",
        "_escapes",
        "_is_key",
        "_key",
        "_keys",
        "_root",
        "_scalar",
        "_slot",
        "_stack",
        "_started",
        "_state",
        "_text",
    )

    def __init__(self) -> None:
        self._stack: list[Any] = []  # the open containers, innermost last
        self._keys: list[Any] = []  # for each open object with an open child, its key
        self._key: Any = None  # the key the next value of the innermost object goes to
        self._state = _VALUE
        self._root: Any = None
        self._started = False
        self._text: str | None = None  # the raw text of the string being received
        self._is_key = False
        self._escapes = False  # it has backslash escapes (decoded when shown)
        self._escaped = False  # the last chunk ended right after a backslash
        self._slot: tuple[Any, Any] | None = None  # where the open string value is shown
        self._dirty = False
        self._scalar: str | None = None  # a number or literal that may go on in the next chunk

    def take(self, text: str) -> Any:
        """`feed(text)`, then `value()`: one call per chunk for a reader of every chunk."""
        self.feed(text)
        if self._dirty:
            return self.value()
        return self._root

    def value(self) -> Any:
        """The value so far: the live containers, with the open string brought up to date."""
        if self._dirty:
            self._dirty = False
            text = self._text
            if text is not None and not self._is_key:
                self._show(_lenient(text) if self._escapes else text)
        return self._root

    # ------------------------------------------------------------------ feeding

    def feed(self, text: str) -> None:
        """Take the next piece of the text. The loop is written out flat (locals, no calls for
        the common tokens): it runs once per chunk of a stream, on the hot path."""
        i = 0
        n = len(text)
        if self._text is not None:
            j = text.find('"')
            if j < 0 or self._escaped or self._escapes or text.find("\\", 0, j) >= 0:
                i = self._string(text, 0, n)
            else:  # the open string ends here, without escapes: the common case, inline
                raw = self._text + text[:j]
                self._text = None
                self._dirty = False
                i = j + 1
                if self._is_key:
                    self._key = raw
                    self._state = _COLON
                else:
                    slot = self._slot
                    if slot is None:
                        self._root = raw
                    else:
                        slot[0][slot[1]] = raw
                    self._state = _AFTER if self._stack else _DONE
        elif self._scalar is not None:
            end = _SCALAR.match(text).end()  # type: ignore[union-attr]
            self._scalar += text[:end]
            if end == n:
                return
            i = end
            self._end_scalar()
        stack = self._stack
        state = self._state
        find = text.find
        scalar = _SCALAR.match
        while i < n:
            c = text[i]
            if c == '"':
                j = find('"', i + 1)
                if find("\\", i + 1, n if j < 0 else j) >= 0 or (state != _KEY and state != _VALUE):
                    self._state = state
                    i = self._step(text, i, n)  # escapes (or a misplaced string): the slow way
                    state = self._state
                    continue
                if j < 0:  # open at the end of this chunk (no escapes in it: checked above)
                    self._state = state
                    self._text = text[i + 1 :]
                    self._escapes = self._escaped = False
                    self._dirty = True
                    self._is_key = state == _KEY
                    if state == _VALUE:
                        self._started = True
                        if not stack:
                            self._slot = None
                        elif type(stack[-1]) is dict:
                            stack[-1][self._key] = ""
                            self._slot = (stack[-1], self._key)
                        else:
                            stack[-1].append("")
                            self._slot = (stack[-1], len(stack[-1]) - 1)
                    return
                if state == _KEY:
                    self._key = text[i + 1 : j]
                    state = _COLON
                else:
                    if stack:
                        top = stack[-1]
                        if type(top) is dict:
                            top[self._key] = text[i + 1 : j]
                        else:
                            top.append(text[i + 1 : j])
                        state = _AFTER
                    else:
                        self._root = text[i + 1 : j]
                        self._started = True
                        state = _DONE
                i = j + 1
            elif c == "," and state == _AFTER:
                state = _KEY if type(stack[-1]) is dict else _VALUE
                i += 2 if text[i + 1 : i + 2] == " " else 1  # ", ": one step, not two
            elif c == ":" and state == _COLON:
                state = _VALUE
                i += 2 if text[i + 1 : i + 2] == " " else 1
            elif c in _SPACES:
                i += 1
            elif (c == "{" or c == "[") and state == _VALUE:
                container: Any = {} if c == "{" else []
                if stack:
                    top = stack[-1]
                    if type(top) is dict:
                        top[self._key] = container
                        self._keys.append(self._key)
                    else:
                        top.append(container)
                else:
                    self._root = container
                    self._started = True
                stack.append(container)
                state = _KEY if c == "{" else _VALUE
                i += 1
            elif (c == "}" or c == "]") and stack and (type(stack[-1]) is dict) is (c == "}"):
                if state != _AFTER and state != (_KEY if c == "}" else _VALUE):
                    self._stop()
                    return
                stack.pop()
                if stack and type(stack[-1]) is dict:
                    self._key = self._keys.pop()
                state = _AFTER if stack else _DONE
                i += 1
            elif state == _VALUE and c in _STARTS_SCALAR:
                end = scalar(text, i).end()  # type: ignore[union-attr]
                if end == n:  # it may go on in the next chunk
                    self._state = state
                    self._scalar = text[i:]
                    return
                token = text[i:end]
                if token in _LITERALS:
                    value: Any = _LITERALS[token]
                elif c == "t" or c == "f" or c == "n":
                    value = _NOT_A_VALUE
                else:
                    try:
                        value = float(token) if "." in token or "e" in token or "E" in token else int(token)
                    except ValueError:
                        value = _NOT_A_VALUE
                if value is _NOT_A_VALUE:
                    if self._started:
                        self._stop()
                        return
                elif stack:
                    top = stack[-1]
                    if type(top) is dict:
                        top[self._key] = value
                    else:
                        top.append(value)
                    state = _AFTER
                else:
                    self._root = value
                    self._started = True
                    state = _DONE
                i = end
            else:
                self._state = state
                i = self._step(text, i, n)  # brackets, prose before the JSON, the end, errors
                state = self._state
        self._state = state

    def _step(self, text: str, i: int, n: int) -> int:
        """One step the slow way: a bracket, a string with escapes, prose before the JSON, or
        what follows the value. Returns where to go on (n: nothing more in this chunk)."""
        c = text[i]
        state = self._state
        if c == '"' and state in (_KEY, _VALUE):
            self._open_string(state == _KEY, "")
            return self._string(text, i + 1, n)
        if state == _VALUE and (c == "{" or c == "["):
            self._open({} if c == "{" else [])
        elif c == "}" or c == "]":
            stack = self._stack
            closes = state == _AFTER or (state == _KEY if c == "}" else state == _VALUE)
            if not closes or not stack or (c == "}") != (type(stack[-1]) is dict):
                self._stop()
                return n
            self._close()
        elif state == _VALUE and not self._started:  # prose before the JSON
            found = _ROOT_START.search(text, i)
            return n if found is None else found.start()
        else:  # malformed, or what follows the value (a closing fence, prose): not ours
            self._stop()
            return n
        return i + 1

    def _stop(self) -> None:
        """Malformed: keep what was shown, take nothing more."""
        self._state = _DONE
        self._text = None
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

    def _open(self, container: Any) -> None:
        self._attach(container)
        stack = self._stack
        if stack and type(stack[-1]) is dict:
            self._keys.append(self._key)
        stack.append(container)
        self._state = _KEY if type(container) is dict else _VALUE

    def _close(self) -> None:
        stack = self._stack
        stack.pop()
        if stack and type(stack[-1]) is dict:
            self._key = self._keys.pop()
        self._state = _AFTER if stack else _DONE

    def _end_scalar(self) -> None:
        token, self._scalar = self._scalar, None
        try:
            value = _scalar_value(token)  # type: ignore[arg-type]
        except ValueError:
            if self._started:
                self._stop()
            return  # before the JSON: a word of prose
        self._attach(value)
        self._state = _AFTER if self._stack else _DONE

    # ------------------------------------------------------------------ strings

    def _open_string(self, is_key: bool, text: str) -> None:
        self._text = text
        self._is_key = is_key
        self._escapes = "\\" in text
        self._escaped = text.endswith("\\") and _odd_backslashes(text)
        self._dirty = True
        if is_key:
            return
        stack = self._stack
        self._started = True
        if not stack:
            self._slot = None
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
        """Take the open string's text from `i`: returns where to go on (n if it is still open)."""
        if self._escaped and i < n:  # the character after a backslash that ended the last chunk
            self._text += text[i]  # type: ignore[operator]
            i += 1
            self._escaped = False
        search = _STRING_STOP.search
        start = i
        while True:
            found = search(text, i)
            if found is None:
                self._text += text[start:]  # type: ignore[operator]
                self._dirty = True
                return n
            j = found.start()
            if text[j] == '"':
                self._end_string(self._text + text[start:j])  # type: ignore[operator]
                return j + 1
            self._escapes = True
            if j + 1 == n:
                self._text += text[start:]  # type: ignore[operator]
                self._escaped = True
                self._dirty = True
                return n
            i = j + 2

    def _end_string(self, raw: str) -> None:
        self._text = None
        self._dirty = False
        if self._escapes:
            try:
                raw = scanstring(raw + '"', 0, False)[0]
            except ValueError:
                self._stop()
                return
        if self._is_key:
            self._key = raw
            self._state = _COLON
            return
        self._show(raw)
        self._state = _AFTER if self._stack else _DONE


_NOT_A_VALUE: Any = object()


def _scalar_value(token: str) -> Any:
    """A number or literal (int() and float() are far cheaper than json.loads per token)."""
    if token in _LITERALS:
        return _LITERALS[token]
    if token[:1] not in _STARTS_NUMBER:
        raise ValueError(token)
    if "." in token or "e" in token or "E" in token:
        return float(token)
    return int(token)


def _odd_backslashes(text: str) -> bool:
    """Whether `text` ends inside an escape (an odd run of backslashes at its end)."""
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def _lenient(raw: str) -> str:
    """An open string's text so far, without an escape cut in half at its end."""
    for cut in range(min(len(raw), 12) + 1):
        try:
            return str(scanstring(raw[: len(raw) - cut] + '"', 0, False)[0])
        except ValueError:
            continue
    return ""
