"""The redaction safety net."""

from __future__ import annotations

from qlikm2m.redaction import mask, redact, register_secret


def test_registered_values_are_masked_everywhere_longest_first() -> None:
    register_secret("abcdefgh")
    register_secret("abcdefgh-ijkl")
    assert redact("x abcdefgh-ijkl y abcdefgh z") == "x *** y *** z"


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    assert redact("abc") == "abc"


def test_mask_shows_only_the_tail_of_long_values() -> None:
    assert mask(None) == ""
    assert mask("short-secret") == "***"
    assert mask("a-very-long-client-secret-1234") == "***1234"
