"""The reward-approval page and the claims ledger: what an approver sees and decides.

A queue of claims waiting in the approver's street or district, oldest first, with the case's
evidence, the reporter's history and the fraud signals; approve, reject with a reason, a second
approval by another approver above the threshold, batch approval of clean small claims, and the
payout. The ledger lists claims and payouts with month totals per street, exported to CSV and
Excel with formulas neutralised and payment details masked (never exported in full).

What each reader gets (lib returns no more than this, whatever the page draws):
- the reporter: a masked phone for ordinary categories; nothing at all for restricted ones
  (黄赌毒, special populations), whose claimant is known by the claim's number and the case code;
- the evidence (description, address, result, photos) of a restricted case: only to a reader who
  may read its content (``access.sensitive_permit``), and each such read is logged;
- the payment detail: masked for approvers and leaders (nothing for a restricted claim), in full
  only to the approver who may pay the claim now, and that read is logged.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from openpyxl import Workbook
from sqlalchemy import and_, func, or_
from sqlalchemy import case as when
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import access
from lib.cases.access import is_restricted, log_view, mask_phone
from lib.cases.ledger import neutralise
from lib.cases.models import Attachment, Case, CaseEvent
from lib.cases.states import Act, S
from lib.cases.timeline import Line, move_line
from lib.core.clock import china_time
from lib.core.db import read_session, write_session
from lib.core.errors import DomainError, NotFound, ValidationFailed
from lib.core.inputs import parse_id
from lib.core.models import Category, UnitKind, utcnow
from lib.org import permissions
from lib.org.models import Unit, User
from lib.org.units import Actor
from lib.rewards import pools
from lib.rewards.machine import (
    AWARDED,
    CLAIMS,
    ClaimAct,
    act,
    acted_on,
    barred,
    comparable_phone,
    context,
    in_scope,
    month_total,
)
from lib.rewards.models import ClaimState, RewardClaim, RewardEvent, RewardPayout, RewardPolicy, RewardPool
from lib.rewards.rules import current_policy, yuan
from lib.rewards.signals import signals_of
from lib.rewards.timeline import claim_line

C = ClaimState
PAGE_SIZE = 50
LEDGER_COLUMNS = ["case", "category", "street", "community", "reporter", "amount", "state",
                  "reason", "method", "payment_detail", "first_approver", "second_approver",
                  "paid_at", "paid_by", "reference", "created_at"]


def scope(actor: Actor):  # noqa: ANN201
    """SQL: the claims of the actor's community, street or district (or the city's districts)."""
    if actor.unit_kind == UnitKind.community:
        return RewardClaim.community_id == actor.unit_id
    if actor.unit_kind == UnitKind.street:
        return RewardClaim.street_id == actor.unit_id
    if actor.unit_kind in (UnitKind.district, UnitKind.city):
        return RewardClaim.district_id == actor.unit_id if actor.unit_kind == UnitKind.district \
            else RewardClaim.district_id.in_(select(Unit.id).where(Unit.parent_id == actor.unit_id))
    return RewardClaim.id < 0


def mask_detail(detail: str | None) -> str:
    """A payment detail (an account number, a name) as four stars and at most its last four
    characters: fewer than half of them always, one at most up to six characters, none up to
    two ("张三" → "****", "1234" → "****4", "6222020200112233445" → "****3445"). The stars never
    tell the length."""
    if not detail:
        return ""
    shown = 0 if len(detail) <= 2 else 1 if len(detail) <= 6 else min(4, (len(detail) - 1) // 2)
    return "****" + detail[len(detail) - shown:]


# ---------------------------------------------------------------- the queue


@dataclass(frozen=True)
class QueueRow:
    id: int
    version: int
    case_code: str
    category: Category
    community: Unit
    amount_fen: int
    state: str
    waiting_since: datetime
    reporter: str | None  # masked phone; None: a restricted category's reporter is not shown
    signals: list[str]
    clean: bool  # no signal and not above the threshold: may be approved in a batch
    first_approver_id: int | None


def _queue_condition(session: Session, actor: Actor):  # noqa: ANN202
    """SQL: the claims this approver may decide now — in their area, waiting, on no case they
    acted on, not from their own phone, and of a restricted category only with the permission
    to read it (the same rules as the claim machine's approver, so the queue offers nothing
    that ``decide`` would refuse)."""
    phone = comparable_phone(session.exec(select(User.phone).where(User.id == actor.id)).first())
    conditions = [scope(actor), or_(RewardClaim.state == C.pending,
                                    and_(RewardClaim.state == C.approved_once,
                                         RewardClaim.first_approver_id != actor.id)),
                  ~acted_on(actor.id, RewardClaim.case_id)]
    if phone:
        conditions.append(or_(RewardClaim.reporter_phone.is_(None),
                              func.replace(RewardClaim.reporter_phone, "-", "") != phone))
    if not access.holds_sensitive_permit(actor):
        conditions.append(RewardClaim.category_id.not_in(access.restricted_categories()))
    return and_(*conditions)


def approval_queue(actor: Actor, *, page: int = 0, engine: Engine | None = None,
                   page_size: int = PAGE_SIZE) -> tuple[list[QueueRow], int]:
    """Claims waiting for this approver, oldest first, one page."""
    permissions.require(actor, permissions.REWARD_APPROVERS)
    with read_session(engine) as session:
        condition = _queue_condition(session, actor)
        total = session.exec(select(func.count()).select_from(RewardClaim).where(condition)).one()
        claims = session.exec(select(RewardClaim).where(condition)
                              .order_by(RewardClaim.updated_at, RewardClaim.id)
                              .offset(max(page, 0) * page_size).limit(page_size)).all()
        policy = current_policy(session)
        codes = dict(session.exec(select(Case.id, Case.code).where(
            Case.id.in_([c.case_id for c in claims]))).all()) if claims else {}
        categories = {c.id: c for c in session.exec(select(Category)).all()}
        units = {u.id: u for u in session.exec(select(Unit).where(
            Unit.id.in_({c.community_id for c in claims}))).all()} if claims else {}
        rows = []
        for claim in claims:
            found = signals_of(session, claim)
            category = categories[claim.category_id]
            rows.append(QueueRow(claim.id, claim.version, codes.get(claim.case_id, ""),
                                 category, units[claim.community_id],
                                 claim.amount_fen, claim.state, claim.updated_at,
                                 None if category.restricted else mask_phone(claim.reporter_phone) or "",
                                 found,
                                 not found and claim.amount_fen <= policy.second_approval_above_fen
                                 and claim.state == C.pending, claim.first_approver_id))
        return rows, total


def waiting_count(actor: Actor, engine: Engine | None = None) -> int:
    """The number beside the approval page in the menu."""
    if not actor.has(*permissions.REWARD_APPROVERS):
        return 0
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(RewardClaim)
                            .where(_queue_condition(session, actor))).one()


# ---------------------------------------------------------------- one claim


@dataclass(frozen=True)
class History:
    claims_this_month: int
    awarded_this_month_fen: int
    reports: int
    rejected_reports: int


@dataclass(frozen=True)
class ClaimView:
    """A claim as the approval page needs it: no phone, no payment detail."""

    id: int
    version: int
    state: str
    amount_fen: int
    method: str | None
    reason: str | None


@dataclass
class ClaimDetail:
    claim: ClaimView
    case_code: str
    category: Category
    community: Unit
    street: Unit
    restricted: bool
    reporter: str | None  # a masked phone; None for a restricted category (or no phone)
    evidence: bool  # False: a restricted case's content stays with who may read it
    description: str | None
    address: str | None
    result: str | None  # what the handler recorded
    photos: list[Attachment]
    timeline: list[tuple[datetime, str]]  # the case's moves
    claim_events: list[RewardEvent]
    history: History
    signals: list[str]
    actions: list[str]
    barred: str | None  # why this approver may not decide it (a catalog key), if so
    staff_report: bool  # the report carries a staff identity: it can only be rejected
    payment_detail: str | None  # masked; None for a restricted claim
    full_payment_detail: str | None  # only to the approver who may pay it now
    threshold_fen: int

    @property
    def case_lines(self) -> list[Line]:
        """The case's moves behind the claim, in words."""
        return [move_line(at, action) for at, action in self.timeline]

    @property
    def claim_lines(self) -> list[Line]:
        """The claim's own events, newest first."""
        return [claim_line(e) for e in reversed(self.claim_events)]


