"""Shared test factories: cases made through lib, moves by demo users, pages through AppTest.

Demo places: community 红星路社区 (510104001001) and its neighbour 510104001002 in street
春熙路街道 (510104001); the street's police station 510104001-police.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from lib.cases import tracking
from lib.cases.intake import Report, create_case
from lib.cases.machine import act
from lib.cases.models import Case
from lib.core.db import read_session, write_session
from lib.core.models import Category
from lib.org import auth
from lib.org.units import Actor, find_unit

APP = Path(__file__).resolve().parent.parent / "app.py"
COMMUNITY = "510104001001"
NEIGHBOUR = "510104001002"
STREET = "510104001"
POLICE = "510104001-police"
PHONE = "13812345678"

_addresses = itertools.count(1)
_phones = itertools.count(13700000000)
FRESH = "fresh"  # a new phone number for each case (the per-phone rate limit is 5 an hour)


class SmsCapture:
    """A gateway that keeps what it is handed (an idempotent one, like the log)."""

    idempotent = True

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, str]] = []

    def send(self, notice_id: int, phone: str, text: str) -> None:
        self.sent.append((notice_id, phone, text))


_code_addresses = itertools.count(1)


def sms_code(engine: Engine, code: str, purpose: str = "view", *,
             now: datetime | None = None) -> str:
    """Ask for a one-time code as the reporter would and read it off the SMS sent to the
    case's phone (from a fresh address each time: the per-address limit is not under test)."""
    sms = SmsCapture()
    tracking.send_code(engine, code, purpose, client_address=f"sms-{next(_code_addresses)}",
                       gateway=sms, now=now)
    assert sms.sent, f"no code was sent for {code}"
    return re.search(r"(\d{6})", sms.sent[-1][2].replace(code, "")).group(1)


def category_id(engine: Engine, key: str) -> int:
    with read_session(engine) as s:
        return s.exec(select(Category.id).where(Category.key == key)).one()


def unit_id(engine: Engine, code: str) -> int:
    with read_session(engine) as s:
        return find_unit(s, code).id


def actor(engine: Engine, username: str) -> Actor:
    with read_session(engine) as s:
        return auth.actor_by_username(s, username)


def new_case(engine: Engine, *, category: str = "fire", community: str = COMMUNITY,
             description: str = "楼道堆放杂物，堵住消防通道", address: str = "红星路1号",
             phone: str | None = FRESH, name: str | None = "王小二", anonymous: bool = False,
             now: datetime | None = None, pin: str | None = None) -> Case:
    """A resident's report stored through lib (rate limits apply, per a fresh client address)."""
    if phone == FRESH:
        phone = str(next(_phones))
    with write_session(engine) as s:
        category_id = s.exec(select(Category.id).where(Category.key == category)).one()
        return create_case(s, Report(category_id=category_id, subcategory_id=None,
                                     description=description, address=address,
                                     community_id=find_unit(s, community).id, reporter_phone=phone,
                                     reporter_name=name, anonymous=anonymous),
                           actor=None, now=now, pin=pin, client_address=f"factory-{next(_addresses)}")


def move(engine: Engine, username: str, case_id: int, action: str, **params) -> Case:
    """``username`` makes ``action`` on the case at its current version."""
    with write_session(engine) as s:
        return act(s, auth.actor_by_username(s, username), case_id, action,
                   version=s.get(Case, case_id).version, **params)


_places = itertools.count(1)


def closed_case(engine: Engine, *, category: str = "fire", severity: str = "general",
                by: str = "community01", **fields) -> Case:
    """A resident's case taken on, handled, verified and closed by its community, each at an
    address of its own (so that no two look like a crowd at one place)."""
    fields.setdefault("address", f"红星路{next(_places)}号")
    case = new_case(engine, category=category, **fields)
    if severity != "general":  # as triage would judge it
        with write_session(engine) as s:
            s.exec(text('UPDATE "case" SET severity = :v WHERE id = :i'),
                   params={"v": severity, "i": case.id})
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已整改"}),
                           ("verify", {}), ("close", {})):
        case = move(engine, by, case.id, action, **params)
    return case


def dispatched_to_police(engine: Engine) -> Case:
    """A residential-security report called up to its street and dispatched to the police."""
    case = new_case(engine, category="residential_security")
    move(engine, "community01", case.id, "accept")
    move(engine, "community01", case.id, "call_up", note="请街道协调")
    return move(engine, "street01", case.id, "dispatch", lead_unit_id=unit_id(engine, POLICE))


def get(engine: Engine, case_id: int) -> Case:
    with read_session(engine) as s:
        return s.get(Case, case_id)


# ---------------------------------------------------------------- pages


def app(username: str | None = None) -> AppTest:
    """The app's home page, logged in as ``username`` (None: anonymous)."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    if username:
        at.session_state["authentication_status"] = True
        at.session_state["username"] = username
        at.session_state["auth_login_at"] = datetime.now(timezone.utc)
    return at.run()


def choose_place(at: AppTest, *, category: str = "社区公共消防", community: str = "红星路社区",
                 prefix: str = "report") -> AppTest:
    """Choose the category and the community on a report form: nothing is chosen for a
    resident (a community is shown as "street · community")."""
    for name, label in (("category", category), ("community", community)):
        box = at.selectbox(key=f"{prefix}_{name}")
        box.select_index(next(i for i, o in enumerate(box.options)
                              if o == label or o.endswith(" · " + label))).run()
    return at


def open_page(username: str | None, path: str, **query: str) -> AppTest:
    at = app(username)
    at.switch_page(path)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def everything(at: AppTest) -> str:
    """All text the page sends: elements of every kind, widget labels and options, table cells."""
    parts = [str(e.value) for kind in ("title", "header", "subheader", "markdown", "caption",
                                       "text", "info", "warning", "error", "success", "metric",
                                       "code")
             for e in getattr(at, kind)]
    for kind in ("radio", "selectbox", "multiselect", "text_input", "text_area"):
        for widget in getattr(at, kind):
            parts.append(str(widget.label))
            parts += [str(o) for o in getattr(widget, "options", [])]
    parts += [str(m.label) for m in at.metric]
    for frame in at.dataframe:
        value = frame.value
        parts.append((value.data if hasattr(value, "data") else value).to_csv())
    return "\n".join(parts)
