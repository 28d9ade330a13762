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
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from sqlalchemy import and_, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import access
from lib.cases.access import is_restricted, log_view, mask_phone
from lib.cases.ledger import neutralise
from lib.cases.models import Attachment, Case, CaseEvent
from lib.cases.queue import like_pattern
from lib.cases.states import Act, S
from lib.cases.timeline import Line, move_line
from lib.core.clock import china_time, spreadsheet_time
from lib.core.db import read_session, write_session
from lib.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from lib.core.inputs import clean_search, clean_text, file_safe, parse_id
from lib.core.models import Category, UnitKind, utcnow
from lib.org import permissions
from lib.org.models import Unit, User
from lib.org.units import Actor
from lib.rewards import figures, pools
from lib.rewards.machine import (
    CLAIMS,
    DECIDING,
    REFERENCE_MAX,
    TO_PAY,
    ClaimAct,
    act,
    acted_on,
    barred,
    comparable_phone,
    context,
    in_scope,
    month_total,
)
from lib.rewards.models import ClaimState, RewardClaim, RewardEvent, RewardPayout, RewardPolicy
from lib.rewards.rules import current_policy
from lib.rewards.signals import signals_of
from lib.rewards.timeline import claim_line

C = ClaimState
PAGE_SIZE = 50
SEARCH_MAX = 40
SORTS = ("oldest", "newest")
LEDGER_COLUMNS = ["id", "case", "category", "street", "community", "reporter", "amount_fen",
                  "state", "reason", "method", "payment_detail", "first_approver",
                  "second_approver", "created_at", "approved_at", "paid_at", "paid_by",
                  "reference"]


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
    method: str | None = None  # how the reporter asked to be paid
    payment_detail: str | None = None  # masked; None for a restricted category


def _queue_condition(session: Session, actor: Actor, states: frozenset[str] = DECIDING):  # noqa: ANN202
    """SQL: the claims this approver may decide (``states``: ``DECIDING``) or pay (``TO_PAY``)
    now — in their area, in those states, on no case they acted on, not from their own phone,
    and of a restricted category only with the permission to read it (the same rules as the
    claim machine's approver, so a list offers nothing that ``decide`` or ``batch_pay`` would
    refuse). A second approval is never offered to the first approver."""
    phone = comparable_phone(session.exec(select(User.phone).where(User.id == actor.id)).first())
    waiting = [RewardClaim.state.in_(sorted(states - {C.approved_once}))]
    if C.approved_once in states:
        waiting.append(and_(RewardClaim.state == C.approved_once,
                            RewardClaim.first_approver_id != actor.id))
    conditions = [scope(actor), or_(*waiting), ~acted_on(actor.id, RewardClaim.case_id)]
    if phone:
        conditions.append(or_(RewardClaim.reporter_phone.is_(None),
                              func.replace(RewardClaim.reporter_phone, "-", "") != phone))
    if not access.holds_sensitive_permit(actor):
        conditions.append(RewardClaim.category_id.not_in(access.restricted_categories()))
    return and_(*conditions)


# A phone is searched by what its mask shows (``access.mask_phone``: 139****7777), never by a
# digit the mask hides: a search on hidden digits would let an approver read a whole number off
# the list, one guessed digit at a time.
PHONE_HEAD, PHONE_TAIL = 3, 4


def _search_condition(text: object):  # noqa: ANN202
    """SQL: the claims whose case code holds ``text``, or — for a text of at least four digits —
    whose reporter's phone shows those digits in its mask: its last four, and its first three
    where a whole number is typed. Never a restricted category's reporter (their claimant is
    known by the case code alone). None for an empty text."""
    text = clean_search(text, max_len=SEARCH_MAX)
    if not text:
        return None
    found = [Case.code.like(like_pattern(text.upper()), escape="\\")]
    digits = text.replace(" ", "").replace("-", "")
    if digits.isascii() and digits.isdigit() and len(digits) >= PHONE_TAIL:
        head = digits[:PHONE_HEAD] if len(digits) >= PHONE_HEAD + PHONE_TAIL else ""
        found.append(and_(RewardClaim.category_id.not_in(access.restricted_categories()),
                          func.replace(RewardClaim.reporter_phone, "-", "").like(
                              head + "%" + digits[-PHONE_TAIL:])))
    return or_(*found)


