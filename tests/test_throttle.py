"""One throttle for login, public intake and tracking (lib.core.throttle): attempts are counted
and checked at once, so attempts sent together meet the same limit as attempts sent one by one
[49 of 50 concurrent wrong proofs were judged against a limit of 5]; and an unknown user name
costs the same password check as a known one."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import bcrypt
import pytest
from alembic import command
from sqlalchemy import bindparam, create_engine, func, text
from sqlmodel import select
from sqlmodel.sql.sqltypes import UTCDateTime

from lib.cases.intake import Report, submit
from lib.cases.models import Case
from lib.core import settings, throttle
from lib.core.db import read_session, write_session
from lib.core.errors import DomainError, Throttled, ValidationFailed
from lib.core.migrate import alembic_config
from lib.core.models import ThrottleHit
from lib.core.settings import defaults
from lib.org import auth
from lib.org.models import User
from lib.tools import demo
from tests.conftest import PG_URL, need, postgres_available, reset_postgres
from tests.factories import COMMUNITY, category_id, unit_id

WINDOW = timedelta(minutes=10)
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
PER_PHONE = int(defaults()["intake.per_phone_per_hour"])


def _take(db, limits: dict[str, int | None], now: datetime = NOW,
          error_key: str | dict[str, str] = "error.track_throttled") -> throttle.Token:
    with write_session(db) as s:
        return throttle.take(s, "test", limits, window=WINDOW, now=now, error_key=error_key)


def _rows(db) -> int:
    with read_session(db) as s:
        return s.exec(select(func.count()).select_from(ThrottleHit)).one()


def _together(count: int, attempt: Callable[[int], None]) -> list[str]:
    """Run ``attempt(i)`` on ``count`` threads released at once (each opens its own
    transactions); the names of what they raised, or "ok"."""
    start = threading.Barrier(count)
    outcomes: list[str] = []

    def run(i: int) -> None:
        start.wait()
        try:
            attempt(i)
            outcomes.append("ok")
        except DomainError as err:
            outcomes.append(type(err).__name__)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return sorted(outcomes)


# ---------------------------------------------------------------- the module


def test_a_key_at_its_limit_is_refused_and_nothing_is_recorded(db):
    for _ in range(3):
        _take(db, {"addr:a": 3, "code:x": 10})
    before = _rows(db)
    with pytest.raises(Throttled) as err:
        _take(db, {"code:x": 10, "addr:a": 3}, now=NOW + timedelta(minutes=4))
    assert err.value.key == "error.track_throttled"
    assert err.value.params == {"minutes": 6}  # when the oldest of the three leaves the window
    assert _rows(db) == before
    # Another key is free; the refused key is free again once its hits leave the window.
    _take(db, {"addr:b": 3, "code:x": 10})
    _take(db, {"addr:a": 3}, now=NOW + WINDOW + timedelta(seconds=1))


def test_each_key_may_name_its_own_message(db):
    _take(db, {"phone:1": 1, "addr:a": 5})
    with pytest.raises(Throttled) as err:
        _take(db, {"phone:1": 1, "addr:a": 5},
              error_key={"phone:1": "error.intake_throttled_phone",
                         "addr:a": "error.intake_throttled_address"})
    assert err.value.key == "error.intake_throttled_phone"


def test_forgiven_and_reset_hits_stop_counting_and_a_none_limit_only_counts(db):
    token = _take(db, {"addr:a": 2, "user:x": None})
    with write_session(db) as s:
        throttle.forgive(s, token)
    _take(db, {"addr:a": 2, "user:x": None})
    last = _take(db, {"addr:a": 2, "user:x": None})
    assert last.before == {"addr:a": 1, "user:x": 1}  # the forgiven hits no longer count
    with pytest.raises(Throttled):
        _take(db, {"addr:a": 2})
    with write_session(db) as s:
        throttle.reset(s, "test", ["addr:a"], window=WINDOW, now=NOW)
    assert _take(db, {"addr:a": 2, "user:x": None}).before == {"addr:a": 0, "user:x": 2}


def test_the_owner_prunes_hits_older_than_the_windows_and_keeps_the_rest(db, monkeypatch):
    from lib.tools.cli import main

    _take(db, {"addr:a": 5}, now=NOW - timedelta(days=3))
    _take(db, {"addr:a": 5}, now=NOW - timedelta(days=1))
    with write_session(db) as s:
        assert throttle.prune(s, NOW - timedelta(days=2)) == 1
    assert _rows(db) == 1
    monkeypatch.setenv("MIGRATION_DATABASE_URL", db.url.render_as_string(hide_password=False))
    assert main(["prune-throttle", "--days", "0"]) == 0  # everything before now
    assert _rows(db) == 0


def test_a_key_longer_than_the_column_is_stored_as_its_digest(db):
    long = "addr:" + "x" * 500
    _take(db, {long: 1})
    with pytest.raises(Throttled):
        _take(db, {long: 1})
    _take(db, {long[:-1] + "y": 1})  # a different long key is a different key


def test_concurrent_takes_on_crossing_keys_neither_deadlock_nor_pass_the_limit(db):
    """Half the callers name the keys in one order, half in the other: the locks are taken in
    one order all the same, and each key lets exactly its limit through."""
    def attempt(i: int) -> None:
        keys = ["k:one", "k:two"] if i % 2 else ["k:two", "k:one"]
        _take(db, {key: 7 for key in keys})

    assert _together(24, attempt) == ["Throttled"] * 17 + ["ok"] * 7


# ---------------------------------------------------------------- login


def _counting_checks(monkeypatch) -> list[int]:
    """Counts bcrypt's password checks, the cost an attempt may not escape."""
    checks: list[int] = []
    real = bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        checks.append(1)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    return checks


