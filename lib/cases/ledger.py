"""The ledger (台账): every case in my area, searchable, and exported to CSV or Excel.

Personal data follows lib.cases.access (masked unless this user's unit handles the case; restricted
categories hidden, full views logged). Every text cell that a spreadsheet would read as a
formula (starting with = + - @, tab or CR) is neutralised with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from openpyxl import Workbook
from sqlalchemy import and_, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import access
from lib.cases.access import case_scope
from lib.cases.models import AccessLog, Case
from lib.cases.queue import Filters, filter_conditions
from lib.core.clock import china_time
from lib.core.db import read_session, write_session
from lib.core.errors import ValidationFailed
from lib.core.models import Category, Subcategory, utcnow
from lib.core.workcal import CHINA_TZ
from lib.org import permissions
from lib.org.models import Unit
from lib.org.units import Actor

EXPORT_MAX = 200_000
CHUNK = 5_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ["code", "category", "subcategory", "street", "community", "address", "description",
           "severity", "source", "state", "reporter_name", "reporter_phone", "reported_at",
           "handle_due_at", "closed_at", "overdue", "rating", "reached_tier", "owner", "handler"]


def neutralise(value: object) -> object:
    """A cell a spreadsheet shows as text, never runs."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@dataclass(frozen=True)
class Period:
    start: date | None = None
    end: date | None = None


def _check(actor: Actor) -> None:
    permissions.require(actor, permissions.CASE_READERS)


def _conditions(actor: Actor, filters: Filters, period: Period) -> list:
    conditions = [case_scope(actor), *filter_conditions(actor, filters)]
    if period.start and period.end and period.start > period.end:
        raise ValidationFailed("error.period_invalid")
    if period.start:
        conditions.append(Case.reported_at >= datetime.combine(period.start, time(0), CHINA_TZ))
    if period.end:
        conditions.append(Case.reported_at < datetime.combine(period.end + timedelta(days=1),
                                                              time(0), CHINA_TZ))
    return conditions


def count(session: Session, actor: Actor, filters: Filters, period: Period = Period()) -> int:
    _check(actor)
    return session.exec(select(func.count()).select_from(Case)
                        .where(*_conditions(actor, filters, period))).one()


class _Names:
    def __init__(self, session: Session, lang_name: Callable[[object], str]) -> None:
        self.units = {u.id: u for u in session.exec(select(Unit)).all()}
        self.categories = {c.id: c for c in session.exec(select(Category)).all()}
        self.subs = {s.id: s for s in session.exec(select(Subcategory)).all()}
        self.name = lang_name

    def unit(self, unit_id: int | None) -> str:
        return self.name(self.units[unit_id]) if unit_id in self.units else ""


def rows(session: Session, actor: Actor, filters: Filters, period: Period = Period(), *,
         lang_name: Callable[[object], str], label: Callable[[str], str],
         offset: int = 0, limit: int = CHUNK, after: tuple[datetime, int] | None = None,
         viewed: list[int] | None = None, names: _Names | None = None) -> list[dict[str, object]]:
    """One page of the ledger, newest first, as plain dicts (keys: ``COLUMNS`` plus ``id`` and
    ``reported_at_utc``), masked for this actor. ``after``: the (reported_at, id) of the last
    row of the previous page (keyset paging; exports use it instead of an OFFSET that grows).

    Ids of restricted cases shown in full go to ``viewed``; ``log_views`` stores them.
    """
    _check(actor)
    names = names or _Names(session, lang_name)
    conditions = _conditions(actor, filters, period)
    if after is not None:
        conditions.append(or_(Case.reported_at < after[0],
                              and_(Case.reported_at == after[0], Case.id < after[1])))
    found = session.exec(select(Case).where(*conditions)
                         .order_by(Case.reported_at.desc(), Case.id.desc())
                         .offset(offset if after is None else 0).limit(limit)).all()
    out = []
    for case in found:
        category = names.categories[case.category_id]
        restricted = category.restricted
        reporter = access.reporter_for(session, actor, case, log=False)
        readable = access.reads_content(actor, case, restricted)
        if restricted and viewed is not None and (readable or reporter.full):
            viewed.append(case.id)
        out.append({
            "id": case.id, "reported_at_utc": case.reported_at, "code": case.code,
            "category": lang_name(category),
            "subcategory": lang_name(names.subs[case.subcategory_id]) if case.subcategory_id in
            names.subs else "",
            "street": names.unit(case.street_id), "community": names.unit(case.community_id),
            "address": case.address if readable else label("case.content_hidden"),
            "description": case.description if readable else label("case.description_hidden"),
            "severity": label("severity." + case.severity), "source": label("source." + case.source),
            "state": label("state." + case.state),
            "reporter_name": reporter.name or "", "reporter_phone": reporter.phone or "",
            "reported_at": china_time(case.reported_at), "handle_due_at": china_time(case.handle_due_at),
            "closed_at": china_time(case.closed_at), "overdue": label("yes" if case.overdue else "no"),
            "rating": label("rating." + case.rating) if case.rating else "",
            "reached_tier": label("kind." + case.reached_tier),
            "owner": names.unit(case.owner_id), "handler": names.unit(case.handler_id),
        })
    return out


