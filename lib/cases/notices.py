"""Notices (通知): what a move or the tick tells the reporter and the units, written into the
outbox (``notice``) in the same transaction, once per event and recipient.

To the reporter, by SMS, when the case is accepted, handled (the result, and how to rate it)
and closed; never to an anonymous reporter or one without a phone. The texts are the catalog's
``notice.sms.*`` in the reporter's language, with the tracking link
``{APP_BASE_URL}/track?code=CODE``. They hold no name or phone: a result that quotes the
reporter, or any long run of digits, is masked. A restricted case (黄赌毒, special populations)
says no more than its code, and its "handled" is not sent (its tracking page shows only
received and closed).

To a unit, in the app, when work arrives (the case comes to wait at it, a call-up or a
hand-back makes it the owner, a dispatch makes it a co-handler), when the case is supervised
(督办) or hurried (催办), when a deadline is near and when the case goes overdue (the tick). An
in-app notice keeps its kind and parameters and is written in the reader's language when
shown; each staff member of the unit reads it for themselves (``notice_read``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import exists, func, inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.access import is_restricted
from lib.cases.deadlines import (
    DUE_SOON,
    current_due,
    current_due_sql,
    mark_overdue,
    open_due,
    past_due,
)
from lib.cases.models import Case, CaseEvent, Notice, NoticeRead, NoticeState
from lib.cases.orders import open_co_units
from lib.cases.states import S
from lib.core import config
from lib.core.clock import as_utc, china_time
from lib.core.db import read_session, write_session
from lib.core.i18n import DEFAULT_LANGUAGE, name, t
from lib.core.inputs import parse_int
from lib.core.machine import Move
from lib.core.models import Category, utcnow
from lib.org.permissions import reads_cases
from lib.org.units import Actor

SMS, APP = "sms", "app"
RESULT_MAX = 120  # characters of the handler's result quoted in an SMS
UNREAD_DAYS = 30  # the sidebar counts the unread notices of the last 30 days
PANEL_SIZE = 10
INSERT_BATCH = 500
_DIGITS = re.compile(r"\d{7,}")
_SPACE = re.compile(r"\s+")


# ---------------------------------------------------------------- texts


def tracking_link(code: str) -> str:
    """The reporter's link to the tracking page with the code filled in."""
    return f"{config.app_base_url()}/track?code={quote(code)}"


def mask_digits(text: str) -> str:
    """Runs of seven or more digits (phone numbers, ID numbers) become asterisks."""
    return _DIGITS.sub(lambda m: "*" * len(m.group()), text)


def _result(case: Case, note: str | None) -> str:
    """The handler's result as an SMS quotes it: one line, short, without the reporter's name
    or phone, nor any other long number."""
    text = _SPACE.sub(" ", note or "").strip()
    for personal in (case.reporter_phone, case.reporter_name):
        if personal and len(personal) >= 2:
            text = text.replace(personal, "*" * len(personal))
    text = mask_digits(text)
    return text if len(text) <= RESULT_MAX else text[:RESULT_MAX - 1] + "…"


def sms_text(kind: str, lang: str, *, code: str, result: str = "") -> str:
    """An SMS to the reporter: accepted, handled (with the result) or closed."""
    return t(f"notice.sms.{kind}", lang, code=code, link=tracking_link(code), result=result)


def app_text(kind: str, params: dict, lang: str, *, code: str, category: Category) -> str:
    """An in-app notice in the reader's language."""
    values: dict[str, object] = {"code": code, "category": name(category, lang)}
    if params.get("action"):
        values["action"] = t(f"action.{params['action']}", lang)
    if params.get("due"):
        values["due"] = china_time(datetime.fromisoformat(params["due"]))
    return t(f"notice.app.{kind}", lang, **values)


# ---------------------------------------------------------------- writing


def _row(*, key: str, case_id: int, kind: str, channel: str, now: datetime,
         event_id: int | None = None, unit_id: int | None = None, params: dict | None = None,
         body: str | None = None, lang: str = DEFAULT_LANGUAGE) -> dict:
    sms = channel == SMS
    return {"key": key, "case_id": case_id, "event_id": event_id, "kind": kind, "channel": channel,
            "unit_id": unit_id, "lang": lang,
            "params": json.dumps(params, ensure_ascii=False) if params else None, "body": body,
            "state": NoticeState.pending if sms else NoticeState.sent, "attempts": 0,
            "next_attempt_at": now if sms else None, "claimed_at": None,
            "sent_at": None if sms else now, "error": None, "created_at": now}


