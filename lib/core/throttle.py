"""Throttles: one module for every limit on attempts (login, public intake, tracking proofs,
SMS codes), counting and checking in one step.

A hit is a row of ``throttle_hit`` (kind, key, time). ``take`` runs inside the caller's write
transaction: it waits for every other ``take`` on the same keys, counts the hits still in the
window, refuses if a key is at its limit (recording nothing), else records one hit per key.
Counting and recording under one lock is what makes a limit hold under concurrency: a
check-then-write let 49 of 50 simultaneous wrong proofs through a limit of 5.

Serialising: on PostgreSQL a transaction-scoped advisory lock per kind and key, taken in one
global order so that two callers never wait for each other in a cycle; on SQLite the write
transaction began with ``BEGIN IMMEDIATE`` (lib.core.db.write_session), so writers already run
one at a time. ``take`` must therefore run in a write transaction, under READ COMMITTED on
PostgreSQL (the default), so that the count sees what the previous lock holder committed.

Hits decay by themselves: only those younger than the window count. A successful attempt
``forgive``s its own hits, and ``reset`` stops the earlier hits of a key counting (a login's
success clears the failures of that account from that address). Rows are never deleted by the
app, whose database role has no DELETE.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlmodel import Session

from lib.core.clock import as_utc
from lib.core.errors import Throttled
from lib.core.models import ThrottleHit

KEY_MAX = 128  # the column's length; a longer key is stored as its digest, never truncated

_LOCK = text("SELECT pg_advisory_xact_lock(:id)")


@dataclass(frozen=True)
class Token:
    """What one ``take`` recorded: the ids of its hits, and for each key the number of hits
    that counted before it (the login's slowdown reads the account's)."""

    ids: tuple[int, ...]
    before: Mapping[str, int]


def _stored_key(key: str) -> str:
    if len(key) <= KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _lock_id(kind: str, key: str) -> int:
    """A signed 64-bit number for the advisory lock of one kind and key."""
    digest = hashlib.blake2b(f"{kind}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _serialise(session: Session, kind: str, keys: Iterable[str]) -> None:
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already serialises every writer
    for lock_id in sorted({_lock_id(kind, key) for key in keys}):
        connection.execute(_LOCK, {"id": lock_id})


# Built once: an intake's throttle is on every public report's path.
_COUNTS = (
    select(ThrottleHit.key, func.count())
    .where(ThrottleHit.kind == bindparam("kind"),
           ThrottleHit.key.in_(bindparam("keys", expanding=True)),
           ThrottleHit.counted.is_(True),
           ThrottleHit.at > bindparam("since", type_=ThrottleHit.__table__.c.at.type))
    .group_by(ThrottleHit.key))
_INSERT = insert(ThrottleHit).returning(ThrottleHit.id)


def _counts(session: Session, kind: str, keys: list[str], since: datetime) -> dict[str, int]:
    found = dict(session.connection().execute(
        _COUNTS, {"kind": kind, "keys": keys, "since": since}).tuples().all())
    return {key: found.get(key, 0) for key in keys}


def _minutes_left(session: Session, kind: str, key: str, limit: int, window: timedelta,
                  now: datetime) -> int:
    """Minutes until the key is free again: when its limit-th newest hit leaves the window."""
    hits = session.connection().execute(
        select(ThrottleHit.at)
        .where(ThrottleHit.kind == kind, ThrottleHit.key == key, ThrottleHit.counted.is_(True),
               ThrottleHit.at > now - window)
        .order_by(ThrottleHit.at.desc()).limit(limit)).scalars().all()
    if len(hits) < limit:
        return max(1, math.ceil(window.total_seconds() / 60))
    free_at = as_utc(hits[-1]) + window
    return max(1, math.ceil((free_at - now).total_seconds() / 60))


def take(session: Session, kind: str, limits: Mapping[str, int | None], *, window: timedelta,
         now: datetime, error_key: str | Mapping[str, str]) -> Token:
    """Count and check at once, inside the caller's write transaction: for each key -> limit
    (checked in the mapping's order), if the key already has ``limit`` counted hits of this kind
    within ``window`` before ``now``, raise ``Throttled(error_key, minutes=…)`` and record
    nothing; else record one hit for every key and return a token. A limit of None counts the
    key without ever refusing it. ``error_key`` may name one message per key.

    Concurrent callers on the same key are serialised, so N concurrent calls against a limit L
    let through at most L."""
    stored = {key: _stored_key(key) for key in limits}
    keys = list(dict.fromkeys(stored.values()))
    _serialise(session, kind, keys)
    since = now - window
    counts = _counts(session, kind, keys, since)
    for key, limit in limits.items():
        if limit is not None and counts[stored[key]] >= limit:
            message = error_key if isinstance(error_key, str) else error_key[key]
            raise Throttled(message, minutes=_minutes_left(session, kind, stored[key], limit,
                                                           window, now))
    connection = session.connection()
    ids = tuple(connection.execute(_INSERT, {"kind": kind, "key": key, "at": now,
                                             "counted": True}).scalar_one() for key in keys)
    return Token(ids=ids, before={key: counts[stored[key]] for key in limits})


def forgive(session: Session, token: Token) -> None:
    """The hits of ``token`` stop counting (the attempt succeeded). Inside a write transaction
    (the same one as ``take``, or a later one)."""
    if token.ids:
        session.connection().execute(
            update(ThrottleHit).where(ThrottleHit.id.in_(token.ids)).values(counted=False))


def reset(session: Session, kind: str, keys: Iterable[str], *, window: timedelta,
          now: datetime) -> None:
    """Every hit of these keys so far stops counting (a success that clears earlier failures).
    Inside a write transaction."""
    stored = [_stored_key(key) for key in keys]
    if stored:
        session.connection().execute(
            update(ThrottleHit)
            .where(ThrottleHit.kind == kind, ThrottleHit.key.in_(stored),
                   ThrottleHit.counted.is_(True), ThrottleHit.at > now - window)
            .values(counted=False))


def prune(session: Session, before: datetime) -> int:
    """Delete the hits recorded before ``before`` (older than every window); how many. The app's
    role may not delete: the owner runs it (``python -m lib prune-throttle``)."""
    return session.connection().execute(
        delete(ThrottleHit).where(ThrottleHit.at < before)).rowcount or 0
