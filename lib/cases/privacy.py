"""Personal data and restricted content as each user may see them: masking, hiding, and the
access log for restricted categories (黄赌毒, special populations; PIPL Art. 28).

Who may read what is decided in lib.permissions; this module applies it to a case:
- reporter name and phone: in full for the units handling the case, masked (王*, 138****5678)
  for other readers; for restricted categories hidden ("***") from all but the handling
  department and district or city ``sensitive_viewer`` holders;
- content (description, address, map point, photos, event notes) of a restricted case: only
  for the handling chain and ``sensitive_viewer`` holders;
- each full read of a restricted case's content or reporter writes an ``access_log`` row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session

from lib.core.models import AccessLog, Case, Category, utcnow
from lib.org import permissions
from lib.org.units import Actor

HIDDEN = "***"


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)


@dataclass(frozen=True)
class Reporter:
    name: str | None
    phone: str | None
    full: bool  # False: masked or hidden
    hidden: bool = False


@dataclass(frozen=True)
class Content:
    """What a case says and where, or ``readable=False`` with all of it withheld."""

    readable: bool
    description: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def is_restricted(session: Session, case: Case) -> bool:
    category = session.get(Category, case.category_id)
    return bool(category and category.restricted)


def log_view(session: Session, actor: Actor, case_id: int, what: str) -> None:
    log_views(session, actor, [case_id], what)


def log_views(session: Session, actor: Actor, case_ids: Iterable[int], what: str) -> None:
    """One access-log row per restricted case shown (``what``: content, reporter, or the list
    that named it: merge_list, similar)."""
    now = utcnow()
    for case_id in dict.fromkeys(case_ids):
        session.add(AccessLog(user_id=actor.id, case_id=case_id, at=now, what=what))
    session.flush()


def content_for(session: Session, actor: Actor | None, case: Case, *, log: bool = True) -> Content:
    """The case's content as ``actor`` may read it; a full read of a restricted case is logged."""
    restricted = is_restricted(session, case)
    if not permissions.reads_content(actor, case, restricted):
        return Content(readable=False)
    if restricted and log:
        log_view(session, actor, case.id, "content")
    return Content(True, case.description, case.address, case.latitude, case.longitude)


def reporter_for(session: Session, actor: Actor | None, case: Case, *, log: bool = True) -> Reporter:
    """The reporter as this actor may see them; a full view of a restricted one is logged."""
    restricted = is_restricted(session, case)
    if permissions.sees_reporter(actor, case, restricted):
        if restricted and log and (case.reporter_name or case.reporter_phone):
            log_view(session, actor, case.id, "reporter")
        return Reporter(case.reporter_name, case.reporter_phone, full=True)
    if restricted:
        return Reporter(HIDDEN if case.reporter_name else None,
                        HIDDEN if case.reporter_phone else None, full=False, hidden=True)
    return Reporter(mask_name(case.reporter_name), mask_phone(case.reporter_phone), full=False)
