"""Refresh the README's screenshots: ``make screenshots`` (``python -m tests.screenshots``).

Builds a demo database of its own (``--cases``, default 3000, as ``make run``), adds the
morning's new reports of one community, starts the app on it, opens each page as the demo
account that uses it, at a desktop size (1366×768) or a phone's (390×844),
waits until the app is idle there and writes ``docs/screenshots/<name>.png``. It needs the
test tools (Playwright and Debian's chromium), hence its place beside the browser tests.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser_support import (
    ARGS,
    CHROMIUM,
    ROOT,
    WAIT,
    Base,
    expect,
    free_port,
    load,
    login_cookie,
    new_page,
)

OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class Shot:
    name: str
    path: str  # the page's address with its query, after the base
    user: str | None  # None: not logged in
    phone: bool = False
    full_page: bool = False
    wait_for: str | None = None  # a data-testid that must be drawn before the picture
    runs: int = 1  # the anonymous home page runs twice (its cookie component reports back)


SHOTS = [
    Shot("login", "/", None, runs=2),
    Shot("report-phone", "/report", None, phone=True, full_page=True),
    Shot("home", "/", "community01", full_page=True),
    Shot("queue", "/queue", "community01", wait_for="stDataFrame"),
    Shot("case", "/case?id={case}", "community01"),
    Shot("case-phone", "/case?id={order_case}", "dept_police", phone=True),
    Shot("track-phone", "/track", None, phone=True),
    Shot("ledger", "/ledger?status=overdue", "district01", wait_for="stDataFrame"),
    Shot("rewards", "/rewards", "district_approver"),
    Shot("rewards-to-pay", "/rewards?tab=to_pay", "street_approver"),
    Shot("kpi-overview", "/kpi_overview", "district_leader", wait_for="stPlotlyChart"),
    Shot("kpi-rankings", "/kpi_rankings", "district_leader", wait_for="stDataFrame"),
    Shot("kpi-map", "/kpi_map", "district_leader", wait_for="stPlotlyChart"),
    Shot("kpi-flow", "/kpi_flow", "district_leader", wait_for="stPlotlyChart"),
    Shot("kpi-phone", "/kpi_overview", "district_leader", phone=True, full_page=True,
         wait_for="stPlotlyChart"),
    Shot("categories", "/admin_categories", "admin"),
    Shot("org", "/admin_org", "admin"),
]


def _start(tmp: Path, cases: int) -> tuple[Base, subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/app.db",
           "COOKIE_KEY": secrets.token_urlsafe(48), "NOTICE_LOG": str(tmp / "notices.log")}
    for args in (["migrate"], ["demo", "--cases", str(cases)], ["kpi-refresh"]):
        subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=1200)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=(tmp / "streamlit.log").open("w"), stderr=subprocess.STDOUT)
    base = Base(f"http://127.0.0.1:{port}")
    base.db_url, base.cookie_key = env["DATABASE_URL"], env["COOKIE_KEY"]
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return base, proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the app did not start:\n" + (tmp / "streamlit.log").read_text())
        time.sleep(0.3)


# The morning's new reports to 红星路社区, so that its queue shows what a clerk meets.
FRESH_REPORTS = [
    ("fire", "楼道堆放纸箱和旧家具，堵住消防通道", "红星路二段12号2单元"),
    ("gas", "底商餐馆燃气管道从雨棚下穿过，有异味", "红星路二段20号"),
    ("power_telecom", "电动车在楼道内飞线充电", "红星路二段12号1单元"),
    ("dogs", "小区内大型犬未拴绳，追咬儿童", "红星路三段5号院"),
    ("group_renting", "一套住房隔成十余间出租，人员进出频繁", "红星路三段8号3楼"),
    ("small_venues", "小旅馆无灭火器，安全出口上锁", "红星路二段31号"),
    ("illegal_construction", "屋顶违章搭建彩钢板房", "红星路三段17号"),
    ("food_safety", "路边摊贩售卖无标签熟食", "红星路二段地铁口"),
]


def _sample_cases(base: Base) -> dict[str, int]:
    """A case the community clerk has open, and one a department handles on a work order;
    first the morning's reports are made through lib, as residents make them."""
    from sqlmodel import select

    from lib.cases.models import Case, WorkOrder
    from lib.cases.states import OPEN, ORDER_OPEN
    from lib.core.db import get_engine, read_session
    from lib.org.units import find_unit
    from tests.factories import new_case

    engine = get_engine(base.db_url)
    for category, description, address in FRESH_REPORTS:
        new_case(engine, category=category, description=description, address=address)
    with read_session(engine) as session:
        community = find_unit(session, "红星路社区")
        police = find_unit(session, "春熙路派出所")
        case = session.exec(select(Case.id).where(
            Case.community_id == community.id, Case.state.in_(sorted(OPEN)))
            .order_by(Case.id.desc())).first()
        order_case = session.exec(select(WorkOrder.case_id).where(
            WorkOrder.unit_id == police.id, WorkOrder.state.in_(sorted(ORDER_OPEN)))
            .order_by(WorkOrder.id.desc())).first()
    return {"case": case or 1, "order_case": order_case or case or 1}


def _shoot(browser, base: Base, shot: Shot, ids: dict[str, int], out: Path) -> None:
    context = browser.new_context(viewport=PHONE if shot.phone else DESKTOP, locale="zh-CN",
                                  device_scale_factor=1, is_mobile=shot.phone,
                                  has_touch=shot.phone)
    if shot.user:
        context.add_cookies([login_cookie(base, shot.user)])
    page = new_page(context)
    load(page, base + shot.path.format(**ids), runs=shot.runs)
    if shot.wait_for:
        expect(page.get_by_test_id(shot.wait_for).first).to_be_visible(timeout=WAIT)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / f"{shot.name}.png"), full_page=shot.full_page)
    context.close()
    print(f"{shot.name}.png", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--only", nargs="*", help="the names of the pictures to take")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    shots = [s for s in SHOTS if not args.only or s.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base, proc = _start(Path(tmp), args.cases)
        try:
            ids = _sample_cases(base)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for shot in shots:
                    _shoot(browser, base, shot, ids, args.out)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
