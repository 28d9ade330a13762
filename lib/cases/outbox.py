"""The sender of the outbox: SMS to reporters (``python -m lib notices-send``; the cron tick
runs it too). In-app notices need no sending: the sidebar shows them once they are written.

Each SMS is claimed in a transaction of its own (pending → sending, one more attempt), handed
to the gateway, then marked sent in another. A failed attempt is tried again after
``notices.retry_seconds``, doubling each time (1, 2, 4 … minutes), and given up after
``notices.max_attempts`` (failed, with the error). During the residents' quiet hours
(``notices.quiet_hours``, China time, e.g. ``22:00-08:00``) no SMS leaves; they wait for the end.

Never twice. A crash between the gateway's answer and the mark leaves a notice "sending". After
``CLAIM_TIMEOUT`` the next sender decides: a gateway that recognises a notice it already took by
its id (``idempotent = True``; the log file finds the id it wrote) gets it again under the same
id and drops it; any other gateway gets nothing more, and the notice is failed ("interrupted")
for a person to check: a message lost rather than a message doubled. A gateway that cannot tell
whether a message left (a timeout after the request went out) raises ``DeliveryUnknown``: failed
at once, never retried.

A gateway is any object with ``send(notice_id, phone, text) -> None`` that raises on failure,
named by ``SMS_GATEWAY=module:factory`` (the factory reads its own settings from the
environment). Without one, ``LogGateway`` writes each SMS as a JSON line to ``NOTICE_LOG``
(default ``data/notices.log``), the phone masked.
"""

from __future__ import annotations

import importlib
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import case as sa_case
from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.access import mask_phone
from lib.cases.models import Case, Notice, NoticeState
from lib.cases.notices import CODE, CODE_SENT_BODY, SMS, mask_digits
from lib.core import config
from lib.core.clock import china, time_of_day
from lib.core.db import write_session
from lib.core.models import utcnow
from lib.core.settings import get_int, get_str
from lib.core.workcal import CHINA_TZ

CLAIM_TIMEOUT = timedelta(minutes=10)  # a gateway call must end well within this
N = NoticeState


class Gateway(Protocol):
    """Where SMS go. ``send`` returns once the message is accepted and raises otherwise;
    ``notice_id`` is the idempotency key: an idempotent gateway never sends one id twice."""

    idempotent: bool

    def send(self, notice_id: int, phone: str, text: str) -> None: ...


class DeliveryUnknown(Exception):
    """The gateway cannot tell whether the message left: the notice fails, never retried."""


class LogGateway:
    """The default gateway: one JSON line per SMS in a log file, the phone masked. It reads the
    ids it already wrote from its file, so a notice handed over again after a crash is not
    written twice."""

    idempotent = True

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._written: set[int] = set()
        self._read_to = 0

    def _catch_up(self) -> None:
        """Learn the ids written since the last look (by this or another sender)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as log:
            log.seek(self._read_to)
            for line in log:
                if not line.endswith(b"\n"):
                    break  # a line still being written
                self._read_to += len(line)
                try:
                    self._written.add(int(json.loads(line)["notice"]))
                except (ValueError, KeyError, TypeError):
                    continue

    def send(self, notice_id: int, phone: str, text: str) -> None:
        self._catch_up()
        if notice_id in self._written:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"notice": notice_id, "at": utcnow().isoformat(), "to": mask_phone(phone),
                           "text": text}, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as log:
            log.write(line)
            log.flush()
            os.fsync(log.fileno())
        self._written.add(notice_id)


def gateway_from_env() -> Gateway:
    """``SMS_GATEWAY=module:factory``, else the log file."""
    spec = config.sms_gateway()
    if not spec:
        return LogGateway(config.notice_log_path())
    module, _, factory = spec.partition(":")
    return getattr(importlib.import_module(module), factory or "gateway")()


# ---------------------------------------------------------------- quiet hours


def quiet_until(session: Session, now: datetime) -> datetime | None:
    """The end of the residents' quiet hours if ``now`` falls within them, else None."""
    spec = get_str(session, "notices.quiet_hours").strip()
    try:
        start, end = (time_of_day(part) for part in spec.split("-"))
    except ValueError:
        return None  # empty or unreadable: no quiet hours
    local = china(now)
    clock = local.time()
    inside = start <= clock < end if start <= end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=CHINA_TZ)


# ---------------------------------------------------------------- sending


def _recover(session: Session, now: datetime, idempotent: bool) -> int:
    """Notices left "sending" by a sender that stopped; returns how many were failed."""
    stale = (Notice.state == N.sending, Notice.claimed_at < now - CLAIM_TIMEOUT)
    if idempotent:
        session.exec(update(Notice).where(*stale)  # type: ignore[call-overload]
                     .values(state=N.pending, next_attempt_at=now))
        return 0
    return session.exec(update(Notice).where(*stale).values(  # type: ignore[call-overload]
        state=N.failed, error="interrupted: may or may not have been sent")).rowcount or 0


