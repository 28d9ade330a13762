"""The benchmark behind ``make bench``: build (or reuse) a demo database of N cases, then time
what users wait for. Prints one JSON object so that runs can be compared over time.

Figures: the queue page's first screen and the case page, rendered by Streamlit's AppTest as a
community user whose community has ``HOT_OPEN`` open cases; the same reads in lib alone;
public intake latency with concurrent writers (and how many reports were lost: must be 0); the
home-page counts of a district user; one tick; the assessment pages of the district leader
(each against its floor: the same page drawing the same charts from data already in memory)
and the district's monthly Excel report; closing the last complete assessment month.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, delete, func, text
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from lib.cases import detail, intake, ledger
from lib.cases.models import Case
from lib.cases.queue import queue_rows, tab_counts, waiting_counts
from lib.cases.states import OPEN
from lib.cases.tick import TICK_JOB, run_tick
from lib.core import config, jobs
from lib.core.db import get_engine, read_session, write_session
from lib.core.migrate import migrate
from lib.core.models import Category
from lib.kpi import behind, figures, months, rankings, report, rollup, views
from lib.kpi.models import KpiMonth, KpiMonthUnit
from lib.org.auth import actor_by_username
from lib.org.models import Unit
from lib.rewards import approval
from lib.tools import demo, demo_rewards, reference
from lib.tools.progress import progress_bar

HOT_COMMUNITY = "510104001001"  # community01's community
HOT_USER = "community01"
HOT_OPEN = 10_000
HOT_CLAIMS = 10_000  # claims waiting for the street's approver
HOT_APPROVER = "street_approver"
KPI_USER = "district_leader"
KPI_PAGES = ["overview", "rankings", "satisfaction", "closure", "flow", "map", "monitoring",
             "report"]
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def database_url(db: str, cases_wanted: int, url: str | None = None) -> str:
    if url:
        return url
    if db == "sqlite":
        return f"sqlite:///{config.ROOT / 'data' / f'bench-{cases_wanted}.db'}"
    name = f"bench_{cases_wanted}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG_SERVER}/{name}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(url: str, cases_wanted: int, seed: int = 2019) -> dict[str, float]:
    """Migrate, load reference data and accounts, fill up to N cases with a hot community."""
    migrate(url)
    engine = get_engine(url)
    with write_session(engine) as session:
        reference.load_all(session)
        demo.ensure_accounts(session)
        existing = session.exec(select(func.count()).select_from(Case)).one()
        hot = session.exec(select(Unit).where(Unit.code == HOT_COMMUNITY)).one()
        hot_open = session.exec(select(func.count()).select_from(Case).where(
            Case.community_id == hot.id, Case.state.in_(sorted(OPEN)))).one()
    timings: dict[str, float] = {}
    started = time.monotonic()
    # First the community with a long queue (only on big runs), then the rest up to N.
    round_no = 0
    while cases_wanted >= HOT_OPEN * 5 and hot_open < HOT_OPEN and round_no < 5:
        top_up = int((HOT_OPEN - hot_open) * 1.1) + 10
        _log(f"adding {top_up:,} open cases to {HOT_COMMUNITY}")
        with write_session(engine) as session:
            demo.generate_cases(session, top_up, seed=seed + 1 + round_no, days=20,
                                community_code=HOT_COMMUNITY, force_open=True,
                                progress=lambda d, n: progress_bar(d, n, started))
            hot_open = session.exec(select(func.count()).select_from(Case).where(
                Case.community_id == hot.id, Case.state.in_(sorted(OPEN)))).one()
        round_no += 1
    with read_session(engine) as session:
        existing = session.exec(select(func.count()).select_from(Case)).one()
    general = max(0, cases_wanted - existing)
    if general:
        _log(f"generating {general:,} cases")
        with write_session(engine) as session:
            demo.generate_cases(session, general, seed=seed,
                                progress=lambda d, n: progress_bar(d, n, started))
    if cases_wanted >= HOT_CLAIMS * 5:
        with write_session(engine) as session:
            street_id = session.exec(select(Unit.parent_id).where(Unit.code == HOT_COMMUNITY)).one()
            added = demo_rewards.bulk_pending(session, street_id, HOT_CLAIMS)
        if added:
            _log(f"added {added:,} reward claims waiting for approval")
    if time.monotonic() - started > 1:
        timings["generate_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    if rollup.computed_at(engine) is None:
        _log("building the KPI roll-ups")
        rollup.rebuild(engine)
        timings["kpi_rebuild_s"] = round(time.monotonic() - started, 1)
    else:
        rollup.refresh(engine)
    if engine.dialect.name == "postgresql":
        # Tidy and fresh statistics, as autovacuum would give a live database after a
        # migration rewrote rows or a bulk load added them.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return timings


def _median_ms(fn, runs: int) -> float:  # noqa: ANN001
    fn()  # warm-up: imports, caches, connection pool
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def _apptest(url: str, username: str) -> AppTest:
    os.environ["DATABASE_URL"] = url
    at = AppTest.from_file(str(config.ROOT / "app.py"), default_timeout=120)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["auth_login_at"] = datetime.now(timezone.utc)
    return at.run()


def page_timings(url: str, runs: int = 5) -> dict[str, float]:
    engine = get_engine(url)
    with read_session(engine) as session:
        actor = actor_by_username(session, HOT_USER)
        district = actor_by_username(session, "district01")
        open_cases = session.exec(select(func.count()).select_from(Case).where(
            Case.community_id == actor.unit_id, Case.state.in_(sorted(OPEN)))).one()
        # The case with the longest timeline among the community's open cases.
        busy = session.exec(select(Case.id).where(Case.community_id == actor.unit_id,
                                                  Case.state.in_(sorted(OPEN)))
                            .order_by(Case.version.desc()).limit(1)).first()
    at = _apptest(url, HOT_USER)
    if at.exception:
        raise RuntimeError(f"home page failed: {at.exception}")

    def queue_page() -> None:
        at.switch_page("pages/queue.py").run()
        if at.exception:
            raise RuntimeError(f"queue page failed: {at.exception}")

    def case_page() -> None:
        at.session_state["case_id"] = busy
        at.switch_page("pages/case.py").run()
        if at.exception:
            raise RuntimeError(f"case page failed: {at.exception}")

    def queue_lib() -> None:
        with read_session(engine) as session:
            tab_counts(session, actor)
            queue_rows(session, actor, "triage")

    def case_lib() -> None:
        detail.case_detail(actor, busy, engine=engine)

    def home_district() -> None:
        with read_session(engine) as session:
            waiting_counts(session, district)

    approver_page = _apptest(url, HOT_APPROVER)

    def rewards_page() -> None:
        approver_page.switch_page("pages/rewards.py").run()
        if approver_page.exception:
            raise RuntimeError(f"rewards page failed: {approver_page.exception}")

    with read_session(engine) as session:
        approver = actor_by_username(session, HOT_APPROVER)
    pending = approval.waiting_count(approver, engine=engine)

    return {
        "hot_community_open_cases": open_cases,
        "queue_first_screen_ms": _median_ms(queue_page, runs),
        "case_page_ms": _median_ms(case_page, runs),
        "queue_lib_ms": _median_ms(queue_lib, runs),
        "case_lib_ms": _median_ms(case_lib, runs),
        "home_counts_district_ms": _median_ms(home_district, runs),
        "rewards_waiting_claims": pending,
        "rewards_queue_ms": _median_ms(rewards_page, runs),
    }


def intake_timings(url: str, writers: int = 8, per_writer: int = 50, interval_ms: float = 0,
                   prefix: str = "intake") -> dict[str, float]:
    """``writers`` threads, each submitting ``per_writer`` public reports: one every
    ``interval_ms`` (with jitter), or back to back when 0 (saturation)."""
    engine = get_engine(url)
    with read_session(engine) as session:
        category = session.exec(select(Category).where(Category.key == "fire")).one()
        community = session.exec(select(Unit).where(Unit.code == HOT_COMMUNITY)).one()
    run_id = uuid.uuid4().hex[:12]
    run_no = int(run_id[:6], 16) % 1000  # phones differ per run: the per-phone limit stays real
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(writers)

    def writer(index: int) -> None:
        rng = random.Random(index)
        barrier.wait()
        begin = time.perf_counter()
        for n in range(per_writer):
            if interval_ms:
                slot = begin + (n + rng.random()) * interval_ms / 1000
                time.sleep(max(0.0, slot - time.perf_counter()))
            report = intake.Report(category_id=category.id, community_id=community.id,
                                  description=f"基准测试上报 {run_id} {index}-{n}",
                                  address=f"基准路{index}号",
                                  reporter_phone=f"19{run_no:03d}{index % 10}{n:05d}")
            started = time.perf_counter()
            try:
                intake.submit(engine, actor=None, report=report,
                             submit_key=f"bench-{run_id}-{index}-{n}",
                             client_address=f"bench-{run_id}-{index}-{n}")
            except Exception as err:  # counted and reported, never hidden
                with lock:
                    errors.append(f"{type(err).__name__}: {err}")
                continue
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with read_session(engine) as session:
        stored = session.exec(select(func.count()).select_from(Case).where(
            Case.submit_key.like(f"bench-{run_id}-%"))).one()
    latencies.sort()
    expected = writers * per_writer
    figures = {
        "writers": writers,
        "reports": expected,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1) if latencies else None,
        "per_s": round(len(latencies) / elapsed, 1),
        "errors": len(errors),
        "lost": expected - stored,
    }
    if errors:
        figures["first_error"] = errors[0]
    return {f"{prefix}_{k}": v for k, v in figures.items()}


@contextmanager
def _patched(module: object, **values: object) -> Iterator[None]:
    saved = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def kpi_timings(url: str, runs: int = 5) -> dict[str, object]:
    """The district leader's assessment pages, rendered by AppTest, and their floors: the same
    page files with lib's reads replaced by data fetched beforehand, so that the difference is
    what the database costs; each page timed next to its floor. The monthly report: building the
    district's Excel workbook. ``kpi_refresh_ms``: one refresh of the roll-ups, the tick's work
    each minute; it runs before each page's runs, as the tick keeps the figures fresh (a page
    finding them stale would refresh on a thread beside it)."""
    engine = get_engine(url)
    with read_session(engine) as session:
        leader = actor_by_username(session, KPI_USER)
    started = time.perf_counter()
    rollup.refresh(engine)
    out: dict[str, object] = {"kpi_refresh_ms": round((time.perf_counter() - started) * 1000, 1)}
    at = _apptest(url, KPI_USER)
    if at.exception:
        raise RuntimeError(f"home page failed: {at.exception}")

    def page(name: str) -> Callable[[], None]:
        def run() -> None:
            at.switch_page(f"pages/kpi_{name}.py").run()
            if at.exception or at.error:
                raise RuntimeError(f"kpi_{name} failed: {at.exception or at.error[0].value}")
        return run

    def timed(fn: Callable[[], object]) -> float:
        rollup.refresh(engine)
        return _median_ms(fn, runs)

    options = views.options(leader, engine)
    as_of = views.refresh_if_stale(engine)
    query = views.Query(label=options.current, unit_id=leader.unit_id)
    overview = views.overview(leader, query, engine)
    ranked = {level: rankings.rankings(leader, query, level, engine)
              for level in ("street", "community", "department")}
    out["kpi_overview_ms"] = timed(page("overview"))
    with _patched(views, options=lambda *a, **k: options, refresh_if_stale=lambda *a, **k: as_of,
                  overview=lambda *a, **k: overview):
        out["kpi_overview_floor_ms"] = timed(page("overview"))
    out["kpi_rankings_ms"] = timed(page("rankings"))
    with _patched(views, options=lambda *a, **k: options, refresh_if_stale=lambda *a, **k: as_of), \
            _patched(rankings, rankings=lambda actor, q, level=None, engine=None:
                     ranked[level or "street"]):
        out["kpi_rankings_floor_ms"] = timed(page("rankings"))
    for name in KPI_PAGES:
        if name not in ("overview", "rankings"):
            out[f"kpi_{name}{'_page' if name == 'report' else ''}_ms"] = timed(page(name))
    out["kpi_report_ms"] = timed(
        lambda: report.report_file(leader, views.Query(), "zh", engine=engine))
    out["kpi_glance_ms"] = timed(lambda: rankings.glance(leader, engine=engine))
    for name in ("overview", "rankings"):
        out[f"kpi_{name}_vs_floor"] = round(out[f"kpi_{name}_ms"] / out[f"kpi_{name}_floor_ms"], 2)
    return out


def close_timing(url: str) -> dict[str, object]:
    """Closing the last complete assessment month (结账): storing every unit's and category's
    counters, quantiles and extras from the roll-ups brought up to date just before. The bench
    database's earlier close of that month is removed first, so that each run closes it whole."""
    engine = get_engine(url)
    with read_session(engine) as session:
        period = figures.default_period(figures.month_start_day(session))
    with write_session(engine) as session:
        session.exec(delete(KpiMonthUnit).where(KpiMonthUnit.label == period.label))
        session.exec(delete(KpiMonth).where(KpiMonth.label == period.label))
    rollup.refresh(engine)
    started = time.perf_counter()
    closed = months.close_month(engine, period, datetime.now(timezone.utc))
    elapsed = time.perf_counter() - started
    with read_session(engine) as session:
        rows = session.exec(select(func.count()).select_from(KpiMonthUnit).where(
            KpiMonthUnit.label == period.label)).one()
    return {"kpi_close_month_s": round(elapsed, 2), "kpi_close_month": period.label,
            "kpi_close_month_rows": rows if closed else 0}