def claim_detail(actor: Actor, claim_id: object, engine: Engine | None = None,
                 now: datetime | None = None) -> ClaimDetail:
    """One claim as this reader may see it. A read that shows a restricted case's evidence or
    the full payment detail happens in a write transaction that logs it."""
    permissions.require(actor, permissions.REWARD_READERS)
    now = now or utcnow()
    with read_session(engine) as session:
        detail = _claim_detail(session, actor, claim_id, now)
    if not detail.full_payment_detail and not (detail.restricted and detail.evidence):
        return detail
    with write_session(engine) as session:
        detail = _claim_detail(session, actor, claim_id, now)
        case_id = session.get(RewardClaim, detail.claim.id).case_id
        if detail.restricted and detail.evidence:
            log_view(session, actor, case_id, "reward_evidence")
        if detail.full_payment_detail:
            log_view(session, actor, case_id, "payment_detail")
        return detail


def _claim_detail(session: Session, actor: Actor, claim_id: object, now: datetime) -> ClaimDetail:
    claim = _load(session, actor, claim_id)
    case = session.get(Case, claim.case_id)
    restricted = is_restricted(session, case)
    evidence = not restricted or access.sensitive_permit(actor, case)
    events = session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)
                          .order_by(CaseEvent.seq)).all()
    result = next((e.note for e in reversed(events) if e.action == Act.handle), None)
    approver = actor.has(*permissions.REWARD_APPROVERS)
    ctx = context(session, claim, now)
    actions = CLAIMS.allowed(actor, claim, ctx) if approver else []
    month = pools.month_of(now)
    history = History(
        claims_this_month=session.exec(select(func.count()).select_from(RewardClaim).where(
            RewardClaim.reporter_key == claim.reporter_key,
            RewardClaim.created_at >= pools.month_start_of(month))).one(),
        awarded_this_month_fen=month_total(session, claim.reporter_key, month),
        reports=session.exec(select(func.count()).select_from(Case).where(
            Case.reporter_phone == claim.reporter_phone)).one() if claim.reporter_phone else 1,
        rejected_reports=session.exec(select(func.count()).select_from(Case).where(
            Case.reporter_phone == claim.reporter_phone, Case.state == S.rejected)).one()
        if claim.reporter_phone else 0)
    return ClaimDetail(
        claim=ClaimView(claim.id, claim.version, claim.state, claim.amount_fen, claim.method,
                        claim.reason),
        case_code=case.code, category=session.get(Category, claim.category_id),
        community=session.get(Unit, claim.community_id), street=session.get(Unit, claim.street_id),
        restricted=restricted, reporter=None if restricted else mask_phone(claim.reporter_phone),
        evidence=evidence, description=case.description if evidence else None,
        address=case.address if evidence else None, result=result if evidence else None,
        photos=list(session.exec(select(Attachment).where(Attachment.case_id == case.id)
                                 .order_by(Attachment.id)).all()) if evidence else [],
        timeline=[(e.at, e.action) for e in events],
        claim_events=list(session.exec(select(RewardEvent).where(
            RewardEvent.claim_id == claim.id).order_by(RewardEvent.seq)).all()),
        history=history, signals=signals_of(session, claim), actions=actions,
        barred=barred(actor, ctx) if approver else None, staff_report=ctx.staff_report,
        payment_detail=None if restricted and not evidence else mask_detail(claim.payment_detail),
        full_payment_detail=claim.payment_detail if ClaimAct.pay in actions else None,
        threshold_fen=session.get(RewardPolicy, claim.policy_id).second_approval_above_fen
        if claim.policy_id else 0)


