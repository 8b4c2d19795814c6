"""Doublestar globs, as Harbor's retention and immutability selectors use them.

``*`` matches within one path segment, ``**`` across segments (``**/`` also
matches no segment at all), ``?`` one character of a segment, ``[abc]`` and
``[!abc]`` a class, ``{a,b}`` any of the alternatives (nesting allowed), and
``\\`` escapes the next character.  A pattern matches the whole name.
"""

from __future__ import annotations

import re
from functools import lru_cache


class PatternInvalid(ValueError):
    """The glob cannot be read: an unclosed ``{`` or ``[``, or a trailing ``\\``."""


def glob_match(pattern: str, name: str) -> bool:
    """Whether ``name`` matches the doublestar glob ``pattern`` (PatternInvalid if unreadable)."""
    return _compiled(pattern).fullmatch(name) is not None


def glob_check(pattern: str) -> str:
    """``pattern`` itself when it is a readable glob; PatternInvalid otherwise."""
    if not pattern:
        raise PatternInvalid("a pattern cannot be empty; ** matches everything")
    _compiled(pattern)
    return pattern


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_translate(pattern))


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise PatternInvalid(f"unclosed [ in {pattern!r}")
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append(("[^/" if negate else "[") + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif c == "{":
            end, alternatives = _alternatives(pattern, i)
            out.append("(?:" + "|".join(_translate(a) for a in alternatives) + ")")
            i = end + 1
        elif c == "\\":
            if i + 1 >= len(pattern):
                raise PatternInvalid(f"trailing \\ in {pattern!r}")
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _alternatives(pattern: str, start: int) -> tuple[int, list[str]]:
    """The index of the ``}`` closing the ``{`` at ``start``, and the comma-split inside."""
    depth, parts, begin = 0, [], start + 1
    i = start
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                parts.append(pattern[begin:i])
                return i, parts
        elif c == "," and depth == 1:
            parts.append(pattern[begin:i])
            begin = i + 1
        i += 1
    raise PatternInvalid(f"unclosed {{ in {pattern!r}")
