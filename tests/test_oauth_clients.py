"""qlikm2m.oauth_clients: which secret a rotation replaces (the rest runs end to end in
tests/e2e/test_oauth_commands.py)."""

from __future__ import annotations

import pytest

from qlikm2m.errors import ApiError, Interrupted, UsageError
from qlikm2m.oauth_clients import Rotation, _run_rotation, choose_old_hint


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


def test_a_key_rotation_report_names_kids() -> None:
    rotation = Rotation(client_id="c", old_hint="old-kid", new_hint="new-kid", kind="key")

    assert rotation.as_dict()["oldKid"] == "old-kid"
    assert rotation.as_dict()["newKid"] == "new-kid"
    assert "oldHint" not in rotation.as_dict()


def _steps(calls: list[str], **raising: BaseException) -> dict[str, object]:
    def step(name: str) -> object:
        def run() -> None:
            calls.append(name)
            if name in raising:
                raise raising[name]

        return run

    return {name: step(name) for name in ("prove", "store", "undo_new", "delete_old")}


@pytest.mark.parametrize(
    ("stored_after_interrupt", "undone", "works"),
    [(False, True, "The old secret (ab12)"), (True, False, "The new secret")],
    ids=["store-rolled-back", "store-committed"],
)
def test_an_interrupt_during_the_store_asks_whether_it_committed(
    stored_after_interrupt: bool, undone: bool, works: str
) -> None:
    calls: list[str] = []
    rotation = Rotation(client_id="c", old_hint="ab12", new_hint="cd34")
    steps = _steps(calls, store=KeyboardInterrupt())

    with pytest.raises(Interrupted) as caught:
        _run_rotation(
            rotation,
            was_stored=lambda: stored_after_interrupt,
            cleanup_new="delete new",
            cleanup_old="delete old",
            **steps,  # type: ignore[arg-type]
        )

    assert ("undo_new" in calls) is undone
    assert "delete_old" not in calls
    assert f"{works} still works" in caught.value.message
    assert caught.value.exit_code == 130
    expected = ["delete old (if it is still listed)"] if stored_after_interrupt else []
    assert caught.value.details["rotation"]["remaining"] == expected


def test_a_failed_undo_is_left_to_a_person() -> None:
    calls: list[str] = []
    rotation = Rotation(client_id="c", old_hint="ab12", new_hint="cd34")
    steps = _steps(calls, prove=ApiError("refused"), undo_new=ApiError("down"))

    with pytest.raises(ApiError) as caught:
        _run_rotation(
            rotation, was_stored=None, cleanup_new="delete new", cleanup_old="delete old",
            **steps,  # type: ignore[arg-type]
        )  # fmt: skip

    assert "could not prove the new secret" in caught.value.message
    assert caught.value.hint == "delete new"
