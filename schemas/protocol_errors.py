"""Errors in session protocol files, and where in the file they are.

Why a module of its own: ``session_protocol`` checks what a protocol says; this module holds
the machinery that turns a mistake into the one-line ``FILE:LINE: what is wrong`` a person
can act on in an editor: the ``ProtocolError`` itself, TOML syntax errors rephrased with their
line, the line of any key or table found wrong after parsing (``KeyLines``), "did you mean"
hints and a short description of a wrong value.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from typing import Any

__all__ = ["KeyLines", "ProtocolError", "show", "suggest", "syntax_error"]


class ProtocolError(Exception):
    """A protocol that cannot be used. ``str()`` is one line, ``FILE:LINE: what is wrong``
    (``FILE: what is wrong`` when no line applies), ready to show to the person editing it.
    ``file``, ``line`` (1-based or None) and ``message`` are kept for programs."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.message = " ".join(message.split())
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {self.message}")


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def syntax_error(exc: tomllib.TOMLDecodeError, text: str, label: str) -> ProtocolError:
    """tomllib says "Msg (at line L, column C)"; make it "FILE:L: TOML syntax error: msg"."""
    message = str(exc)
    line: int | None = None
    found = _TOML_AT.search(message)
    if found:
        line, column = int(found.group(1)), int(found.group(2))
        message = f"{message[:found.start()]} (column {column})"
    elif message.endswith("(at end of document)"):
        line = max(1, len(text.splitlines()))
        message = message.removesuffix("(at end of document)").strip() + " (at end of file)"
    message = message[:1].lower() + message[1:]
    return ProtocolError(label, line, f"TOML syntax error: {message}")


class KeyLines:
    """Line numbers of keys and tables, for errors found after parsing.

    Tables are addressed as tuples: ``()`` top level, ``("dose",)``, ``("point", 3)`` for the
    third ``[[point]]`` (1-based, as people count). A key's line is the first line after which
    the text so far, parsed by ``tomllib`` itself, holds that key: neither tomllib nor any
    well-kept TOML library reports positions (tomlkit keeps the formatting, not line numbers),
    and asking the real parser keeps every TOML rule (quoted and dotted keys, multi-line
    strings) in one place. A cut inside a value never parses, so a value written over several
    lines is placed on its last line. Run on errors only: a few hundred lines take well under
    a second."""

    def __init__(self, text: str) -> None:
        self.text = text

    def line(self, table: tuple, key: str | None = None) -> int:
        """The line of ``key`` in ``table`` (a value or a sub-table), else of the table's
        header, else of the nearest enclosing table's, else 1."""
        path = (*table, key) if key is not None else table
        while path:
            found = self._first_line_holding(path)
            if found is not None:
                return found
            path = path[:-1]
        return 1

    def _first_line_holding(self, path: tuple) -> int | None:
        prefix = ""
        for number, line in enumerate(self.text.split("\n"), start=1):
            prefix += line + "\n"
            try:
                data = tomllib.loads(prefix)
            except tomllib.TOMLDecodeError:
                continue
            if _holds(data, path):
                return number
        return None


def _holds(data: Any, path: tuple) -> bool:
    """Whether ``path`` (keys, and 1-based indices into arrays of tables) exists in ``data``."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or len(data) < part:
                return False
            data = data[part - 1]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return False
    return True


def suggest(key: str, known: tuple[str, ...]) -> str:
    """A " (did you mean 'x'?)" hint naming the known key closest to a mistyped one, or ""."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def show(value: Any) -> str:
    """A wrong value as a person wrote it: "a table", "a list", true/false, or its repr."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value) if not isinstance(value, bool) else str(value).lower()
