"""Serving config, cookie key rules, tampered cookies, the catalog, and migrations."""

from __future__ import annotations

import base64
import json
import re
import time
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlmodel import Session, select

from lib.cases.models import CaseEvent
from lib.core import config
from lib.core.db import write_session
from lib.core.i18n import catalog
from lib.core.models import FACTS_MAX
from lib.core.settings import DECLARED
from lib.rewards.models import RewardEvent
from lib.ui.login import decode_cookie, encode_cookie
from tests.conftest import PG_URL, need, postgres_available, reset_postgres

ROOT = Path(__file__).resolve().parent.parent
KEY = "k" * 48


def test_streamlit_config_keeps_protections_on():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["server"]["enableCORS"] is True
    assert cfg["server"]["maxUploadSize"] <= 10
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["client"]["disableDataExport"] is True
    assert cfg["client"]["showSidebarNavigation"] is False
    assert cfg["browser"]["gatherUsageStats"] is False


@pytest.mark.parametrize("key", ["", "some_key", "short-key", "x" * 31])
def test_app_refuses_default_or_short_cookie_key(monkeypatch, key):
    monkeypatch.setenv("COOKIE_KEY", key)
    monkeypatch.setattr(config, "COOKIE_KEY_FILE", ROOT / "no-such-file")
    with pytest.raises(config.ConfigError):
        config.cookie_key()


def test_a_long_random_cookie_key_is_accepted(monkeypatch):
    monkeypatch.setenv("COOKIE_KEY", KEY)
    assert config.cookie_key() == KEY


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("token", [
    _b64({"alg": "none", "typ": "JWT"}) + "." + _b64({"username": "admin", "exp_date": 9e9}) + ".",
    jwt.encode({"username": "admin", "exp_date": 9e9}, "some_key", algorithm="HS256"),
    jwt.encode({"username": "admin", "exp_date": 9e9}, KEY, algorithm="HS512"),
    jwt.encode({"username": "admin", "exp_date": time.time() - 10}, KEY, algorithm="HS256"),
    jwt.encode({"username": 5, "exp_date": 9e9}, KEY, algorithm="HS256"),
    jwt.encode({"username": "admin", "exp_date": 9e9}, KEY, algorithm="HS256"),  # no issue time
    "garbage", "a.b.c", "", "\u202e" * 10, "x" * 10_000,
])
def test_tampered_or_expired_cookie_means_logged_out(token):
    assert decode_cookie(token, KEY, 7) is None


def test_a_good_cookie_decodes_with_its_issue_time():
    issued = datetime.now(timezone.utc) - timedelta(hours=1)
    exp = issued.timestamp() + 7 * 86400
    payload = decode_cookie(encode_cookie("admin", issued, exp, KEY), KEY, 7)
    assert payload["username"] == "admin"
    assert payload["issued_at"] == issued


def test_both_languages_have_every_key_and_the_same_placeholders():
    zh, en = catalog("zh"), catalog("en")
    assert set(zh) == set(en)
    for key in zh:
        assert set(re.findall(r"{(\w+)}", zh[key])) == set(re.findall(r"{(\w+)}", en[key])), key