def log_views(session: Session, actor: Actor, case_ids: list[int], what: str = "ledger") -> None:
    now = utcnow()
    for case_id in dict.fromkeys(case_ids):
        session.add(AccessLog(user_id=actor.id, case_id=case_id, at=now, what=what))
    session.flush()




def _chunks(session: Session, actor: Actor, filters: Filters, period: Period, *,
            lang_name: Callable[[object], str], label: Callable[[str], str],
            progress: Callable[[int, int], None] | None,
            viewed: list[int], chunk_size: int) -> Iterator[list[dict[str, object]]]:
    total = count(session, actor, filters, period)
    if total > EXPORT_MAX:
        raise ValidationFailed("error.export_too_large", max=EXPORT_MAX)
    done = 0
    after = None
    names = _Names(session, lang_name)
    while done < total:
        chunk = rows(session, actor, filters, period, lang_name=lang_name, label=label,
                     after=after, limit=chunk_size, viewed=viewed, names=names)
        if not chunk:
            break
        after = (chunk[-1]["reported_at_utc"], chunk[-1]["id"])
        done += len(chunk)
        if progress:
            progress(done, total)
        yield chunk
    if progress and total == 0:
        progress(0, 0)


def _export_csv(session: Session, actor: Actor, filters: Filters, period: Period, *,
                lang_name: Callable[[object], str], label: Callable[[str], str],
                progress: Callable[[int, int], None] | None, viewed: list[int],
                chunk_size: int) -> bytes:
    """UTF-8 with BOM (Excel opens it in Chinese correctly), header in the user's language."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label("ledger.col." + c) for c in COLUMNS])
    for chunk in _chunks(session, actor, filters, period, lang_name=lang_name, label=label,
                         progress=progress, viewed=viewed, chunk_size=chunk_size):
        writer.writerows([[neutralise(row[c]) for c in COLUMNS] for row in chunk])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _export_excel(session: Session, actor: Actor, filters: Filters, period: Period, *,
                  lang_name: Callable[[object], str], label: Callable[[str], str],
                  progress: Callable[[int, int], None] | None, viewed: list[int],
                  chunk_size: int) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(label("page.ledger")[:31])
    sheet.append([label("ledger.col." + c) for c in COLUMNS])
    for chunk in _chunks(session, actor, filters, period, lang_name=lang_name, label=label,
                         progress=progress, viewed=viewed, chunk_size=chunk_size):
        for row in chunk:
            sheet.append([neutralise(row[c]) for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(actor: Actor, filters: Filters, period: Period = Period(), *, fmt: str,
           lang_name: Callable[[object], str], label: Callable[[str], str],
           progress: Callable[[int, int], None] | None = None, engine: Engine | None = None,
           chunk_size: int = CHUNK) -> bytes:
    """The ledger as ``csv`` or ``xlsx`` bytes: one snapshot of the database (cases arriving
    meanwhile are not half in it), paged by key, read without the write lock; then the
    restricted cases it showed in full are logged."""
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed("error.format_invalid")
    viewed: list[int] = []
    with read_session(engine, snapshot=True) as session:
        build = _export_csv if fmt == "csv" else _export_excel
        data = build(session, actor, filters, period, lang_name=lang_name, label=label,
                     progress=progress, viewed=viewed, chunk_size=chunk_size)
    if viewed:
        with write_session(engine) as session:
            log_views(session, actor, viewed, what="export")
    return data


def page(actor: Actor, filters: Filters, period: Period = Period(), *, offset: int, limit: int,
         lang_name: Callable[[object], str], label: Callable[[str], str],
         engine: Engine | None = None) -> tuple[list[dict[str, object]], int]:
    """One screen of the ledger and the filtered total; restricted full views are logged."""
    viewed: list[int] = []
    with read_session(engine) as session:
        total = count(session, actor, filters, period)
        found = rows(session, actor, filters, period, lang_name=lang_name, label=label,
                     offset=offset, limit=limit, viewed=viewed)
    if viewed:
        with write_session(engine) as session:
            log_views(session, actor, viewed)
    return found, total
