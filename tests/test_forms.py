"""Forms with more than one box never send on Enter: a resident who presses Enter in the address
box, or a clerk in a move's note, sends nothing half-typed; only the form's button sends."""

from __future__ import annotations

import pytest

from tests.factories import new_case, open_page


def _forms(at) -> list:
    found = []

    def walk(node) -> None:
        if getattr(node, "type", None) == "form":
            found.append(node.proto.form)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


@pytest.mark.parametrize(("user", "path"), [
    (None, "pages/report.py"),
    (None, "pages/track.py"),
    ("grid01", "pages/staff_report.py"),
    ("admin", "pages/admin_users.py"),
    ("admin", "pages/admin_rewards.py"),
])
def test_no_form_sends_on_enter(sqlite_db, user, path):
    at = open_page(user, path)
    assert not at.exception
    forms = _forms(at)
    assert forms, f"{path} draws no form"
    assert [f.form_id for f in forms if f.enter_to_submit] == []


def test_no_move_form_on_a_case_sends_on_enter(sqlite_db):
    case = new_case(sqlite_db)
    at = open_page("community01", "pages/case.py", id=str(case.id))
    assert not at.exception
    forms = _forms(at)
    assert len(forms) >= 2  # accept, reject, call up …
    assert [f.form_id for f in forms if f.enter_to_submit] == []