_INSERTS: dict[tuple[str, type], object] = {}


def _insert_statement(dialect: str, model: type):  # noqa: ANN202
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect and table: run with
    a list of parameter sets, its compiled form is cached (a multi-row VALUES is compiled anew
    each time, which cost a report about 5 ms)."""
    key = (dialect, model)
    if key not in _INSERTS:
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        _INSERTS[key] = insert(model).on_conflict_do_nothing() \
            .returning(inspect(model).primary_key[0])
    return _INSERTS[key]


def _insert_new(session: Session, model: type, rows: list[dict]) -> int:
    """Insert the rows whose key is not taken yet (a row already there is left as it is), in
    batches; returns how many were new."""
    if not rows:
        return 0
    statement = _insert_statement(session.get_bind().dialect.name, model)
    added = 0
    for start in range(0, len(rows), INSERT_BATCH):
        added += len(session.execute(statement, rows[start:start + INSERT_BATCH]).all())
    return added


def _reporter_sms(case: Case, move: Move, event: CaseEvent, restricted: bool,
                  now: datetime) -> list[dict]:
    # The move's record says whether the reporter hears of the state it leads to; the result of
    # a restricted case is not sent (its tracking page shows only received and closed).
    kind = event.to_state
    if not move.sms or case.anonymous or not case.reporter_phone or (restricted and kind == S.handled):
        return []
    result = "" if restricted else _result(case, event.note)
    lang = DEFAULT_LANGUAGE  # the case records no other language for its reporter
    return [_row(key=f"e:{event.id}:{SMS}", case_id=case.id, event_id=event.id, kind=kind,
                 channel=SMS, now=now, lang=lang,
                 body=sms_text(kind, lang, code=case.code, result=result))]


CODE = "code"  # the kind of an SMS that carries a one-time code (lib.cases.tracking)
CODE_SENT_BODY = "******"  # what is left of that SMS once it has left


def reporter_code(session: Session, case: Case, *, code_id: int, purpose: str, digits: str,
                  minutes: int, now: datetime) -> int:
    """Write the SMS that carries a one-time code to the case's phone; its id. The sender wipes
    the code from the row once the SMS has left (``CODE_SENT_BODY``)."""
    lang = DEFAULT_LANGUAGE
    body = t(f"notice.sms.code_{purpose}", lang, code=case.code, digits=digits, minutes=minutes)
    row = _row(key=f"{CODE}:{code_id}", case_id=case.id, kind=CODE, channel=SMS, now=now,
               lang=lang, body=body)
    return session.execute(_insert_statement(session.get_bind().dialect.name, Notice),
                           [row]).scalar_one()


def _units_told(session: Session, case: Case, move: Move, event: CaseEvent) -> dict[int, str]:
    """unit id → kind of notice, for the units this move gives work or concern: those its record
    names (``Move.tells``: the unit the case waits at, its owner, the co-handlers), and the unit
    the case comes to wait at, which has work."""
    told: dict[int, str] = {}
    for who, kind in move.tells:
        units = open_co_units(session, case.id) if who == "co_units" else \
            [case.unit_id if who == "unit" else case.owner_id]
        for unit_id in units:
            told.setdefault(unit_id, kind)
    if event.to_unit_id != event.from_unit_id and event.to_unit_id is not None:
        told.setdefault(event.to_unit_id, "work")
    return {unit_id: kind for unit_id, kind in told.items() if unit_id is not None}


def _deadline_row(kind: str, case_id: int, unit_id: int, due: datetime, now: datetime) -> dict:
    """due_soon or overdue: once per case, deadline and unit, however often the tick runs."""
    due = as_utc(due)
    return _row(key=f"{kind}:{case_id}:{int(due.timestamp())}:{unit_id}", case_id=case_id,
                kind=kind, channel=APP, unit_id=unit_id, now=now, params={"due": due.isoformat()})


def on_move(session: Session, case: Case, move: Move, event: CaseEvent) -> int:
    """The notices of one move (its record ``move``), in its transaction (the case machine calls
    this once the event row exists)."""
    now = event.at
    rows = _reporter_sms(case, move, event, is_restricted(session, case), now)
    for unit_id, kind in _units_told(session, case, move, event).items():
        rows.append(_row(key=f"e:{event.id}:{kind}:{unit_id}", case_id=case.id, event_id=event.id,
                         kind=kind, channel=APP, unit_id=unit_id, now=now,
                         params={"action": event.action}))
    due = current_due(case)
    if case.overdue and due is not None:  # late as it stands: the same notice the tick writes
        rows.append(_deadline_row("overdue", case.id, case.unit_id, due, now))
    return _insert_new(session, Notice, rows)


def on_tick(session: Session, now: datetime) -> int:
    """The tick's part: mark what went overdue and tell the units the cases wait at; tell them
    of deadlines within ``DUE_SOON`` too. Returns how many cases were marked overdue."""
    columns = (Case.id, Case.unit_id, Case.state, Case.sign_due_at, Case.handle_due_at)
    open_cases = open_due()
    late = session.exec(select(*columns).where(*open_cases, past_due(now))).all()
    marked = mark_overdue(session, now)
    soon = now + DUE_SOON
    due_now = current_due_sql()
    near = session.exec(select(Case.id, Case.unit_id, due_now).where(
        *open_cases, due_now > now, due_now <= soon)).all()
    rows = [_deadline_row("overdue", c.id, c.unit_id, current_due(c), now) for c in late
            if current_due(c) is not None]
    rows += [_deadline_row("due_soon", case_id, unit_id, due, now) for case_id, unit_id, due in near]
    _insert_new(session, Notice, rows)
    return marked


# ---------------------------------------------------------------- reading (the sidebar)


@dataclass(frozen=True)
class Shown:
    id: int
    case_id: int
    at: datetime
    text: str


@dataclass(frozen=True)
class Unread:
    """A staff member's unread notices: how many, the latest few, the newest id (the mark)."""

    count: int
    latest: list[Shown]
    last_id: int = 0


