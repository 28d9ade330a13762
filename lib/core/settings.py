"""Tunable numbers kept in the ``setting`` table, with defaults from ``data/settings.json``.

Loading the file adds missing keys only: a value an administrator changed in the database
stays. ``auto_call_up_hours.<tier>`` is the grace after a deadline before the tick calls an
overdue case up from that tier (0: off).
"""

from __future__ import annotations

import json
from functools import lru_cache

from sqlmodel import Session

from lib.core.config import ROOT
from lib.core.models import Setting
from lib.core.refcache import cached

SETTINGS_FILE = ROOT / "data" / "settings.json"


@lru_cache(maxsize=1)
def defaults() -> dict[str, str]:
    return json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))


def load_defaults(session: Session) -> int:
    added = 0
    for key, value in defaults().items():
        if session.get(Setting, key) is None:
            session.add(Setting(key=key, value=str(value)))
            added += 1
    session.flush()
    return added


def get_int(session: Session, key: str) -> int:
    def load() -> int:
        row = session.get(Setting, key)
        raw = row.value if row is not None else defaults().get(key, "0")
        try:
            return int(raw)
        except ValueError:
            return int(defaults().get(key, "0"))

    return cached(session, "setting", key, load)


def get_str(session: Session, key: str) -> str:
    def load() -> str:
        row = session.get(Setting, key)
        return row.value if row is not None else str(defaults().get(key, ""))

    return cached(session, "setting", key, load)
