"""Reward rules and policy: how much a valid first report earns (by category and severity), the
monthly pools, the per-reporter cap, the second-approval threshold, the claim window and the
payment methods. Defaults come from ``data/rewards.json``; an admin changes them in the
browser. Every change is a new row (the old one closed with ``valid_to``) recording who made it,
so a claim keeps the rule and policy it was created under.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.core.config import DATA_DIR
from lib.core.db import read_session, write_session
from lib.core.errors import ValidationFailed
from lib.core.models import Category, Role, Severity, utcnow
from lib.org.auth import require_role
from lib.org.units import Actor
from lib.rewards.models import RewardPolicy, RewardRule

REWARDS_FILE = DATA_DIR / "rewards.json"
CASH = "cash"  # the method that needs no payment details
METHODS = ("bank", CASH, "points")
MAX_AMOUNT_FEN = 10_000_000  # ¥100,000: no single award is larger
MAX_POOL_FEN = 1_000_000_000


def yuan(fen: int | None) -> str:
    """¥1,234.50 style, for pages and exports."""
    if fen is None:
        return ""
    return f"¥{fen / 100:,.2f}".replace(".00", "")


def to_fen(value: object, *, field: str, maximum: int = MAX_AMOUNT_FEN) -> int:
    """A yuan amount typed by a person, checked: a number, not negative, not absurd."""
    if isinstance(value, bool):
        raise ValidationFailed("error.amount_invalid", field=field)
    try:
        number = float(str(value).strip().replace(",", "").lstrip("¥"))
        fen = round(number * 100)
    except (TypeError, ValueError, OverflowError):  # text, NaN, infinity
        raise ValidationFailed("error.amount_invalid", field=field) from None
    if fen < 0 or fen > maximum:  # negative or too large
        raise ValidationFailed("error.amount_invalid", field=field)
    return int(fen)


# ---------------------------------------------------------------- reading


def current_policy(session: Session) -> RewardPolicy:
    policy = session.exec(select(RewardPolicy).where(RewardPolicy.valid_to.is_(None))
                          .order_by(RewardPolicy.id.desc())).first()
    if policy is None:
        raise ValidationFailed("error.reward_policy_missing")
    return policy


def rule_for(session: Session, category_id: int, severity: str) -> RewardRule | None:
    """The current rule for the case: its category and severity, else its category for any
    severity, else the default for its severity, else the default for any."""
    rules = session.exec(select(RewardRule).where(
        RewardRule.valid_to.is_(None),
        or_(RewardRule.category_id == category_id, RewardRule.category_id.is_(None)),
        or_(RewardRule.severity == severity, RewardRule.severity.is_(None)))).all()
    ranked = sorted(rules, key=lambda r: (r.category_id is None, r.severity is None, -r.id))
    return ranked[0] if ranked else None


@dataclass(frozen=True)
class RulesScreen:
    policy: RewardPolicy
    rules: list[RewardRule]
    categories: list[Category]
    history: list[RewardRule | RewardPolicy]


def rules_screen(actor: Actor, engine: Engine | None = None) -> RulesScreen:
    require_role(actor, Role.admin)
    with read_session(engine) as session:
        rules = list(session.exec(select(RewardRule).where(RewardRule.valid_to.is_(None))
                                  .order_by(RewardRule.category_id, RewardRule.severity)).all())
        history = [*session.exec(select(RewardRule).where(RewardRule.valid_to.is_not(None))
                                 .order_by(RewardRule.valid_to.desc()).limit(50)).all(),
                   *session.exec(select(RewardPolicy).where(RewardPolicy.valid_to.is_not(None))
                                 .order_by(RewardPolicy.valid_to.desc()).limit(20)).all()]
        return RulesScreen(current_policy(session), rules,
                           list(session.exec(select(Category).order_by(Category.sort)).all()),
                           history)


# ---------------------------------------------------------------- changing


def set_rule(actor: Actor, *, category_id: int | None, severity: str | None, amount: object,
             note: str | None = None, engine: Engine | None = None,
             now: datetime | None = None) -> RewardRule:
    """An admin sets the amount for a category and severity (None: any). The rule it replaces is
    closed, not changed; claims created before keep their amount."""
    require_role(actor, Role.admin)
    fen = to_fen(amount, field="amount")
    if severity is not None and severity not in {s.value for s in Severity}:
        raise ValidationFailed("error.severity_invalid")
    now = now or utcnow()
    with write_session(engine) as session:
        if category_id is not None and session.get(Category, category_id) is None:
            raise ValidationFailed("error.category_invalid")
        for old in session.exec(select(RewardRule).where(
                RewardRule.valid_to.is_(None), _same(RewardRule.category_id, category_id),
                _same(RewardRule.severity, severity))).all():
            old.valid_to = now
            session.add(old)
        rule = RewardRule(category_id=category_id, severity=severity, amount_fen=fen,
                          valid_from=now, set_by_id=actor.id, note=(note or "").strip()[:200] or None)
        session.add(rule)
        session.flush()
        return rule


def set_policy(actor: Actor, *, street_pool: object, district_pool: object, reporter_cap: object,
               second_approval_above: object, claim_window_days: object, methods: list[str],
               engine: Engine | None = None, now: datetime | None = None) -> RewardPolicy:
    """An admin changes the policy; the old one is closed and kept."""
    require_role(actor, Role.admin)
    try:
        days = int(str(claim_window_days).strip())
    except ValueError:
        raise ValidationFailed("error.days_invalid") from None
    if not 1 <= days <= 365:
        raise ValidationFailed("error.days_invalid")
    chosen = [m for m in METHODS if m in set(methods or ())]
    if not chosen:
        raise ValidationFailed("error.methods_required")
    values = dict(street_pool_fen=to_fen(street_pool, field="street_pool", maximum=MAX_POOL_FEN),
                  district_pool_fen=to_fen(district_pool, field="district_pool",
                                           maximum=MAX_POOL_FEN),
                  reporter_cap_fen=to_fen(reporter_cap, field="reporter_cap"),
                  second_approval_above_fen=to_fen(second_approval_above,
                                                   field="second_approval_above"),
                  claim_window_days=days, methods=",".join(chosen))
    now = now or utcnow()
    with write_session(engine) as session:
        old = current_policy(session)
        old.valid_to = now
        session.add(old)
        policy = RewardPolicy(**values, valid_from=now, set_by_id=actor.id)
        session.add(policy)
        session.flush()
        return policy


def _same(column, value):  # noqa: ANN001, ANN202
    return column.is_(None) if value is None else column == value


# ---------------------------------------------------------------- defaults


def load_defaults(session: Session, path: Path = REWARDS_FILE) -> int:
    """The policy and rules from ``data/rewards.json`` where none are set yet (a value an admin
    changed stays)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    added = 0
    if session.exec(select(RewardPolicy.id)).first() is None:
        p = data["policy"]
        session.add(RewardPolicy(
            street_pool_fen=p["street_pool_yuan"] * 100, district_pool_fen=p["district_pool_yuan"] * 100,
            reporter_cap_fen=p["reporter_cap_yuan"] * 100,
            second_approval_above_fen=p["second_approval_above_yuan"] * 100,
            claim_window_days=p["claim_window_days"], methods=",".join(p["methods"])))
        added += 1
    if session.exec(select(RewardRule.id)).first() is None:
        keys = {c.key: c.id for c in session.exec(select(Category)).all()}
        for row in data["rules"]:
            session.add(RewardRule(category_id=keys[row["category"]] if row["category"] else None,
                                   severity=row["severity"], amount_fen=row["yuan"] * 100,
                                   note=row.get("note")))
            added += 1
    session.flush()
    return added
