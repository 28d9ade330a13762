"""All reference data in one call: the files in ``data/`` (lib.org.refdata) and the reward
rules and policy (lib.rewards.rules), missing rows only where an admin may have changed them."""

from __future__ import annotations

from sqlmodel import Session

from lib.org import refdata
from lib.rewards import rules


def load_all(session: Session) -> dict[str, int]:
    counts = refdata.load_all(session)
    counts["reward_rules"] = rules.load_defaults(session)
    return counts
