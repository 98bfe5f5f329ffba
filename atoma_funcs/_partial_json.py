"""An incremental, lenient JSON parser: feed it text as it streams in, read `value()` at any
point to get what has arrived as plain dicts and lists (open strings, arrays and objects shown
as far as they go; keys, numbers and literals once complete).

Incremental so that reading after every chunk stays linear in the text: each character is
looked at once (a string's text by one C-level search), containers are built in place, and
`value()` returns the live value (copy it to keep a snapshot that does not change). Only the
string being received is shown anew when read, so one very long string costs a copy of itself
per read. Malformed input stops the updates; it never raises (the complete text is validated
at the end anyway).

The hot path (`take`, once per chunk of a stream; some 1 us per 10-character chunk of a dense
document) is written out flat, which is why this module is long: a chunk without escapes is cut
at its quotes (one `split`: no search per string) and its strings and ", " / ": " taken from the
pieces; the rest of a chunk (numbers, literals, brackets) goes through one loop over its tokens,
a key with its ": " and a value with its ", " in one step, no calls for the common tokens.
Escapes, prose around the JSON and malformed text take the slow way (`_step`, `_string`).
"""

from __future__ import annotations

import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

__all__ = ["PartialJSON"]

# What the parser expects next. While a string is open, _KEY or _VALUE says what it is.
_VALUE, _KEY, _COLON, _AFTER, _DONE = range(5)
_SCALAR = re.compile(r"[^ \t\r\n,\]\}]*")
_MATCH_SCALAR = _SCALAR.match
_ROOT_START = re.compile(r"[\[{]")
_STRING_STOP = re.compile(r'["\\]')
_STARTS_SCALAR = frozenset("-0123456789tfn")
_LITERALS = {"true": True, "false": False, "null": None}


