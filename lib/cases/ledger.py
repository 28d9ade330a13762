"""The ledger (台账): every case in my area, searchable, and exported to CSV or Excel.

Its address holds its filters (``ADDRESS``), so that a figure elsewhere (a home tile, an
assessment chart) opens exactly the cases it counts: ``unit`` (a unit code in the reader's
area), ``category`` (a category key), ``status`` (open, ``overdue`` — ``deadlines.overdue_open``,
the one rule behind every 超期 count — or closed), ``from`` and ``to`` (days of report,
``YYYY-MM-DD``) and ``closed_since``.

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
from enum import StrEnum

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from sqlalchemy import and_, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import access
from lib.cases.access import case_scope
from lib.cases.deadlines import overdue_open
from lib.cases.models import AccessLog, Case
from lib.cases.queue import Filters, filter_conditions, month_start_china
from lib.cases.states import OPEN, S
from lib.core.clock import china_time, spreadsheet_time
from lib.core.db import read_session, write_session
from lib.core.errors import ValidationFailed
from lib.core.inputs import YEARS, file_safe
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
           "handle_due_at", "closed_at", "overdue", "rating", "reached_tier", "owner", "handler",
           "closure_hours", "hurry_count"]
# In a workbook: these columns are dates (China time, a date number format) and numbers.
DATE_COLUMNS = {"reported_at": "reported_at_local", "handle_due_at": "handle_due_at_local",
                "closed_at": "closed_at_local"}
NUMBER_FORMATS = {"closure_hours": "0.0", "hurry_count": "0"}
DATE_FORMAT = "yyyy-mm-dd hh:mm"
WIDTHS = {"code": 18, "address": 30, "description": 40, "reported_at": 17, "handle_due_at": 17,
          "closed_at": 17}


def neutralise(value: object) -> object:
    """A cell a spreadsheet shows as text, never runs."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@dataclass(frozen=True)
class Period:
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True)
class LedgerFilters(Filters):
    """The queue's filters and the ledger's own: a status (``STATUSES``: open, overdue — 超期 by
    ``overdue_open`` —, closed), closed since a day (China time), and the area of one unit (a
    street, say) inside the reader's."""

    status: str | None = None
    closed_since: date | None = None
    unit_id: int | None = None
    unit_kind: str | None = None  # the unit's tier, which names the case's column for its area
    # The cases behind a figure (lib.kpi.behind.Drill, opened from an assessment page): any
    # value with ``conditions()``, SQL on ``case`` added to the others.
    drill: object | None = None


ADDRESS = ("unit", "category", "status", "from", "to", "closed_since")
# A figure's cases (lib.kpi.behind.ADDRESS): with ``unit`` and ``category``, read by the page.
DRILL_ADDRESS = ("figure", "part", "period")


class Status(StrEnum):
    """The ledger's ``status``: what a home tile counts — open (在办), overdue (超期,
    ``overdue_open``), closed (已办结)."""

    open = "open"
    overdue = "overdue"
    closed = "closed"


STATUSES = tuple(s.value for s in Status)
_AREA = {"community": Case.community_id, "street": Case.street_id, "district": Case.district_id,
         "city": Case.city_id}


@dataclass(frozen=True)
class Address:
    """The ledger's filters read from an address: the unit asked for (None: the reader's whole
    area), the category, overdue only, the days of report, and catalog keys of the values
    refused (each left out, with a message)."""

    unit: Unit | None
    category_id: int | None
    status: str | None
    closed_since: date | None
    period: Period
    problems: list[str]


def _day(text: str | None) -> date | None:
    """A day written ``YYYY-MM-DD`` within ``inputs.YEARS``; None for anything else (9999-12-31
    overflowed the day after the range's end)."""
    if not text or len(text) != 10:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if YEARS[0] <= day.year <= YEARS[1] else None


def tile_address(key: str, now: datetime | None = None) -> tuple[str | None, dict[str, str]]:
    """The page and query a home tile (``queue.waiting_counts``) opens: a queue tile its tab, a
    case tile this ledger filtered to exactly the cases it counts; (None, {}) for another key."""
    if key.startswith("queue.tab."):
        return "queue", {"tab": key.removeprefix("queue.tab.")}
    if key == "home.open_in_scope":
        return "ledger", {"status": Status.open.value}
    if key == "home.overdue_in_scope":
        return "ledger", {"status": Status.overdue.value}
    if key == "home.closed_this_month":
        since = month_start_china(now or utcnow()).date()
        return "ledger", {"status": Status.closed.value, "closed_since": since.isoformat()}
    return None, {}


