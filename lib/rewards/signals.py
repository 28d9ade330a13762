"""Fraud signals an approver sees beside a claim. They are hints, never refusals: the approver
decides, with a reason.

  many_reports      the reporter's phone filed 3 or more reports within 24 hours of this one
  crowded_place     3 or more phones reported the same address in the same community and
                    category within 24 hours
  often_rejected    half or more of the reporter's reports (at least 4) were rejected
  copied_photo      a photo the reporter sent is byte-identical to one of an earlier case
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case as when
from sqlalchemy import distinct, func
from sqlmodel import Session, select

from lib.cases.models import Attachment, Case, CaseState
from lib.cases.photos import PhotoKind
from lib.rewards.models import RewardClaim

WINDOW = timedelta(hours=24)
MANY_REPORTS = 3
CROWDED = 3
REJECTED_SHARE = 0.5
REJECTED_MIN = 4
SIGNALS = ("many_reports", "crowded_place", "often_rejected", "copied_photo")


def signals_of(session: Session, claim: RewardClaim) -> list[str]:
    """The signals that fire for one claim, in ``SIGNALS`` order."""
    case = session.get(Case, claim.case_id)
    found: list[str] = []
    since, until = case.reported_at - WINDOW, case.reported_at + WINDOW
    if claim.reporter_phone:
        near = session.exec(select(func.count()).select_from(Case).where(
            Case.reporter_phone == claim.reporter_phone, Case.reported_at >= since,
            Case.reported_at <= until)).one()
        if near >= MANY_REPORTS:
            found.append("many_reports")
    phones = session.exec(select(func.count(distinct(Case.reporter_phone))).where(
        Case.community_id == case.community_id, Case.category_id == case.category_id,
        Case.address == case.address, Case.reported_at >= since, Case.reported_at <= until,
        Case.reporter_phone.is_not(None))).one()
    if phones >= CROWDED:
        found.append("crowded_place")
    if claim.reporter_phone:
        total, rejected = session.exec(select(
            func.count(), func.coalesce(func.sum(when((Case.state == CaseState.rejected, 1),
                                                      else_=0)), 0))
            .where(Case.reporter_phone == claim.reporter_phone)).one()
        if total >= REJECTED_MIN and rejected / total >= REJECTED_SHARE:
            found.append("often_rejected")
    # The reporter's own photos (not the handler's results) against every earlier photo,
    # results included: those are public on the tracking page.
    hashes = select(Attachment.sha256).where(Attachment.case_id == case.id,
                                             Attachment.kind == PhotoKind.report)
    copied = session.exec(select(Attachment.id).join(Case, Case.id == Attachment.case_id).where(
        Attachment.sha256.in_(hashes), Attachment.case_id != case.id,
        Case.reported_at < case.reported_at).limit(1)).first()
    if copied is not None:
        found.append("copied_photo")
    return found