# The drill-downs timed: the cases a leader opens from a card (figure, part).
DRILLS = (("resolution_rate", "missed"), ("response_rate", "missed"),
          ("satisfaction_rate", "missed"), ("repeat_rate", "counted"), ("on_time_rate", "base"))


def drill_timings(url: str, runs: int = 5) -> dict[str, object]:
    """The cases behind a figure, as the ledger opens them from a card: the district leader's
    last complete month, the banner's counts (``behind.tally``) and the first screen of rows
    (``ledger.page``), each drill-down timed apart; the slowest is reported too."""
    engine = get_engine(url)
    with read_session(engine) as session:
        leader = actor_by_username(session, KPI_USER)
        period = figures.default_period(figures.month_start_day(session))
        district = session.get(Unit, leader.unit_id)
    out: dict[str, object] = {}
    for key, part in DRILLS:
        params = {"figure": key, "part": part, "period": period.label, "unit": district.code}
        with read_session(engine) as session:
            found = behind.from_address(session, leader, params)
        if found.drill is None:
            raise RuntimeError(f"drill-down {key}/{part} refused: {found.problems}")

        def open_list(drill: object = found.drill) -> None:
            with read_session(engine) as session:
                behind.tally(session, leader, drill)
            ledger.page(leader, ledger.LedgerFilters(drill=drill), offset=0, limit=50,
                        lang_name=lambda row: getattr(row, "name_zh", ""), label=str,
                        engine=engine)
        out[f"drill_{key}_{part}_ms"] = _median_ms(open_list, runs)
    out["drill_slowest_ms"] = max(v for v in out.values() if isinstance(v, float))
    return out


