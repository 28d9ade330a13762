"""A case's timeline in words (lib.cases.timeline): each event's facts become catalog keys with
parameters in lib, and the case page and the tracking page only translate them."""

from __future__ import annotations

from datetime import datetime, timezone

from lib.cases import timeline, tracking
from lib.cases.timeline import Phrase
from lib.core.clock import china_time
from lib.core.i18n import t
from tests.factories import PHONE, move, new_case, open_page, sms_code


def test_facts_become_keys_with_parameters_and_nested_phrases():
    due = datetime(2026, 12, 7, 9, 30, tzinfo=timezone.utc)
    assert timeline.facts("accept", {"severity": ["general", "major"]}) == (
        Phrase("case.severity_set", {"from_": Phrase("severity.general"),
                                     "to": Phrase("severity.major")}),)
    assert timeline.facts("extend", {"old_due": None, "new_due": due.isoformat()}) == (
        Phrase("case.new_due", {"at": due}),)
    assert timeline.facts("feedback", {"reached": False}) == (Phrase("feedback.unreachable"),)
    assert timeline.facts("hurry", {"count": 2}) == (Phrase("case.hurried", {"count": 2}),)
    assert timeline.facts("dispatch", {"lead": "X", "co": []}) == ()  # the orders table says it
    assert timeline.facts("accept", None) == ()
    hidden = timeline.staff_line(due, "reject", None, None, note_hidden=True)
    assert (hidden.action, hidden.facts, hidden.note) == (Phrase("action.reject"),
                                                         (timeline.NOTE_HIDDEN,), None)


def _timeline_notes(at) -> list[str]:
    frame = at.dataframe[-1].value
    return [str(v) for v in frame.iloc[:, -1]]


def test_the_case_page_and_the_tracking_page_say_the_facts_in_the_readers_language(sqlite_db):
    case = new_case(sqlite_db, phone=PHONE)
    other = new_case(sqlite_db, description="又堆上了")
    move(sqlite_db, "community01", case.id, "accept", severity="major", note="先清通道")
    move(sqlite_db, "community01", other.id, "merge", merge_into=case.id)
    for lang, severity_set, merged in (
            ("zh", "紧急程度：一般 → 较大 · 先清通道", f"重复上报 {other.code} 已并入"),
            ("en", "Severity: General → Major · 先清通道", f"duplicate report {other.code} merged in")):
        at = open_page("community01", "pages/case.py", id=str(case.id),
                       **({"lang": lang} if lang != "zh" else {}))
        assert not at.exception
        notes = _timeline_notes(at)  # newest first
        assert notes[:2] == [merged, severity_set], lang

    view = tracking.track(sqlite_db, case.code, sms_code(sqlite_db, case.code))
    assert [line.action for line in view.lines] == [Phrase("public_action.report"),
                                                    Phrase("public_action.accept"),
                                                    Phrase("public_action.add_report")]
    assert all(not line.facts and line.note is None for line in view.lines)
    at = open_page(None, "pages/track.py")
    at.text_input(key="track_code_box").input(case.code)
    at.text_input[1].input(sms_code(sqlite_db, case.code))
    at.button(key="FormSubmitter:track_lookup-查询").click().run()
    shown = [m.value for m in at.markdown]
    for line in view.lines:
        assert f"- {china_time(line.at)} · {t(line.action.key)}" in shown
    assert not any("先清通道" in m or other.code in m for m in shown)