def test_every_catalog_key_used_in_code_exists():
    used = set()
    for path in [ROOT / "app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("lib/**/*.py")]:
        used |= set(re.findall(r'["\']((?:error|home|guard|login|users|org|categories|sidebar|app|'
                               r'case|queue|report|track|ledger|order|timeline|time|page|deadline|kpi)'
                               r'\.[a-z_.]+[a-z])["\']', path.read_text()))
    used -= {"app.py", "app.db", "categories.json", "case.id",  # file and column names,
             "deadline.close_of_day"}  # and settings: not catalog keys
    used -= set(DECLARED)
    assert used, "no keys found"
    assert used <= set(catalog("zh")), used - set(catalog("zh"))


def test_every_state_action_and_enum_has_a_label():
    from lib.cases.ledger import COLUMNS
    from lib.cases.machine import MOVES
    from lib.cases.models import CaseState, WorkOrderState
    from lib.cases.queue import ACTION_TABS
    from lib.core.models import Rating, Severity, Source

    wanted = {f"state.{s}" for s in CaseState} | {f"public_state.{s}" for s in CaseState}
    wanted |= {f"action.{a}" for a in MOVES} | {f"note.{a}" for a in MOVES if a != "report"}
    wanted |= {f"severity.{s}" for s in Severity} | {f"source.{s}" for s in Source}
    wanted |= {f"rating.{r}" for r in Rating} | {f"order_state.{s}" for s in WorkOrderState}
    wanted |= {f"queue.tab.{t}" for t in (*ACTION_TABS, "overdue", "supervised")}
    wanted |= {f"ledger.col.{c}" for c in COLUMNS} | {"public_state.received"}
    assert wanted <= set(catalog("zh")), wanted - set(catalog("zh"))


def _alembic(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def test_migrations_on_empty_sqlite_then_no_drift(tmp_path):
    cfg = _alembic(f"sqlite:///{tmp_path / 'empty.db'}")
    command.upgrade(cfg, "head")
    command.check(cfg)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")


def test_migrations_on_empty_postgres_then_no_drift():
    need(postgres_available())
    reset_postgres(PG_URL)
    import tests.conftest as shared

    shared._pg_migrated = False  # the shared fixture must migrate again after this
    cfg = _alembic(PG_URL)
    command.upgrade(cfg, "head")
    command.check(cfg)
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(cfg).get_current_head()
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select version_num from alembic_version").scalar() == head
    engine.dispose()


# Facts as the revision before 0015 stored them: JSON text written by json.dumps, Chinese as is.
OLD_FACTS = ['{"rating": "dissatisfied"}', '{"from": "A20261201-0001", "地址": "红星路1号"}', None]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_event_facts_stored_as_text_read_back_as_dicts_after_the_upgrade(tmp_path, backend):
    """A database at 0014 with events in it: after the upgrade their facts are dicts, queried
    by key; the ledgers stay append-only; a downgrade gives the text back."""
    if backend == "postgres":
        need(postgres_available())
        reset_postgres(PG_URL)
        import tests.conftest as shared

        shared._pg_migrated = False  # the shared fixture must migrate again after this
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = _alembic(url)
    command.upgrade(cfg, "0014")
    engine = create_engine(url)
    at = "2026-12-01 08:00:00.000000"
    with engine.begin() as conn:
        if backend == "postgres":  # no parent rows: foreign keys are not under test
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for n, detail in enumerate(OLD_FACTS, start=1):
            conn.execute(text("INSERT INTO case_event (id, case_id, seq, action, at, to_state, "
                              "detail) VALUES (:n, 1, :n, 'feedback', :at, 'feedback', :d)"),
                         {"n": n, "at": at, "d": detail})
            conn.execute(text("INSERT INTO reward_event (id, claim_id, seq, action, at, to_state, "
                              "detail) VALUES (:n, 1, :n, 'open', :at, 'ineligible', :d)"),
                         {"n": n, "at": at, "d": detail})
    command.upgrade(cfg, "head")
    wanted = [json.loads(d) if d else None for d in OLD_FACTS]
    with Session(engine) as s:
        assert [e.detail for e in s.exec(select(CaseEvent).order_by(CaseEvent.id))] == wanted
        assert [e.detail for e in s.exec(select(RewardEvent).order_by(RewardEvent.id))] == wanted
        assert s.exec(select(CaseEvent.id).where(
            CaseEvent.detail["rating"].as_string() == "dissatisfied")).all() == [1]
        assert s.exec(select(RewardEvent.id).where(
            RewardEvent.detail["地址"].as_string() == "红星路1号")).all() == [2]
    for table in ("case_event", "reward_event"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET action = 'x'"))
    command.downgrade(cfg, "0014")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT detail FROM case_event ORDER BY id")).scalars().all()
    assert [json.loads(d) if d else None for d in back] == wanted
    engine.dispose()


def test_event_facts_are_a_small_dict(sqlite_db):
    """The column takes a dict of at most FACTS_MAX characters as JSON, nothing else."""
    for bad, why in (("{\"rating\": \"satisfied\"}", "are a dict, not str"),
                     ({"note": "x" * FACTS_MAX}, f"longer than {FACTS_MAX} characters")):
        with pytest.raises(StatementError, match=why), write_session(sqlite_db) as s:
            s.add(CaseEvent(case_id=1, seq=1, action="report", to_state="reported", detail=bad))
            s.flush()


def test_cli_check_config_refuses_a_short_key(monkeypatch, capsys):
    from lib.tools.cli import main

    monkeypatch.setenv("COOKIE_KEY", "too-short")
    assert main(["check-config"]) == 1
    assert "at least 32 bytes" in capsys.readouterr().err


def test_cli_check_config_refuses_trusting_every_proxy(monkeypatch, capsys):
    from lib.tools.cli import main

    monkeypatch.setenv("TRUSTED_PROXIES", "*")
    assert main(["check-config"]) == 1
    assert "TRUSTED_PROXIES" in capsys.readouterr().err
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, ::ffff:127.0.0.1")
    assert main(["check-config"]) == 0


def test_pages_refuse_to_run_with_the_library_default_key(sqlite_db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("COOKIE_KEY", "some_key")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert not at.exception
    assert "拒绝启动" in at.error[0].value
    assert not at.text_input  # no login form


def test_the_deployment_doc_shows_tls_websockets_hsts_and_frame_ancestors():
    """The README's proxy block passes the websocket upgrade, the client's address, and adds
    HSTS and frame-ancestors; the text around it says the proxy terminates TLS."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```nginx\n", 1)[1].split("```", 1)[0]
    for line in ("proxy_set_header Upgrade $http_upgrade;",
                 'proxy_set_header Connection "upgrade";',
                 "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                 'add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;',
                 "add_header Content-Security-Policy \"frame-ancestors 'self'\" always;"):
        assert line in block, line
    assert "terminates TLS" in readme and "/_stcore/stream" in readme