def _load(session: Session, actor: Actor, claim_id: object) -> RewardClaim:
    """The claim, if it lies in the actor's street or district."""
    try:
        claim = session.get(RewardClaim, parse_id(claim_id))
    except NotFound:
        claim = None
    if claim is None or not in_scope(actor, claim):
        raise NotFound(CLAIMS.not_found)
    return claim


def decide(actor: Actor, claim_id: object, action: str, *, version: int,
           engine: Engine | None = None, now: datetime | None = None,
           **params: object) -> RewardClaim:
    """An approver's move on a claim, in a transaction of its own."""
    permissions.require(actor, permissions.REWARD_APPROVERS)
    with write_session(engine) as session:
        return act(session, actor, claim_id, action, version=version, now=now, **params)


def batch_approve(actor: Actor, claims: list[tuple[int, int]], engine: Engine | None = None,
                  now: datetime | None = None) -> tuple[int, list[tuple[int, str]]]:
    """Approve clean small claims, each as its own checked move: (approved, [(id, refusal)]).
    A claim with a signal or above the threshold is refused here: it needs a look of its own."""
    permissions.require(actor, permissions.REWARD_APPROVERS)
    done, refused = 0, []
    for claim_id, version in claims:
        try:
            with write_session(engine) as session:
                claim = session.get(RewardClaim, claim_id)
                if claim is None or not in_scope(actor, claim):
                    raise DomainError(CLAIMS.not_found)
                policy = session.get(RewardPolicy, claim.policy_id)
                if claim.amount_fen > policy.second_approval_above_fen or signals_of(session, claim):
                    raise DomainError("error.reward_not_clean")
                act(session, actor, claim_id, ClaimAct.approve, version=version, now=now)
            done += 1
        except DomainError as err:
            refused.append((claim_id, err.key))
    return done, refused


