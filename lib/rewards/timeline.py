"""A claim's timeline in words (lib.cases.timeline for claims): each event of the claim as a
catalog key, with the approver's note as typed; the case's moves behind it as the case's
timeline says them. The claim's facts (pool, amount, method) stay in the ledger's columns."""

from __future__ import annotations

from lib.cases.timeline import Line, Phrase
from lib.rewards.machine import CLAIMS
from lib.rewards.models import RewardEvent


def claim_line(event: RewardEvent) -> Line:
    return Line(event.at, Phrase(CLAIMS.labels + "action." + event.action), note=event.note)