def _due():  # noqa: ANN202
    return (Notice.channel == SMS, Notice.state == N.pending)


def _claim(engine: Engine | None, now: datetime,
           notice_id: int | None = None) -> tuple[int, str | None, str] | None:
    """The next SMS due (or the one named), claimed for this sender: (id, phone, text); None
    when none is due."""
    with write_session(engine) as session:
        while True:
            chosen = (Notice.id == notice_id,) if notice_id is not None else ()
            found = session.exec(
                select(Notice.id, Notice.body, Case.reporter_phone)
                .join(Case, Case.id == Notice.case_id)
                .where(*_due(), Notice.next_attempt_at <= now, *chosen)
                .order_by(Notice.next_attempt_at, Notice.id).limit(1)
                .with_for_update(skip_locked=True, of=Notice)).first()
            if found is None:
                return None
            claimed = session.exec(update(Notice).where(  # type: ignore[call-overload]
                Notice.id == found.id, Notice.state == N.pending).values(
                state=N.sending, claimed_at=now, attempts=Notice.attempts + 1)).rowcount
            if claimed:
                return found.id, found.reporter_phone, found.body or ""
            if notice_id is not None:
                return None


def _finish(engine: Engine | None, notice_id: int, **values: object) -> None:
    with write_session(engine) as session:
        session.exec(update(Notice).where(Notice.id == notice_id)  # type: ignore[call-overload]
                     .values(**values))


def _sent(engine: Engine | None, notice_id: int, now: datetime) -> None:
    """Mark a notice sent; a one-time code keeps no copy of itself once it has left."""
    _finish(engine, notice_id, state=N.sent, sent_at=now, error=None,
            body=sa_case((Notice.kind == CODE, CODE_SENT_BODY), else_=Notice.body))


def send_now(engine: Engine | None, notice_id: int, *, gateway: Gateway | None = None,
             now: datetime | None = None) -> bool:
    """Send one SMS at once, outside the quiet hours' hold: a one-time code the reporter is
    waiting for. A gateway's refusal fails it at once (the reporter asks for another code; a
    code sent late would be stale); whether it left."""
    now = now or utcnow()
    gateway = gateway or gateway_from_env()
    claimed = _claim(engine, now, notice_id)
    if claimed is None:
        return False  # another sender took it
    _, phone, text = claimed
    try:
        if not phone:
            raise ValueError("no phone")
        gateway.send(notice_id, phone, text)
    except Exception as err:  # whatever went wrong, this code is not retried
        _finish(engine, notice_id, state=N.failed, body=CODE_SENT_BODY,
                error=mask_digits(f"{type(err).__name__}: {err}")[:200])
        return False
    _sent(engine, notice_id, now)
    return True


def _failed_attempt(engine: Engine | None, notice_id: int, error: str, now: datetime) -> str:
    """Try again later, or give up after the last attempt; returns the new state."""
    with write_session(engine) as session:
        attempts = session.get(Notice, notice_id).attempts
        limit = max(1, get_int(session, "notices.max_attempts"))
        wait = max(0, get_int(session, "notices.retry_seconds")) * 2 ** (attempts - 1)
        state = N.failed if attempts >= limit else N.pending
        session.exec(update(Notice).where(Notice.id == notice_id)  # type: ignore[call-overload]
                     .values(state=state, error=mask_digits(error)[:200],
                             next_attempt_at=now + timedelta(seconds=wait)))
    return state


def send_due(engine: Engine | None = None, *, gateway: Gateway | None = None,
             now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Send up to ``limit`` SMS that are due; the counts of what happened."""
    now = now or utcnow()
    gateway = gateway or gateway_from_env()
    counts = {"notices_sent": 0, "notices_retry": 0, "notices_failed": 0, "notices_held": 0}
    with write_session(engine) as session:
        counts["notices_failed"] += _recover(session, now, bool(getattr(gateway, "idempotent", False)))
        if quiet_until(session, now) is not None:
            counts["notices_held"] = session.exec(select(func.count()).select_from(Notice).where(
                *_due(), Notice.next_attempt_at <= now)).one()
            return counts
    for _ in range(limit):
        claimed = _claim(engine, now)
        if claimed is None:
            break
        notice_id, phone, text = claimed
        if not phone:  # the reporter's phone was erased since
            _finish(engine, notice_id, state=N.failed, error="no phone")
            counts["notices_failed"] += 1
            continue
        try:
            gateway.send(notice_id, phone, text)
        except DeliveryUnknown as err:
            _finish(engine, notice_id, state=N.failed, error=mask_digits(f"unknown: {err}")[:200])
            counts["notices_failed"] += 1
        except Exception as err:  # any gateway failure is retried, then given up
            state = _failed_attempt(engine, notice_id, f"{type(err).__name__}: {err}", now)
            counts["notices_failed" if state == N.failed else "notices_retry"] += 1
        else:
            _sent(engine, notice_id, now)
            counts["notices_sent"] += 1
    return counts