def approval_queue(actor: Actor, *, page: int = 0, engine: Engine | None = None,
                   page_size: int = PAGE_SIZE, text: str | None = None,
                   sort: str = "oldest") -> tuple[list[QueueRow], int]:
    """Claims waiting for this approver's decision, one page: oldest first (``sort``:
    ``newest`` for newest first), optionally only those whose case code or reporter's phone
    matches ``text`` (``_search_condition``)."""
    permissions.require(actor, permissions.REWARD_APPROVERS)
    with read_session(engine) as session:
        return _listing(session, actor, DECIDING, page=page, page_size=page_size, text=text,
                        sort=sort)


def payout_queue(actor: Actor, *, page: int = 0, engine: Engine | None = None,
                 page_size: int = PAGE_SIZE, text: str | None = None,
                 sort: str = "oldest") -> tuple[list[QueueRow], int]:
    """Approved claims this approver may pay (待发放), one page, approved longest ago first;
    the same search and sorts as ``approval_queue``."""
    permissions.require(actor, permissions.REWARD_APPROVERS)
    with read_session(engine) as session:
        return _listing(session, actor, TO_PAY, page=page, page_size=page_size, text=text,
                        sort=sort)


def _listing(session: Session, actor: Actor, states: frozenset[str], *, page: int,
             page_size: int, text: str | None, sort: str) -> tuple[list[QueueRow], int]:
    if sort not in SORTS:
        raise ValidationFailed("error.choice_invalid", field="sort")
    condition = _queue_condition(session, actor, states)
    searched = _search_condition(text)
    base = select(RewardClaim).where(condition)
    counted = select(func.count()).select_from(RewardClaim).where(condition)
    if searched is not None:
        base = base.join(Case, Case.id == RewardClaim.case_id).where(searched)
        counted = counted.join(Case, Case.id == RewardClaim.case_id).where(searched)
    total = session.exec(counted).one()
    order = (RewardClaim.updated_at.desc(), RewardClaim.id.desc()) if sort == "newest" \
        else (RewardClaim.updated_at, RewardClaim.id)
    claims = session.exec(base.order_by(*order).offset(max(page, 0) * page_size)
                          .limit(page_size)).all()
    policy = current_policy(session)
    codes = dict(session.exec(select(Case.id, Case.code).where(
        Case.id.in_([c.case_id for c in claims]))).all()) if claims else {}
    categories = {c.id: c for c in session.exec(select(Category)).all()}
    units = {u.id: u for u in session.exec(select(Unit).where(
        Unit.id.in_({c.community_id for c in claims}))).all()} if claims else {}
    rows = []
    for claim in claims:
        found = signals_of(session, claim) if claim.state in DECIDING else []
        category = categories[claim.category_id]
        rows.append(QueueRow(claim.id, claim.version, codes.get(claim.case_id, ""),
                             category, units[claim.community_id],
                             claim.amount_fen, claim.state, claim.updated_at,
                             None if category.restricted else mask_phone(claim.reporter_phone) or "",
                             found,
                             not found and claim.amount_fen <= policy.second_approval_above_fen
                             and claim.state == C.pending, claim.first_approver_id,
                             claim.method,
                             None if category.restricted else mask_detail(claim.payment_detail)))
    return rows, total


def waiting_count(actor: Actor, engine: Engine | None = None) -> int:
    """The number beside the approval page in the menu."""
    if not actor.has(*permissions.REWARD_APPROVERS):
        return 0
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(RewardClaim)
                            .where(_queue_condition(session, actor))).one()


def to_pay_count(actor: Actor, engine: Engine | None = None) -> int:
    """Approved claims this approver may pay (the 待发放 tab's number)."""
    if not actor.has(*permissions.REWARD_APPROVERS):
        return 0
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(RewardClaim)
                            .where(_queue_condition(session, actor, TO_PAY))).one()


# The approval page's two lists: claims to decide (待审批) and approved claims to pay (待发放).
LISTS = ("decide", "to_pay")


