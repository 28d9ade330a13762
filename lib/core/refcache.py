"""A short-lived, per-process cache of reference rows that every intake reads (categories,
communities' places, deadline rules, settings): they change rarely, and re-reading them cost
more than half of a report's write time. Entries live ``TTL`` seconds; ``clear()`` drops all
(reference loading and the admin pages call it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session

TTL = 30.0
T = TypeVar("T")
_entries: dict[tuple, tuple[float, object]] = {}
_lock = threading.Lock()


def cached(session: Session, kind: str, key: object, load: Callable[[], T]) -> T:
    """``load()`` once per TTL for (database, kind, key). Values must be plain data."""
    full_key = (str(session.get_bind().url), kind, key)
    now = time.monotonic()
    with _lock:
        hit = _entries.get(full_key)
    if hit is not None and now - hit[0] < TTL:
        return hit[1]  # type: ignore[return-value]
    value = load()
    with _lock:
        _entries[full_key] = (now, value)
    return value


def clear() -> None:
    with _lock:
        _entries.clear()