def from_address(actor: Actor, params: dict[str, str], engine: Engine | None = None) -> Address:
    """The filters an address asks for, each checked: a unit outside the reader's area or
    unknown, an unknown category, a day that is not a date, a range that ends before it starts
    are each dropped with a message, never an error."""
    _check(actor)
    problems: list[str] = []
    unit = None
    category_id = None
    with read_session(engine) as session:
        raw = params.get("unit")
        if raw:
            found = session.exec(select(Unit).where(Unit.code == raw[:40])).first()
            if found is None or found.kind not in _AREA or \
                    not found.path.startswith(_path_of(session, actor)):
                problems.append("ledger.filter.bad_unit")
            else:
                unit = found
        raw = params.get("category")
        if raw:
            found_id = session.exec(select(Category.id).where(Category.key == raw[:40])).first()
            if found_id is None:
                problems.append("ledger.filter.bad_category")
            else:
                category_id = found_id
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        problems.append("ledger.filter.bad_status")
        status = None
    start, end = _day(params.get("from")), _day(params.get("to"))
    closed_since = _day(params.get("closed_since"))
    for name, value in (("from", start), ("to", end), ("closed_since", closed_since)):
        if params.get(name) and value is None:
            problems.append("ledger.filter.bad_day")
    if start and end and start > end:
        problems.append("ledger.filter.bad_range")
        start = end = None
    return Address(unit, category_id, status, closed_since, Period(start, end), problems)


def address_of(filters: Filters, period: Period, unit_code: str | None = None,
               category_key: str | None = None) -> dict[str, str]:
    """The address of the ledger's filters (the inverse of ``from_address``)."""
    out: dict[str, str] = {}
    if unit_code:
        out["unit"] = unit_code
    if category_key:
        out["category"] = category_key
    status = getattr(filters, "status", None)
    if status:
        out["status"] = status
    since = getattr(filters, "closed_since", None)
    if since:
        out["closed_since"] = since.isoformat()
    if period.start:
        out["from"] = period.start.isoformat()
    if period.end:
        out["to"] = period.end.isoformat()
    return out


def _path_of(session: Session, actor: Actor) -> str:
    unit = session.get(Unit, actor.unit_id)
    return unit.path if unit is not None else "\0"


def _check(actor: Actor) -> None:
    permissions.require(actor, permissions.CASE_READERS)


def _conditions(actor: Actor, filters: Filters, period: Period) -> list:
    conditions = [case_scope(actor), *filter_conditions(actor, filters)]
    status = getattr(filters, "status", None)
    if status == Status.overdue:
        conditions.extend(overdue_open(utcnow()))
    elif status == Status.open:
        conditions.append(Case.state.in_(sorted(OPEN)))
    elif status == Status.closed:
        conditions.append(Case.state == S.closed)
    elif status is not None:
        raise ValidationFailed("ledger.filter.bad_status")
    drill = getattr(filters, "drill", None)
    if drill is not None:
        conditions.extend(drill.conditions())
    since = getattr(filters, "closed_since", None)
    if since is not None:
        conditions.append(Case.closed_at >= datetime.combine(since, time(0), CHINA_TZ))
    unit_id, kind = getattr(filters, "unit_id", None), getattr(filters, "unit_kind", None)
    if unit_id is not None:
        if kind not in _AREA:
            raise ValidationFailed("error.unit_not_found")
        conditions.append(_AREA[kind] == unit_id)
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
            "closure_hours": None if case.closure_hours is None else round(case.closure_hours, 1),
            "hurry_count": case.hurry_count or 0,
            "reported_at_local": spreadsheet_time(case.reported_at),
            "handle_due_at_local": spreadsheet_time(case.handle_due_at),
            "closed_at_local": spreadsheet_time(case.closed_at),
        })
    return out


def china_today() -> date:
    return datetime.now(CHINA_TZ).date()


def file_name(unit_name: str, period: Period, fmt: str, *, today: date, label: Callable[[str], str]) -> str:
    """"台账_春熙路街道_2026-11-01至2026-11-30.xlsx": the unit and the days of report in every
    file's name (without a range: up to the day it was made). Characters a file system refuses
    are replaced."""
    if period.start or period.end:
        span = label("ledger.file.range").format(
            start=period.start.isoformat() if period.start else "…",
            end=period.end.isoformat() if period.end else today.isoformat())
    else:
        span = label("ledger.file.until").format(day=today.isoformat())
    stem = "_".join([label("ledger.file.stem"), unit_name, span])
    stem = file_safe(stem)
    return f"{stem}.{fmt}"


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
    """Dates as dates (a date number format), numbers as numbers, text as neutralised text; the
    header frozen and filterable."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(label("page.ledger")[:31])
    sheet.freeze_panes = "A2"
    for index, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = WIDTHS.get(column, 12)
    sheet.append([label("ledger.col." + c) for c in COLUMNS])
    written = 1

    def cell(row: dict[str, object], column: str) -> object:
        if column in DATE_COLUMNS:
            value = row[DATE_COLUMNS[column]]
            if value is None:
                return None
            out = WriteOnlyCell(sheet, value=value)
            out.number_format = DATE_FORMAT
            return out
        if column in NUMBER_FORMATS:
            if row[column] is None:
                return None
            out = WriteOnlyCell(sheet, value=row[column])
            out.number_format = NUMBER_FORMATS[column]
            return out
        return neutralise(row[column])

    for chunk in _chunks(session, actor, filters, period, lang_name=lang_name, label=label,
                         progress=progress, viewed=viewed, chunk_size=chunk_size):
        for row in chunk:
            sheet.append([cell(row, c) for c in COLUMNS])
        written += len(chunk)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{written}"
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