def _unread(actor: Actor, now: datetime) -> tuple:
    read = select(NoticeRead.notice_id).where(NoticeRead.notice_id == Notice.id,
                                              NoticeRead.user_id == actor.id)
    return (Notice.channel == APP, Notice.unit_id == actor.unit_id,
            Notice.created_at >= now - timedelta(days=UNREAD_DAYS), ~exists(read))


def unread(actor: Actor | None, lang: str, *, engine: Engine | None = None,
           now: datetime | None = None, limit: int = PANEL_SIZE) -> Unread:
    """The notices to the actor's unit that the actor has not read, newest first, in ``lang``."""
    if actor is None or not reads_cases(actor):
        return Unread(0, [])
    now = now or utcnow()
    where = _unread(actor, now)
    with read_session(engine) as session:
        count, last_id = session.exec(select(func.count(), func.max(Notice.id)).where(*where)).one()
        if not count:
            return Unread(0, [])
        rows = session.exec(
            select(Notice, Case.code, Category).join(Case, Case.id == Notice.case_id)
            .join(Category, Category.id == Case.category_id).where(*where)
            .order_by(Notice.id.desc()).limit(limit)).all()
    latest = [Shown(n.id, n.case_id, n.created_at,
                    app_text(n.kind, json.loads(n.params or "{}"), lang, code=code, category=category))
              for n, code, category in rows]
    return Unread(count, latest, last_id)


def mark_read(actor: Actor | None, *, up_to: int, engine: Engine | None = None,
              now: datetime | None = None) -> int:
    """"Mark all read": the actor's unread notices up to the newest they were shown."""
    if actor is None or not reads_cases(actor):
        return 0
    now = now or utcnow()
    with write_session(engine) as session:
        ids = session.exec(select(Notice.id).where(*_unread(actor, now), Notice.id <= up_to)).all()
        return _insert_new(session, NoticeRead,
                           [{"notice_id": i, "user_id": actor.id, "read_at": now} for i in ids])


def mark_one(actor: Actor | None, notice_id: object, *, engine: Engine | None = None,
             now: datetime | None = None) -> int | None:
    """A notice opened from the sidebar: read by the actor from now on, if it is one of theirs
    (in the app, to their unit); its case's id, or None (not theirs, not a notice id)."""
    number = parse_int(notice_id, low=1, high=2**31 - 1)
    if actor is None or number is None or not reads_cases(actor):
        return None
    now = now or utcnow()
    with write_session(engine) as session:
        case_id = session.exec(select(Notice.case_id).where(
            Notice.id == number, Notice.channel == APP, Notice.unit_id == actor.unit_id)).first()
        if case_id is None:
            return None
        _insert_new(session, NoticeRead, [{"notice_id": number, "user_id": actor.id, "read_at": now}])
        return case_id