@pytest.mark.parametrize("accounts,limit,expected", [
    ("one", "login.pair_failure_limit", 5),  # one account from one address
    ("many", "login.address_failure_limit", 20),  # any accounts from one address
])
def test_thirty_wrong_passwords_at_once_are_judged_only_up_to_the_limit(db, monkeypatch,
                                                                         accounts, limit, expected):
    """Thirty guesses sent together from one address: only as many reach the password check
    as the limit allows; the rest are refused before it [a check-then-write judged them all]."""
    assert settings.get_int(None, limit) == expected
    checks = _counting_checks(monkeypatch)

    def guess(i: int) -> None:
        name = "admin" if accounts == "one" else f"user{i:02d}"
        auth.login(db, name, f"wrong-password-{i}", "198.51.100.9", sleep=lambda _s: None)

    outcomes = _together(30, guess)
    assert len(checks) == expected
    assert outcomes == ["Throttled"] * (30 - expected) + ["ValidationFailed"] * expected


def test_a_success_clears_that_addresss_failures_for_the_account_only(db):
    now = datetime.now(timezone.utc)
    for _ in range(settings.get_int(None, "login.pair_failure_limit") - 1):
        with pytest.raises(ValidationFailed):
            auth.login(db, "admin", "bad-password", "192.0.2.40", now=now)
    assert auth.login(db, "admin", demo.DEMO_PASSWORD, "192.0.2.40", now=now)
    for _ in range(settings.get_int(None, "login.pair_failure_limit") - 1):
        with pytest.raises(ValidationFailed):
            auth.login(db, "admin", "bad-password", "192.0.2.40", now=now)
    assert auth.login(db, "admin", demo.DEMO_PASSWORD, "192.0.2.40", now=now)
    # The address's own count is not cleared by a success: 8 failures stay counted there.
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(ThrottleHit).where(
            ThrottleHit.key == "addr:192.0.2.40", ThrottleHit.counted.is_(True))).one() == 8


