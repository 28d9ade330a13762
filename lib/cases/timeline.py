"""A case's timeline in words: each event's action and facts as catalog keys with parameters.

Pages translate these lines and decide nothing: which facts an event shows, under which key,
and with which values, is said here once for the case page and the tracking page (and the
reward pages, for the case's moves behind a claim).

A parameter is text shown as it is (a code), a moment (shown in China time by the page), or
another ``Phrase`` (a rating, a severity: translated first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lib.cases.states import Act
from lib.core.clock import as_utc


@dataclass(frozen=True)
class Phrase:
    """A catalog key and its parameters."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Line:
    """One event as a reader sees it: when, the move, the facts, then the note: the words as
    typed (``note``) or a phrase saying they are withheld."""

    at: datetime
    action: Phrase
    facts: tuple[Phrase, ...] = ()
    note: str | None = None


NOTE_HIDDEN = Phrase("case.note_hidden")
# Facts that are a moment: the fact's name → the key that says it.
_MOMENTS = (("new_due", "case.new_due"), ("review_at", "case.review_at"),
            ("asked_due", "case.extension_asked"))
# Facts that are a change from one code to another.
_CHANGES = (("community", "case.reassigned_community"), ("category", "case.reassigned_category"))


def _moment(value: str) -> datetime:
    return as_utc(datetime.fromisoformat(value))


def facts(action: str, detail: Mapping[str, Any] | None) -> tuple[Phrase, ...]:
    """The facts of one event (``CaseEvent.detail``) as phrases, in the order staff read them."""
    found = dict(detail or {})
    out: list[Phrase] = []
    if found.get("rating"):
        out.append(Phrase("rating." + found["rating"]))
    if found.get("reached") is False:
        out.append(Phrase("feedback.unreachable"))
    for name, key in _MOMENTS:
        if found.get(name):
            out.append(Phrase(key, {"at": _moment(found[name])}))
    if found.get("severity"):
        before, after = found["severity"]
        out.append(Phrase("case.severity_set", {"from_": Phrase("severity." + before),
                                                "to": Phrase("severity." + after)}))
    if found.get("auto"):
        out.append(Phrase("case.auto_call_up"))
    if found.get("taken_back"):
        out.append(Phrase("case.taken_back"))
    if found.get("into"):
        out.append(Phrase("case.merged_into", {"code": found["into"]}))
    if found.get("from"):
        out.append(Phrase("case.merged_from", {"code": found["from"]}))
    if action == Act.hurry and found.get("count"):
        out.append(Phrase("case.hurried", {"count": found["count"]}))
    for name, key in _CHANGES:
        if found.get(name):
            out.append(Phrase(key, {"from_": found[name][0], "to": found[name][1]}))
    return tuple(out)


def staff_line(at: datetime, action: str, detail: Mapping[str, Any] | None,
               note: str | None, note_hidden: bool) -> Line:
    """An event on the case page: the move, its facts and its note (or that it is withheld)."""
    return Line(at, Phrase("action." + action),
                facts(action, detail) + ((NOTE_HIDDEN,) if note_hidden else ()),
                None if note_hidden else note)


def public_line(at: datetime, action: str) -> Line:
    """An event on the tracking page: when and what in the reporter's words; no facts, no
    names, no notes."""
    return Line(at, Phrase("public_action." + action))


def move_line(at: datetime, action: str) -> Line:
    """A move of the case as the reward pages list it: when and which move."""
    return Line(at, Phrase("action." + action))