# ---------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class LedgerFilter:
    month: str | None = None  # YYYY-MM (China time) of the claim's creation
    state: str | None = None
    street_id: int | None = None


def _ledger_conditions(actor: Actor, chosen: LedgerFilter) -> list:
    conditions = [scope(actor)]
    if chosen.state:
        conditions.append(RewardClaim.state == chosen.state)
    if chosen.street_id:
        conditions.append(RewardClaim.street_id == chosen.street_id)
    if chosen.month:
        start = pools.month_start_of(chosen.month)
        conditions += [RewardClaim.created_at >= start,
                       RewardClaim.created_at < pools.next_month_start(start)]
    return conditions


def ledger_rows(actor: Actor, chosen: LedgerFilter = LedgerFilter(), *, lang_name, label,  # noqa: ANN001
                limit: int = 5000, engine: Engine | None = None) -> list[dict[str, object]]:
    """Claims and their payouts as plain rows, payment details masked."""
    permissions.require(actor, permissions.REWARD_READERS)
    with read_session(engine, snapshot=True) as session:
        found = session.exec(select(RewardClaim, Case.code, RewardPayout).join(
            Case, Case.id == RewardClaim.case_id).outerjoin(
            RewardPayout, RewardPayout.claim_id == RewardClaim.id)
            .where(*_ledger_conditions(actor, chosen))
            .order_by(RewardClaim.created_at.desc(), RewardClaim.id.desc()).limit(limit)).all()
        categories = {c.id: c for c in session.exec(select(Category)).all()}
        units = {u.id: u for u in session.exec(select(Unit)).all()}
        people = _names(session, {x for c, _, p in found for x in (c.first_approver_id,
                                                                   c.second_approver_id,
                                                                   p.paid_by_id if p else None)})
    hidden = label("rewards.reporter_hidden")
    return [{
        "id": claim.id, "case": code, "category": lang_name(categories[claim.category_id]),
        "street": lang_name(units[claim.street_id]), "community": lang_name(units[claim.community_id]),
        # A restricted category's claimant is known by the case code: no phone, no account.
        "reporter": hidden if categories[claim.category_id].restricted
        else mask_phone(claim.reporter_phone) or "",
        "amount": yuan(claim.amount_fen),
        "state": label("claim_state." + claim.state),
        "reason": label("reward_reason." + claim.reason) if claim.reason else "",
        "method": label("reward_method." + claim.method) if claim.method else "",
        "payment_detail": hidden if categories[claim.category_id].restricted and claim.payment_detail
        else mask_detail(claim.payment_detail),
        "first_approver": people.get(claim.first_approver_id, ""),
        "second_approver": people.get(claim.second_approver_id, ""),
        "paid_at": china_time(payout.paid_at) if payout else "",
        "paid_by": people.get(payout.paid_by_id, "") if payout else "",
        "reference": payout.reference or "" if payout else "",
        "created_at": china_time(claim.created_at),
    } for claim, code, payout in found]


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    ids.discard(None)
    if not ids:
        return {}
    return dict(session.exec(select(User.id, User.display_name).where(User.id.in_(ids))).all())


