"""Doublestar globs: what Harbor's selectors match, and what they refuse to read."""

from __future__ import annotations

import pytest

from distribution.patterns import PatternInvalid, glob_check, glob_match


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("**", "app", True),
        ("**", "team/tools/lint", True),
        ("*", "app", True),
        ("*", "tools/lint", False),  # one segment only
        ("tools/*", "tools/lint", True),
        ("tools/*", "tools/a/b", False),
        ("tools/**", "tools/a/b", True),
        ("**/lint", "lint", True),  # **/ also matches no segment
        ("**/lint", "a/b/lint", True),
        ("v*", "v1.2", True),
        ("v*", "release-v1", False),  # a pattern matches the whole name
        ("v?", "v1", True),
        ("v?", "v10", False),
        ("{latest,stable}", "stable", True),
        ("{latest,stable}", "nightly", False),
        ("v{1,2}.*", "v2.0", True),
        ("v{1,2}.*", "v3.0", False),
        ("{a,{b,c}x}", "cx", True),
        ("[0-9]*", "1.0", True),
        ("[!0-9]*", "1.0", False),
        ("[!0-9]*", "latest", True),
        ("v1.0", "v1x0", False),  # a dot is a dot
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
    ],
)
def test_glob_match(pattern: str, name: str, matches: bool) -> None:
    assert glob_match(pattern, name) is matches


@pytest.mark.parametrize("pattern", ["{a,b", "[abc", "x\\", ""])
def test_unreadable_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PatternInvalid):
        glob_check(pattern)
