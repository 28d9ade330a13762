"""Command line: ``python -m lib COMMAND``.

migrate            apply the migrations (as MIGRATION_DATABASE_URL, else DATABASE_URL); grant the
                   app's PostgreSQL role when it is another one
grant-app-role     PostgreSQL: give --role what the app needs and no more
backup PATH        copy the database while the app runs (SQLite backup API, pg_dump)
restore PATH       load a backup into an empty database
load-reference     load data/*.json (categories, deadlines, org units) idempotently
demo               demo accounts and --cases N historical cases (--if-empty: only on an empty db)
create-user        one user with one or more roles
list-units         the org tree with codes
check-ledger       every case's state equals its last event's, and every stored derived value
                   (closure time, tier, overdue, deadlines, first commitment, resolution, place,
                   waits) what its events give
make-cookie-key    write a random cookie key to .streamlit/cookie_key.local if there is none
check-config       exit 1 with a message if the configuration is unsafe (cookie key, trusted
                   proxies) or a setting in the database is unknown, fixed or of the wrong type
tick               mark overdue cases, call up where a tier's settings say so, tell units of
                   near and missed deadlines, send due SMS notices, open and expire reward
                   claims, bring the KPI roll-ups up to date, close the assessment months that
                   are due (cron: every minute)
notices-send       send the SMS notices that are due (retries with back-off, holds SMS during
                   quiet hours); the gateway is SMS_GATEWAY=module:factory, else NOTICE_LOG
kpi-rebuild        recompute every day of the KPI roll-ups from the cases
kpi-refresh        bring the KPI roll-ups up to date (a rebuild the first time)
kpi-close          close the assessment months due (kpi.close_after_workdays working days after
                   their end); --month YYYY-MM closes that month and those before it now
bench              build or reuse a demo database of --cases N and print timings as JSON
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import secrets
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

from sqlalchemy import func, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import select

from lib.cases import integrity, outbox
from lib.cases.detail import ledger_mismatches
from lib.cases.models import Case
from lib.cases.tick import run_tick
from lib.core import config, netaddr, settings, throttle
from lib.core.db import checkpoint, get_engine, read_session, write_session
from lib.core.errors import DomainError
from lib.core.i18n import t
from lib.kpi import months, rollup
from lib.org import auth
from lib.org.units import all_units, find_unit
from lib.rewards import eligibility
from lib.rewards import figures as reward_figures
from lib.rewards.models import ClaimState
from lib.tools import backup, demo, demo_rewards, reference
from lib.tools.progress import progress_bar


def import_on_first_use(name: str) -> ModuleType:
    """Module ``name``, run only when one of its names is first read (importlib's LazyLoader),
    so that a command pays only for the modules it uses."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


# Imported by the commands that use them and by no other: the benchmark brings Streamlit (its
# AppTest renders pages) and openpyxl, migrations bring Alembic. Importing them up front made
# every command, the per-minute ``tick`` included, start twice as slowly (7 of 14 s under load).
# tests/test_architecture.py reads these lines as imports; tests/test_cli.py checks that
# ``tick``, ``migrate`` and ``check-config`` run without Streamlit.
bench = import_on_first_use("lib.tools.bench")
migrations = import_on_first_use("lib.core.migrate")


def cmd_demo(args: argparse.Namespace) -> int:
    engine = get_engine()
    with write_session(engine) as session:
        reference.load_all(session)
        created = demo.ensure_accounts(session)
    print(f"demo accounts created: {created} (password: {demo.DEMO_PASSWORD})")
    with read_session(engine) as session:
        existing = session.exec(select(func.count()).select_from(Case)).one()
    if args.if_empty and existing:
        print(f"database already holds {existing:,} cases; no history generated")
        return 0
    started = time.monotonic()
    with write_session(engine) as session:
        made = demo.generate_cases(session, args.cases, seed=args.seed,
                                   progress=lambda d, n: progress_bar(d, n, started))
    with write_session(engine) as session:
        claims = demo_rewards.generate_claims(session, seed=args.seed)
    rollup.rebuild(engine)
    checkpoint(engine)
    print(f"generated {made['cases']:,} cases and {made['events']:,} events, "
          f"{claims['claims']:,} reward claims ({claims[ClaimState.paid]:,} paid) "
          f"in {time.monotonic() - started:.1f} s")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    with write_session() as session:
        unit = find_unit(session, args.unit)
        auth.bootstrap_user(session, username=args.username,
                            display_name=args.display_name or args.username,
                            password=args.password, unit=unit, roles=args.role, phone=args.phone)
    print(f"created {args.username.strip().lower()} at {unit.name_zh} ({unit.code})")
    return 0


def cmd_list_units(_args: argparse.Namespace) -> int:
    with read_session() as session:
        for unit in all_units(session):
            depth = unit.path.strip("/").count("/")
            extra = f" [{unit.dept_type}]" if unit.dept_type else ""
            print(f"{'  ' * depth}{unit.code}  {unit.name_zh} / {unit.name_en}  ({unit.kind}){extra}")
    return 0


def cmd_check_ledger(_args: argparse.Namespace) -> int:
    with read_session() as session:
        bad = ledger_mismatches(session)
        derived = integrity.derived_mismatches(session)
        rewards = reward_figures.ledger_problems(session)
    if bad:
        print(f"cases whose state differs from their events: {bad}")
    for value in (*integrity.VALUES, "events"):
        if value in derived.counts:
            print(f"cases whose stored {value} differs from their events: "
                  f"{derived.counts[value]:,} ({', '.join(derived.codes[value])}"
                  f"{' …' if derived.counts[value] > len(derived.codes[value]) else ''})")
    for problem in rewards:
        print(f"rewards: {problem}")
    if bad or derived or rewards:
        return 1
    print(f"ledger consistent: cases ({derived.checked:,}, every stored derived value as its "
          "events give it), claims, pools and payouts")
    return 0


def cmd_make_cookie_key(_args: argparse.Namespace) -> int:
    path = config.COOKIE_KEY_FILE
    if path.exists() and path.read_text(encoding="utf-8").strip():
        print(f"cookie key kept: {path}")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    path.chmod(0o600)
    print(f"cookie key written: {path}")
    return 0


def cmd_check_config(_args: argparse.Namespace) -> int:
    """Refuse to start with a missing, published or short cookie key, trusted proxies that are
    not addresses or networks, or rows of the ``setting`` table that the declarations refuse
    (an unknown key, a key the database may not override, a value of the wrong type)."""
    try:
        config.cookie_key()
        netaddr.trusted_proxies()
    except config.ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 1
    problems = _setting_problems()
    for problem in problems:
        print(f"configuration error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("configuration ok")
    return 0


def _setting_problems() -> list[str]:
    """What the declarations refuse in the database's ``setting`` rows; nothing (with a note)
    when there is no database yet or it is not migrated: ``migrate`` comes first."""
    url = config.database_url()
    if url.startswith("sqlite") and not Path(make_url(url).database or "").exists():
        print(f"settings in the database not checked: no database yet ({url})", file=sys.stderr)
        return []
    try:
        with read_session() as session:
            return settings.problems(session)
    except (OperationalError, ProgrammingError) as err:
        print(f"settings in the database not checked: {type(err.orig).__name__}: "
              f"{str(err.orig).strip()[:200]}", file=sys.stderr)
        return []


def cmd_load_reference(_args: argparse.Namespace) -> int:
    with write_session() as session:
        counts = reference.load_all(session)
    print("reference data loaded: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    migrations.migrate()
    role = migrations.app_role_to_grant()
    if role:
        migrations.grant_app_role(config.migration_url(), role)
        print(f"migrated; privileges of {role} granted")
    else:
        print("migrated")
    return 0


def cmd_prune_throttle(args: argparse.Namespace) -> int:
    """Delete throttle hits older than the longest window, as the tables' owner (cron, daily)."""
    before = datetime.now(timezone.utc) - timedelta(days=args.days)
    with write_session(get_engine(config.migration_url())) as session:
        print(f"throttle hits deleted: {throttle.prune(session, before)}")
    return 0


def cmd_grant_app_role(args: argparse.Namespace) -> int:
    migrations.grant_app_role(config.migration_url(), args.role)
    print(f"privileges of {args.role} granted")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    print(f"backup written: {backup.backup(Path(args.path))}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    backup.restore(Path(args.path))
    print("restored")
    return 0


def cmd_tick(_args: argparse.Namespace) -> int:
    print(json.dumps({**run_tick(), **outbox.send_due(), **eligibility.run(), **rollup.refresh(),
                      **months.close_due()}))
    return 0


def cmd_notices_send(args: argparse.Namespace) -> int:
    print(json.dumps(outbox.send_due(limit=args.limit)))
    return 0


def cmd_kpi_rebuild(_args: argparse.Namespace) -> int:
    started = time.monotonic()
    days = rollup.rebuild()
    print(f"KPI roll-ups rebuilt: {days:,} days in {time.monotonic() - started:.1f} s")
    return 0


def cmd_kpi_refresh(_args: argparse.Namespace) -> int:
    print(json.dumps(rollup.refresh()))
    return 0


def cmd_kpi_close(args: argparse.Namespace) -> int:
    result = months.close_until(None, args.month) if args.month else months.close_due()
    print(json.dumps(result))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    result = bench.run(args.cases, args.db, url=args.url, writers=args.writers,
                       per_writer=args.per_writer, only=args.only)
    print(json.dumps(result, ensure_ascii=False))
    if args.only == "kpi":
        return 0
    return 0 if result.get("intake_lost") == 0 and result.get("intake_saturated_lost") == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate").set_defaults(func=cmd_migrate)
    p = sub.add_parser("grant-app-role", help="PostgreSQL: what the app's role may do")
    p.add_argument("--role", required=True)
    p.set_defaults(func=cmd_grant_app_role)
    p = sub.add_parser("backup", help="copy the database to PATH while the app runs")
    p.add_argument("path")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="load the backup at PATH into an empty database")
    p.add_argument("path")
    p.set_defaults(func=cmd_restore)
    sub.add_parser("load-reference").set_defaults(func=cmd_load_reference)
    p = sub.add_parser("demo")
    p.add_argument("--cases", type=int, default=3000)
    p.add_argument("--seed", type=int, default=2019)
    p.add_argument("--if-empty", action="store_true", help="generate history only if there is none")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("create-user")
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--unit", required=True, help="unit code or name")
    p.add_argument("--role", action="append", required=True, choices=auth.ALL_ROLES)
    p.add_argument("--display-name")
    p.add_argument("--phone")
    p.set_defaults(func=cmd_create_user)
    sub.add_parser("list-units").set_defaults(func=cmd_list_units)
    sub.add_parser("check-ledger").set_defaults(func=cmd_check_ledger)
    sub.add_parser("make-cookie-key").set_defaults(func=cmd_make_cookie_key)
    sub.add_parser("check-config").set_defaults(func=cmd_check_config)
    p = sub.add_parser("prune-throttle", help="delete old throttle hits (as the tables' owner)")
    p.add_argument("--days", type=float, default=2.0)
    p.set_defaults(func=cmd_prune_throttle)
    sub.add_parser("tick").set_defaults(func=cmd_tick)
    p = sub.add_parser("notices-send", help="send the SMS notices that are due")
    p.add_argument("--limit", type=int, default=200, help="at most this many in one run")
    p.set_defaults(func=cmd_notices_send)
    sub.add_parser("kpi-rebuild").set_defaults(func=cmd_kpi_rebuild)
    sub.add_parser("kpi-refresh").set_defaults(func=cmd_kpi_refresh)
    p = sub.add_parser("kpi-close", help="close the assessment months that are due")
    p.add_argument("--month", help="close this month (YYYY-MM) and the ones before it now")
    p.set_defaults(func=cmd_kpi_close)
    p = sub.add_parser("bench")
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--url", help="database URL (default: data/bench-N.db or database bench_N)")
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--per-writer", type=int, default=50)
    p.add_argument("--only", choices=["kpi", "pages"],
                   help="kpi: only the assessment pages and report; pages: only the queue, case, "
                        "home and rewards pages")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DomainError as err:
        print(t(err.key, "en", **err.params), file=sys.stderr)
        return 2
    except backup.BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