def list_counts(actor: Actor, engine: Engine | None = None) -> dict[str, int]:
    return {"decide": waiting_count(actor, engine), "to_pay": to_pay_count(actor, engine)}


def opening_list(counts: dict[str, int], asked: object = None) -> str:
    """The list the page opens on: the one the address asks for, else the one with work in it —
    decisions first, the payouts when nothing waits for a decision."""
    if asked in LISTS:
        return str(asked)
    return "to_pay" if not counts["decide"] and counts["to_pay"] else "decide"


def home_tiles(actor: Actor, engine: Engine | None = None) -> list[tuple[str, int]]:
    """An approver's home tiles: claims to decide (always), and approved claims to pay when
    there are any; (catalog key, count)."""
    if not actor.has(*permissions.REWARD_APPROVERS):
        return []
    counts = list_counts(actor, engine)
    tiles = [("rewards.tile", counts["decide"])]
    if counts["to_pay"]:
        tiles.append(("rewards.tile_to_pay", counts["to_pay"]))
    return tiles


def tile_address(key: str) -> tuple[str | None, dict[str, str]]:
    """The page and query a reward tile opens: the approval page, on the list it counts."""
    if key == "rewards.tile":
        return "rewards", {}
    if key == "rewards.tile_to_pay":
        return "rewards", {"tab": "to_pay"}
    return None, {}


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


@dataclass(frozen=True)
class PayOutcome:
    """What a batch payout did: the claims paid and their total, and each claim not paid with
    why (a catalog key: another approver paid or changed it since it was drawn, the approver
    may not pay it, it is no longer approved …)."""

    paid: list[int]
    paid_fen: int
    refused: list[tuple[int, str]]


def batch_pay(actor: Actor, claims: dict[int, int], *, reference: object,
              references: dict[int, object] | None = None, method: str | None = None,
              engine: Engine | None = None, now: datetime | None = None) -> PayOutcome:
    """Record the payout of each ticked claim (``claims``: id → the version its approver saw),
    each as its own checked pay move in a transaction of its own, with the payment reference
    (one for all, or per claim in ``references``). A batch needs a reference, checked before
    anything is written; each claim's area, state, version and the approver's right to pay it
    are checked again by the move, and a claim refused says why."""
    permissions.require(actor, permissions.REWARD_APPROVERS)
    if len(claims) > PAGE_SIZE:  # one page of the list, as the queue's batches
        raise ValidationFailed("error.batch_too_large", max=PAGE_SIZE)
    shared = clean_text(reference, field="reference", max_len=REFERENCE_MAX, multiline=False)
    references = references or {}
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in (*claims, *references)):
        raise NotFound("error.claim_not_found")
    own = {i: clean_text(r, field="reference", max_len=REFERENCE_MAX, multiline=False)
           for i, r in references.items()}
    missing = [i for i in claims if not (own.get(i) or shared)]
    if missing or not claims:
        raise ValidationFailed("error.fields_required", fields=["reference"])
    paid, total, refused = [], 0, []
    for claim_id, version in claims.items():
        try:
            with write_session(engine) as session:
                why = _why_not_pay(session, actor, claim_id, version, now or utcnow())
                if why is not None:
                    raise PermissionDenied(why)
                done = act(session, actor, claim_id, ClaimAct.pay, version=version, now=now,
                           method=method, reference=own.get(claim_id) or shared)
                paid.append(claim_id)
                total += done.amount_fen
        except DomainError as err:
            refused.append((claim_id, err.key))
    return PayOutcome(paid, total, refused)


def _why_not_pay(session: Session, actor: Actor, claim_id: object, version: int,
                 now: datetime) -> str | None:
    """Why this approver may not pay the claim now, in words a batch can show per claim (a
    catalog key), or None; the pay move checks all of it again."""
    claim = session.get(RewardClaim, claim_id) if isinstance(claim_id, int) else None
    if claim is None or not in_scope(actor, claim):
        return CLAIMS.not_found
    if claim.version != version:
        return "rewards.refused.changed"
    if claim.state not in TO_PAY:
        return "rewards.refused.not_to_pay"
    ctx = context(session, claim, now)
    return barred(actor, ctx) or ("rewards.staff_report" if ctx.staff_report else None)