class PartialJSON:
    """Feed text with `feed` (or `take`); `value()` is the JSON value received so far (None
    before any)."""

    __slots__ = (
        "_dirty",
        "_escaped",
        "_escapes",
        "_key",
        "_keys",
        "_root",
        "_scalar",
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
        # The string being received: its raw text, shown (a value) as the innermost container's
        # last item, or at `_key` of it, or as the root.
        self._text: str | None = None
        self._escapes = False  # it has backslash escapes (decoded when shown); reset at its end
        self._escaped = False  # the last chunk ended right after a backslash (then _escapes too)
        self._dirty = False  # the open string's shown text is behind
        self._scalar: str | None = None  # a number or literal that may go on in the next chunk

    def value(self) -> Any:
        """The value so far: the live containers, with the open string brought up to date."""
        if self._dirty:
            self._dirty = False
            text = self._text
            if text is not None and self._state != _KEY:
                self._show(_lenient(text) if self._escapes else text)
        return self._root

    def feed(self, text: str) -> None:
        """Take the next piece of the text (an open string with escapes is decoded when read)."""
        self.take(text, False)

    # ------------------------------------------------------------------ feeding

    def take(self, text: str, show: bool = True) -> Any:
        """Take the next piece of the text and return `value()`: one call per chunk for a reader
        of every chunk. (`show=False`, as `feed`: leave the open string to be shown when read.)"""
        i = 0
        n = len(text)
        stack = self._stack
        state = self._state
        key = self._key
        top: Any = stack[-1] if stack else None
        backslash = "\\" in text
        if self._scalar is not None:  # a number or literal cut by the last chunk: take it whole
            text = self._scalar + text
            n = len(text)
            self._scalar = None
        elif backslash or self._escapes:  # escapes: the loop below, the open string the slow way
            if self._text is not None:
                i = self._string(text, 0, n)
                if i == n:
                    return self.value() if show else None
                state = self._state
                key = self._key
                top = stack[-1] if stack else None
        else:
            # The usual chunk, without escapes: cut at its quotes, it alternates between what is
            # between strings and a string's text. The common steps are taken here, without a
            # search per string; at anything else the loop below goes on from there.
            parts = text.split('"')
            last = len(parts) - 1
            k = 0
            if self._text is not None:  # the open string goes on
                part = parts[0]
                if not last:  # and still open: show it as far as it goes (`feed`: when read)
                    raw = self._text = self._text + part
                    if not show:
                        self._dirty = True
                    elif state == _VALUE:
                        if top is None:
                            self._root = raw
                        elif type(top) is dict:
                            top[key] = raw
                        else:
                            top[-1] = raw
                    return self._root
                raw = self._text + part
                self._text = None
                self._dirty = False
                if state == _KEY:
                    key = raw
                    state = _COLON
                elif top is None:
                    self._root = raw
                    state = _DONE
                else:
                    if type(top) is dict:
                        top[key] = raw
                    else:
                        top[-1] = raw
                    state = _AFTER
                k = 1
                i = len(part) + 1
            while True:
                part = parts[k]  # between strings
                if part:
                    if part == ", " and state == _AFTER:
                        state = _KEY if type(top) is dict else _VALUE
                    elif part == ": " and state == _COLON:
                        state = _VALUE
                    else:
                        break  # anything else: the loop below, from `i`
                if k == last:  # the end of the chunk
                    self._state = state
                    self._key = key
                    return self._root
                i += len(part) + 1
                k += 1
                part = parts[k]  # a string's text
                if state > _KEY or top is None:  # misplaced, or the root: the loop below
                    i -= 1
                    break
                if k == last:  # open at the end of the chunk
                    self._text = part
                    self._state = state
                    self._key = key
                    if state == _VALUE:
                        self._started = True
                        if not show:  # shown when read (by `value()`)
                            self._dirty = True
                            part = ""
                        if type(top) is dict:
                            top[key] = part
                        else:
                            top.append(part)
                    return self._root
                if state == _KEY:
                    key = part
                    state = _COLON
                else:
                    if type(top) is dict:
                        top[key] = part
                    else:
                        top.append(part)
                    state = _AFTER
                i += len(part) + 1
                k += 1
        while i < n:
            c = text[i]
            if c == '"':
                j = text.find('"', i + 1)
                if backslash and text.find("\\", i + 1, n if j < 0 else j) >= 0:
                    j = -2  # escapes: the slow way (below)
                if j >= 0:
                    if state == _KEY:
                        key = text[i + 1 : j]
                        if text[j + 1 : j + 3] == ": ":  # the key and its colon in one step
                            state = _VALUE
                            i = j + 3
                        else:
                            state = _COLON
                            i = j + 1
                        continue
                    if state == _VALUE:
                        if top is None:
                            self._root = text[i + 1 : j]
                            self._started = True
                            state = _DONE
                        else:
                            if type(top) is dict:
                                top[key] = text[i + 1 : j]
                            else:
                                top.append(text[i + 1 : j])
                            state = _AFTER
                        i = j + 1
                        continue
                elif j == -1 and state <= _KEY:  # open at the end of the chunk (_VALUE or _KEY)
                    self._text = raw = text[i + 1 :]
                    self._state = state
                    self._key = key
                    if state == _VALUE:
                        self._started = True
                        if not show:  # shown when read (by `value()`)
                            self._dirty = True
                            raw = ""
                        if top is None:
                            if show:
                                self._root = raw
                        elif type(top) is dict:
                            top[key] = raw
                        else:
                            top.append(raw)
                    return self._root
                self._state = state
                self._key = key
                i = self._step(text, i, n)  # escapes (or a misplaced string): the slow way
                state = self._state
                key = self._key
                top = stack[-1] if stack else None
            elif c == "," and state == _AFTER:
                state = _KEY if type(top) is dict else _VALUE
                i += 2 if text[i + 1 : i + 2] == " " else 1  # ", ": one step, not two
            elif c == ":" and state == _COLON:
                state = _VALUE
                i += 2 if text[i + 1 : i + 2] == " " else 1
            elif (c == "{" or c == "[") and state == _VALUE:
                container: Any = {} if c == "{" else []
                if top is None:
                    self._root = container
                    self._started = True
                elif type(top) is dict:
                    top[key] = container
                    self._keys.append(key)
                else:
                    top.append(container)
                stack.append(container)
                top = container
                state = _KEY if c == "{" else _VALUE
                i += 1
            elif (c == "}" or c == "]") and top is not None and (type(top) is dict) is (c == "}"):
                if state != _AFTER and state != (_KEY if c == "}" else _VALUE):
                    self._stop()
                    return self._root
                stack.pop()
                if stack:
                    top = stack[-1]
                    if type(top) is dict:
                        key = self._keys.pop()
                    if text[i + 1 : i + 3] == ", ":  # and its comma in one step
                        state = _KEY if type(top) is dict else _VALUE
                        i += 3
                        continue
                    state = _AFTER
                else:
                    top = None
                    state = _DONE
                i += 1
            elif state == _VALUE and c in _STARTS_SCALAR:
                end = _MATCH_SCALAR(text, i).end()  # type: ignore[union-attr]
                if end == n:  # it may go on in the next chunk
                    self._state = state
                    self._key = key
                    self._scalar = text[i:]
                    return self._root
                token = text[i:end]
                i = end
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
                        return self._root
                elif top is None:
                    self._root = value
                    self._started = True
                    state = _DONE
                else:
                    if type(top) is dict:
                        top[key] = value
                        state = _KEY
                    else:
                        top.append(value)
                        state = _VALUE
                    if text[i : i + 2] == ", ":  # and its comma in one step
                        i += 2
                    else:
                        state = _AFTER
            elif c == " " or c == "\n" or c == "\t" or c == "\r":
                i += 1
            else:
                self._state = state
                self._key = key
                i = self._step(text, i, n)  # prose before the JSON, the end, errors
                state = self._state
                key = self._key
                top = stack[-1] if stack else None
        self._state = state
        self._key = key
        if self._dirty and show:
            return self.value()
        return self._root

    def _step(self, text: str, i: int, n: int) -> int:
        """One step the slow way: a bracket, a string with escapes, prose before the JSON, or
        what follows the value. Returns where to go on (n: nothing more in this chunk)."""
        c = text[i]
        state = self._state
        if c == '"' and state in (_KEY, _VALUE):
            self._open_string(state == _KEY)
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
        self._escapes = self._escaped = False
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

    # ------------------------------------------------------------------ strings

    def _open_string(self, is_key: bool) -> None:
        self._text = ""
        self._escapes = self._escaped = False
        self._dirty = True
        if is_key:
            return
        stack = self._stack
        self._started = True
        if not stack:
            return
        if type(stack[-1]) is dict:
            stack[-1][self._key] = ""
        else:
            stack[-1].append("")

    def _show(self, text: str) -> None:
        """Show the open string's text where it goes (it is the innermost container's last)."""
        stack = self._stack
        if not stack:
            self._root = text
        elif type(stack[-1]) is dict:
            stack[-1][self._key] = text
        else:
            stack[-1][-1] = text

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
            self._escapes = False
            try:
                raw = scanstring(raw + '"', 0, False)[0]
            except ValueError:
                self._stop()
                return
        if self._state == _KEY:
            self._key = raw
            self._state = _COLON
            return
        self._show(raw)
        self._state = _AFTER if self._stack else _DONE


_NOT_A_VALUE: Any = object()


def _lenient(raw: str) -> str:
    """An open string's text so far, without an escape cut in half at its end."""
    for cut in range(min(len(raw), 12) + 1):
        try:
            return str(scanstring(raw[: len(raw) - cut] + '"', 0, False)[0])
        except ValueError:
            continue
    return ""
