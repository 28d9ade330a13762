"""The login cookie carries its own issue time: changing ``COOKIE_EXPIRY_DAYS`` never revives a
cookie copied before a logout [the issue time used to be derived as exp_date − expiry days, so
lowering the setting made an old cookie look issued after the logout]."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import jwt
import pytest
from sqlmodel import select

from lib.core import config
from lib.core.db import write_session
from lib.org import auth
from lib.org.models import User
from lib.org.units import Actor
from lib.ui.login import decode_cookie, encode_cookie

KEY = "k" * 48
DAY = 86400


def _log_out(db, username: str, at: datetime) -> None:
    with write_session(db) as s:
        user = s.exec(select(User).where(User.username == username)).one()
        auth.end_sessions(s, user.id, now=at)


def _restored(db, raw: str, now: float) -> Actor | None:
    """Who the cookie logs in, as the app decides it, under today's expiry setting."""
    token = decode_cookie(raw, KEY, config.cookie_expiry_days(), now=now)
    return None if token is None else auth.restore(token["username"], token["issued_at"], db)


@pytest.mark.parametrize("lowered_days", ["6.9", "1", "0.5"])
def test_a_cookie_copied_before_a_logout_stays_refused_when_the_expiry_is_lowered(
        db, monkeypatch, lowered_days):
    """A cookie is copied at a login an hour ago (valid for 7 days); the user logs out half an
    hour ago; the admin then lowers the cookie's life. The copy still does not log in, while a
    cookie issued after the logout still does."""
    now = time.time()
    issued = datetime.fromtimestamp(now - 3600, tz=timezone.utc)
    copied = encode_cookie("street01", issued, issued.timestamp() + 7 * DAY, KEY)
    _log_out(db, "street01", datetime.fromtimestamp(now - 1800, tz=timezone.utc))
    later = datetime.fromtimestamp(now - 600, tz=timezone.utc)
    fresh = encode_cookie("street01", later, later.timestamp() + 7 * DAY, KEY)

    monkeypatch.setenv("COOKIE_EXPIRY_DAYS", "7")
    assert _restored(db, copied, now) is None
    assert _restored(db, fresh, now).username == "street01"
    monkeypatch.setenv("COOKIE_EXPIRY_DAYS", lowered_days)
    assert decode_cookie(copied, KEY, config.cookie_expiry_days(), now=now)["issued_at"] == issued
    assert _restored(db, copied, now) is None
    assert _restored(db, fresh, now).username == "street01"


def test_the_current_expiry_setting_bounds_every_cookie_and_an_old_cookie_is_logged_out():
    """A setting lowered below a cookie's age ends it at once; a cookie without an issue time
    (made before the issue time was kept) or issued in the future is not believed."""
    now = time.time()
    issued = datetime.fromtimestamp(now - 2 * DAY, tz=timezone.utc)
    raw = encode_cookie("admin", issued, issued.timestamp() + 7 * DAY, KEY)
    assert decode_cookie(raw, KEY, 7, now=now)["issued_at"] == issued
    assert decode_cookie(raw, KEY, 1, now=now) is None
    legacy = jwt.encode({"username": "admin", "exp_date": now + 5 * DAY}, KEY, algorithm="HS256")
    assert decode_cookie(legacy, KEY, 7, now=now) is None
    ahead = datetime.fromtimestamp(now + 3600, tz=timezone.utc)
    assert decode_cookie(encode_cookie("admin", ahead, now + 7 * DAY, KEY), KEY, 7, now=now) is None
    skewed = datetime.fromtimestamp(time.time() + 20, tz=timezone.utc)  # another server's clock
    assert decode_cookie(encode_cookie("admin", skewed, now + 7 * DAY, KEY), KEY, 7)["issued_at"] \
        == skewed
    assert decode_cookie(encode_cookie("admin", issued, now - 1, KEY), KEY, 7, now=now) is None