# ---------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class LedgerFilter:
    month: str | None = None  # YYYY-MM (China time) of the date ``dated`` names
    state: str | None = None
    street_id: int | None = None
    # Which date the month reads: when the claim was opened (eligibility, ``created``), when it
    # was approved in full (``approval``: the move into the approved state), or paid (``payout``).
    dated: str = "created"


DATED = ("created", "approval", "payout")


def _approved_event():  # noqa: ANN202
    """SQL: each claim's approval in full (``figures.award_moves``), as (claim_id, at)."""
    return figures.award_moves()


def _ledger_conditions(actor: Actor, chosen: LedgerFilter) -> list:
    if chosen.dated not in DATED:
        raise ValidationFailed("error.choice_invalid", field="dated")
    conditions = [scope(actor)]
    if chosen.state:
        conditions.append(RewardClaim.state == chosen.state)
    if chosen.street_id:
        conditions.append(RewardClaim.street_id == chosen.street_id)
    if chosen.month:
        start = pools.month_start_of(chosen.month)
        end = pools.next_month_start(start)
        if chosen.dated == "created":
            conditions += [RewardClaim.created_at >= start, RewardClaim.created_at < end]
        elif chosen.dated == "approval":
            moved = figures.award_moves()
            conditions.append(RewardClaim.id.in_(select(moved.c.claim_id).where(
                moved.c.at >= start, moved.c.at < end)))
        else:
            conditions.append(RewardClaim.id.in_(select(RewardPayout.claim_id).where(
                RewardPayout.paid_at >= start, RewardPayout.paid_at < end)))
    return conditions


def ledger_rows(actor: Actor, chosen: LedgerFilter = LedgerFilter(), *, lang_name, label,  # noqa: ANN001
                limit: int = 5000, engine: Engine | None = None) -> list[dict[str, object]]:
    """Claims and their payouts as plain rows, payment details masked. Amounts stay numbers
    (``amount_fen``) and moments stay moments (UTC ``datetime`` or None), for the page and the
    exports to write each in its own way; ``id`` is the claim's number."""
    permissions.require(actor, permissions.REWARD_READERS)
    approved = _approved_event()
    with read_session(engine, snapshot=True) as session:
        found = session.exec(select(RewardClaim, Case.code, RewardPayout, approved.c.at).join(
            Case, Case.id == RewardClaim.case_id).outerjoin(
            RewardPayout, RewardPayout.claim_id == RewardClaim.id).outerjoin(
            approved, approved.c.claim_id == RewardClaim.id)
            .where(*_ledger_conditions(actor, chosen))
            .order_by(RewardClaim.created_at.desc(), RewardClaim.id.desc()).limit(limit)).all()
        categories = {c.id: c for c in session.exec(select(Category)).all()}
        units = {u.id: u for u in session.exec(select(Unit)).all()}
        people = _names(session, {x for c, _, p, _ in found for x in (c.first_approver_id,
                                                                      c.second_approver_id,
                                                                      p.paid_by_id if p else None)})
    hidden = label("rewards.reporter_hidden")
    return [{
        "id": claim.id, "case": code, "category": lang_name(categories[claim.category_id]),
        "street": lang_name(units[claim.street_id]), "community": lang_name(units[claim.community_id]),
        # A restricted category's claimant is known by the case code: no phone, no account.
        "reporter": hidden if categories[claim.category_id].restricted
        else mask_phone(claim.reporter_phone) or "",
        "amount_fen": claim.amount_fen,
        "state": label("claim_state." + claim.state),
        "reason": label("reward_reason." + claim.reason) if claim.reason else "",
        "method": label("reward_method." + claim.method) if claim.method else "",
        "payment_detail": hidden if categories[claim.category_id].restricted and claim.payment_detail
        else mask_detail(claim.payment_detail),
        "first_approver": people.get(claim.first_approver_id, ""),
        "second_approver": people.get(claim.second_approver_id, ""),
        "approved_at": approved_at,
        "paid_at": payout.paid_at if payout else None,
        "paid_by": people.get(payout.paid_by_id, "") if payout else "",
        "reference": payout.reference or "" if payout else "",
        "created_at": claim.created_at,
    } for claim, code, payout, approved_at in found]


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    ids.discard(None)
    if not ids:
        return {}
    return dict(session.exec(select(User.id, User.display_name).where(User.id.in_(ids))).all())