def export(actor: Actor, chosen: LedgerFilter, *, fmt: str, lang_name, label,  # noqa: ANN001
           engine: Engine | None = None) -> bytes:
    """The claims ledger as CSV or Excel: formulas neutralised, phones and details masked."""
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed("error.format_invalid")
    rows = ledger_rows(actor, chosen, lang_name=lang_name, label=label, limit=200_000,
                       engine=engine)
    header = [label("reward_ledger.col." + c) for c in LEDGER_COLUMNS]
    body = [[neutralise(row[c]) for c in LEDGER_COLUMNS] for row in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(body)
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    book = Workbook(write_only=True)
    sheet = book.create_sheet(label("page.reward_ledger")[:31])
    sheet.append(header)
    for line in body:
        sheet.append(line)
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


@dataclass(frozen=True)
class MonthTotal:
    street: Unit
    claims: int
    approved_fen: int  # approved or paid
    paid_fen: int
    rejected: int
    pool_budget_fen: int
    pool_committed_fen: int


def month_totals(actor: Actor, month: str, engine: Engine | None = None) -> list[MonthTotal]:
    """Per street of the actor's area: claims created in the month, what was awarded and paid,
    and the street's pool for the month."""
    permissions.require(actor, permissions.REWARD_READERS)
    start = pools.month_start_of(month)
    end = pools.next_month_start(start)
    with read_session(engine) as session:
        awarded = func.sum(func.coalesce(
            _if(RewardClaim.state.in_(sorted(AWARDED)), RewardClaim.amount_fen), 0))
        paid = func.sum(func.coalesce(_if(RewardClaim.state == C.paid, RewardClaim.amount_fen), 0))
        rejected = func.sum(func.coalesce(_if(RewardClaim.state == C.rejected, 1), 0))
        rows = session.exec(select(RewardClaim.street_id, func.count(), awarded, paid, rejected)
                            .where(scope(actor), RewardClaim.created_at >= start,
                                   RewardClaim.created_at < end)
                            .group_by(RewardClaim.street_id)).all()
        streets = {u.id: u for u in session.exec(select(Unit).where(
            Unit.id.in_([r[0] for r in rows]))).all()} if rows else {}
        pool_rows = {p.unit_id: p for p in session.exec(select(RewardPool).where(
            RewardPool.month == month)).all()}
    return sorted([MonthTotal(streets[s], n, a or 0, p or 0, r or 0,
                              pool_rows[s].budget_fen if s in pool_rows else 0,
                              pool_rows[s].committed_fen if s in pool_rows else 0)
                   for s, n, a, p, r in rows], key=lambda t: t.street.code)


def _if(condition, value):  # noqa: ANN001, ANN202
    return when((condition, value), else_=None)