def tick_timing(url: str) -> dict[str, float]:
    engine = get_engine(url)
    started = time.perf_counter()
    result = run_tick(engine)
    elapsed = time.perf_counter() - started
    jobs.count_as_run(TICK_JOB)  # this process's tick: no page starts another mid-timing
    return {"tick_ms": round(elapsed * 1000, 1),
            "tick_marked_overdue": result["marked_overdue"], "tick_called_up": result["called_up"]}


def run(cases_wanted: int, db: str, url: str | None = None, writers: int = 8,
        per_writer: int = 50, only: str | None = None) -> dict[str, object]:
    url = database_url(db, cases_wanted, url)
    result: dict[str, object] = {"cases": cases_wanted, "db": db}
    result.update(prepare(url, cases_wanted))
    with read_session(get_engine(url)) as session:
        result["cases"] = session.exec(select(func.count()).select_from(Case)).one()
    if only == "pages":  # the queue, case, home and rewards pages alone
        result.update(page_timings(url))
        return result
    result.update(kpi_timings(url))
    result.update(close_timing(url))
    result.update(drill_timings(url))
    if only == "kpi":
        return result
    result.update(tick_timing(url))
    result.update(page_timings(url))
    # 8 people pressing submit at once, each every ~100 ms: 80 reports a second, thousands of
    # times a real district's peak; then the same writers back to back, to find the ceiling.
    result.update(intake_timings(url, writers=writers, per_writer=per_writer, interval_ms=100))
    result.update(intake_timings(url, writers=writers, per_writer=per_writer,
                                 prefix="intake_saturated"))
    if db == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        result["db_file_mb"] = round(path.stat().st_size / 2**20)
    return result