MOMENTS = ("approved_at", "paid_at", "created_at")
MONEY = ("amount_fen",)
XLSX_DATE = "yyyy-mm-dd hh:mm"
XLSX_YUAN = "#,##0.00"


def _csv_cell(column: str, value: object) -> object:
    if column in MONEY:
        return f"{value / 100:.2f}"
    if column in MOMENTS:
        return china_time(value)
    return neutralise(value)


def _xlsx_cell(sheet, column: str, value: object) -> WriteOnlyCell:  # noqa: ANN001
    """A cell of the workbook: an amount as a number of yuan, a moment as a date in China time
    (Excel has no time zones), both with a number format; text neutralised."""
    if column in MONEY:
        cell = WriteOnlyCell(sheet, value=round(value / 100, 2))
        cell.number_format = XLSX_YUAN
    elif column in MOMENTS:
        cell = WriteOnlyCell(sheet, value=spreadsheet_time(value) if value else None)
        cell.number_format = XLSX_DATE
    else:
        cell = WriteOnlyCell(sheet, value=neutralise(value))
    return cell


def export(actor: Actor, chosen: LedgerFilter, *, fmt: str, lang_name, label,  # noqa: ANN001
           engine: Engine | None = None) -> bytes:
    """The claims ledger as CSV or Excel: formulas neutralised, phones and details masked. The
    workbook keeps amounts as numbers and dates as dates, with the header row frozen and an
    autofilter over the table."""
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed("error.format_invalid")
    rows = ledger_rows(actor, chosen, lang_name=lang_name, label=label, limit=200_000,
                       engine=engine)
    header = [label("reward_ledger.col." + c) for c in LEDGER_COLUMNS]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows([_csv_cell(c, row[c]) for c in LEDGER_COLUMNS] for row in rows)
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    book = Workbook(write_only=True)
    sheet = book.create_sheet(label("page.reward_ledger")[:31])
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(LEDGER_COLUMNS))}{len(rows) + 1}"
    for index, column in enumerate(LEDGER_COLUMNS, start=1):
        width = 18 if column in MOMENTS else 12
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.append(header)
    for row in rows:
        sheet.append([_xlsx_cell(sheet, c, row[c]) for c in LEDGER_COLUMNS])
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def export_name(actor: Actor, chosen: LedgerFilter, *, fmt: str, lang_name, label,  # noqa: ANN001
                engine: Engine | None = None) -> str:
    """The file name of an export: what it is, the reader's unit and the period it covers
    (``奖励台账_春熙路街道_2026-11_批准.xlsx``; ``全部`` without a month), with no character a
    file system refuses."""
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed("error.format_invalid")
    with read_session(engine) as session:
        unit = session.get(Unit, actor.unit_id)
    period = chosen.month or label("reward_ledger.period_all")
    if chosen.month:
        period = f"{period}_{label('reward_ledger.dated_short.' + chosen.dated)}"
    parts = [label("page.reward_ledger"), lang_name(unit) if unit else "", period]
    name = "_".join(p for p in parts if p)
    return file_safe(name) + "." + fmt


def month_totals(actor: Actor, month: str, engine: Engine | None = None) -> list[figures.MonthTotal]:
    """Per street of the actor's area, the month's claims made, awards, payouts, rejections
    and the street's pool (``figures.month_totals``: one basis with the assessment pages)."""
    permissions.require(actor, permissions.REWARD_READERS)
    with read_session(engine) as session:
        return figures.month_totals(session, scope(actor), month)


def district_pool(actor: Actor, month: str, engine: Engine | None = None) -> figures.PoolFigures | None:
    """The district's pool of the month (large awards) for a reader of a district; None for
    anyone else (a street reader sees the street's pool on its own line)."""
    permissions.require(actor, permissions.REWARD_READERS)
    if actor.unit_kind != UnitKind.district:
        return None
    with read_session(engine) as session:
        return figures.pool_figures(session, session.get(Unit, actor.unit_id), month)
