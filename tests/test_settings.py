"""Settings are declared once (lib/core/settings.py): an unknown key raises, a value of the wrong
type is refused with a message naming it, the database overrides only what it may, and
``check-config`` names every row the declarations refuse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import select

from lib.core import refcache, settings
from lib.core.db import read_session, write_session
from lib.core.errors import Throttled, ValidationFailed
from lib.core.models import Setting
from lib.org import auth
from lib.tools import demo
from lib.tools.cli import main

LIB = Path(__file__).resolve().parent.parent / "lib"


def _row(engine, key: str, value: str) -> None:
    """A row written behind the declarations' back, as SQL or an old release could."""
    with write_session(engine) as s:
        row = s.get(Setting, key) or Setting(key=key, value="")
        row.value = value
        s.add(row)
    refcache.clear()


def test_an_unknown_key_raises_a_clear_error(db):
    with pytest.raises(settings.SettingError, match="unknown setting 'intake.per_phone'"):
        settings.get_int(None, "intake.per_phone")
    with read_session(db) as s, pytest.raises(settings.SettingError, match="unknown setting"):
        settings.get_int(s, "intake.per_phone")
    with pytest.raises(settings.SettingError, match="unknown setting"):
        with settings.overriding({"login.pair_limit": 3}):
            pass


def test_a_key_is_read_only_as_its_declared_type(db):
    with read_session(db) as s:
        assert settings.get_float(s, "kpi.weight_resolution") == 0.5
        with pytest.raises(settings.SettingError, match="kpi.weight_resolution is a decimal number"):
            settings.get_int(s, "kpi.weight_resolution")
    with pytest.raises(settings.SettingError, match="read it with a session"):
        settings.get_int(None, "intake.per_phone_per_hour")  # the database may override it


def test_every_key_the_code_reads_is_declared():
    read = set()
    for path in LIB.rglob("*.py"):
        read |= set(re.findall(r'get_(?:int|float|str)\([^,()]+, "([a-z_.]+)"\)', path.read_text()))
    assert read, "no settings read?"
    assert read <= set(settings.DECLARED), read - set(settings.DECLARED)


def test_a_value_of_the_wrong_type_is_refused_with_a_message_naming_it(db):
    with write_session(db) as s:
        with pytest.raises(settings.SettingError) as err:
            settings.store(s, "intake.per_phone_per_hour", "five")
        assert str(err.value) == "setting intake.per_phone_per_hour: 'five' is not a whole number"
        with pytest.raises(settings.SettingError, match='a time of day, "HH:MM"'):
            settings.store(s, "deadline.close_of_day", "25:00")
        with pytest.raises(settings.SettingError, match="is not a decimal number"):
            settings.store(s, "kpi.weight_response", "a tenth")
        settings.store(s, "intake.per_phone_per_hour", 7)
    refcache.clear()
    with read_session(db) as s:
        assert settings.get_int(s, "intake.per_phone_per_hour") == 7
    # A bad row written behind lib's back is ignored: the declared default applies.
    _row(db, "intake.per_phone_per_hour", "lots")
    with read_session(db) as s:
        assert settings.get_int(s, "intake.per_phone_per_hour") == 5


def test_the_database_may_not_override_a_throttle_on_guessing(db):
    """Whoever can write the ``setting`` table (the app's own role can) must not be able to
    switch the login throttle off: such a row is refused by lib and ignored if written."""
    with write_session(db) as s, pytest.raises(settings.SettingError, match="fixed by the release"):
        settings.store(s, "login.pair_failure_limit", 1000)
    _row(db, "login.pair_failure_limit", "1000")
    with read_session(db) as s:
        assert settings.get_int(s, "login.pair_failure_limit") == 5
    for i in range(5):
        with pytest.raises(ValidationFailed):
            auth.login(db, "admin", f"bad-password-{i}", "198.51.100.77")
    with pytest.raises(Throttled):
        auth.login(db, "admin", demo.DEMO_PASSWORD, "198.51.100.77")


def test_only_keys_the_database_may_override_get_rows(db):
    with read_session(db) as s:
        keys = set(s.exec(select(Setting.key)).all())
    assert keys == {k for k, spec in settings.DECLARED.items() if spec.database}
    assert "login.pair_failure_limit" not in keys and "intake.per_phone_per_hour" in keys


def test_a_lowered_login_limit_takes_effect(db):
    with settings.overriding({"login.pair_failure_limit": 2}):
        for i in range(2):
            with pytest.raises(ValidationFailed):
                auth.login(db, "admin", f"bad-password-{i}", "198.51.100.78")
        with pytest.raises(Throttled):
            auth.login(db, "admin", demo.DEMO_PASSWORD, "198.51.100.78")
    assert settings.get_int(None, "login.pair_failure_limit") == 5  # the block ended


def test_check_config_names_every_row_the_declarations_refuse(sqlite_db, capsys):
    assert main(["check-config"]) == 0
    _row(sqlite_db, "login.address_failure_limit", "100000")
    _row(sqlite_db, "kpi.list_size", "five")
    _row(sqlite_db, "intake.per_phone", "9")
    assert main(["check-config"]) == 1
    err = capsys.readouterr().err
    assert "setting intake.per_phone: unknown; the row is ignored" in err
    assert "setting kpi.list_size: 'five' is not a whole number; the default 5 applies" in err
    assert "setting login.address_failure_limit: fixed by the release" in err
