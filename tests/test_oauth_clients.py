"""qlikm2m.oauth_clients: which secret a rotation replaces (the rest runs end to end in
tests/e2e/test_oauth_commands.py)."""

from __future__ import annotations

import pytest

from qlikm2m.errors import UsageError
from qlikm2m.oauth_clients import Rotation, choose_old_hint


def test_the_only_secret_is_the_one_replaced() -> None:
    assert choose_old_hint(["ab12"], None, None, "c") == "ab12"


def test_among_several_the_secret_in_use_is_found_by_its_hint() -> None:
    assert choose_old_hint(["ab12", "cd34"], "long-secret-cd34", None, "c") == "cd34"
    assert choose_old_hint(["ab12", "cd34"], "ab12-long-secret", None, "c") == "ab12"


def test_an_explicit_hint_wins_and_must_exist() -> None:
    assert choose_old_hint(["ab12", "cd34"], "x-cd34", "ab12", "c") == "ab12"
    with pytest.raises(UsageError, match="no secret with hint 'zz99'"):
        choose_old_hint(["ab12"], None, "zz99", "c")


def test_an_undecidable_choice_is_refused_rather_than_guessed() -> None:
    with pytest.raises(UsageError, match="not clear") as caught:
        choose_old_hint(["ab12", "cd34"], None, None, "client-9")

    assert "--old-hint" in str(caught.value.hint)


def test_the_report_shape() -> None:
    rotation = Rotation(client_id="c", old_hint="ab12", new_hint="cd34", proved=True)

    assert rotation.as_dict() == {
        "clientId": "c",
        "oldHint": "ab12",
        "newHint": "cd34",
        "stored": False,
        "proved": True,
        "oldDeleted": False,
        "remaining": [],
    }