@pytest.mark.parametrize("unknown,password", [
    ("nobody", "whatever-password"),  # no such user
    ("ad'min--", "whatever-password"),  # a name that cannot exist
    ("inactive", "whatever-password"),  # a user who may not log in
])
def test_an_unknown_user_costs_the_same_password_check_as_a_known_one(db, monkeypatch, unknown,
                                                                       password):
    """Timing must not tell which user names exist (tests use 4 bcrypt rounds, so the checks
    are counted instead of timed): an unknown name, and a known one with a wrong password,
    each cost one bcrypt check of a hash made with the configured cost."""
    if unknown == "inactive":
        with write_session(db) as s:
            user = s.exec(select(User).where(User.username == "street01")).one()
            user.active = False
            s.add(user)
        unknown = "street01"
    checks = _counting_checks(monkeypatch)
    with pytest.raises(ValidationFailed):
        auth.login(db, "admin", "a-wrong-password", "192.0.2.60")
    known = len(checks)
    with pytest.raises(ValidationFailed):
        auth.login(db, unknown, password, "192.0.2.61")
    assert len(checks) - known == known == 1
    assert auth._dummy_hash().startswith(f"$2b${auth.config.bcrypt_rounds():02d}$")


# ---------------------------------------------------------------- intake


def test_thirty_reports_at_once_from_one_phone_store_only_its_limit(db):
    """Thirty public reports with one phone, from thirty addresses, sent together: the phone's
    hourly limit holds [on PostgreSQL a check-then-write let them through]."""
    assert PER_PHONE == 5
    category, community = category_id(db, "fire"), unit_id(db, COMMUNITY)

    def report(i: int) -> None:
        submit(db, actor=None, submit_key=uuid.uuid4().hex, client_address=f"203.0.113.{i}",
               report=Report(category_id=category, community_id=community,
                             description=f"楼道堆物第{i}处", address=f"红星路{i}号",
                             reporter_phone="13866667777"))

    outcomes = _together(30, report)
    assert outcomes == ["Throttled"] * (30 - PER_PHONE) + ["ok"] * PER_PHONE
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(Case).where(
            Case.reporter_phone == "13866667777")).one() == PER_PHONE == 5


# ---------------------------------------------------------------- the upgrade


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_upgrade_carries_recent_failures_into_the_throttle(backend, tmp_path):
    """Failures inside their window when 0014 runs still count after it: an upgrade hands no
    guesser a fresh allowance. Older failures, and failures before a success, do not."""
    if backend == "postgres":
        need(postgres_available())
        reset_postgres(PG_URL)
        import tests.conftest as shared

        shared._pg_migrated = False  # the shared fixture must migrate again after this
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0013")
    now = datetime.now(timezone.utc)
    engine = create_engine(url)
    with engine.begin() as conn:
        at = bindparam("at", type_=UTCDateTime())
        insert = text("INSERT INTO login_attempt (username, address, at, success) "
                      "VALUES (:u, :a, :at, :ok)").bindparams(at)
        for minutes, user, address, ok in [(3, "admin", "192.0.2.1", False),
                                           (2, "admin", "192.0.2.1", False),
                                           (1, "admin", "192.0.2.2", True),  # clears the account
                                           (1, "clerk", "192.0.2.1", False),
                                           (40, "admin", "192.0.2.1", False)]:  # aged out
            conn.execute(insert, {"u": user, "a": address, "ok": ok,
                                  "at": now - timedelta(minutes=minutes)})
        conn.execute(text("INSERT INTO intake_attempt (phone, address, at) VALUES (:p, :a, :at)")
                     .bindparams(at), {"p": "13800000000", "a": "192.0.2.9",
                                       "at": now - timedelta(minutes=30)})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        keys = sorted(conn.execute(text("SELECT kind, key FROM throttle_hit")).all())
    engine.dispose()
    assert keys == [("intake", "addr:192.0.2.9"), ("intake", "phone:13800000000"),
                    ("login", "addr:192.0.2.1"), ("login", "addr:192.0.2.1"),
                    ("login", "addr:192.0.2.1"), ("login", "pair:admin|192.0.2.1"),
                    ("login", "pair:admin|192.0.2.1"), ("login", "pair:clerk|192.0.2.1"),
                    ("login", "user:clerk")]
