"""Behind the documented reverse proxy (a real nginx from Debian's packages, started here), each
client keeps its own address: five wrong passwords from one client lock that client out, and
the admin, from another, still logs in.

Two clients need two source addresses. Chromium cannot choose one, so each browser reaches the
site's proxy through a small nginx server of its own that connects from 127.0.0.2 or 127.0.0.3
(``proxy_bind``; the whole of 127/8 is loopback) and adds no header: to the site's proxy they
are two machines. The site's proxy is the README's: it listens on loopback, appends the peer to
``X-Forwarded-For`` and connects to Streamlit, which listens on ``::`` and so sees the proxy as
``::ffff:127.0.0.1`` — the address every visitor used to get.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from lib.core import settings  # noqa: E402
from tests.browser_support import (  # noqa: E402
    PASSWORD,
    WAIT,
    expect,
    free_port,
    load,
    log_in,
    new_page,
    settle,
    sqlite_db,
    wait_until,
)
from tests.conftest import need  # noqa: E402

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
pytestmark = pytest.mark.xdist_group("browser")

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENT_A, CLIENT_B = "127.0.0.2", "127.0.0.3"

_PROXY = """
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $http_host;
      proxy_read_timeout 600;"""

CONFIG = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{  # the site's reverse proxy, as the README shows it
    listen 127.0.0.1:{site};
    location / {{
      proxy_pass http://127.0.0.1:{app};
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;{proxy}
    }}
  }}
  server {{  # client A's own network: its requests reach the site from {a}
    listen 127.0.0.1:{port_a};
    location / {{ proxy_pass http://127.0.0.1:{site}; proxy_bind {a};{proxy} }}
  }}
  server {{  # client B's
    listen 127.0.0.1:{port_b};
    location / {{ proxy_pass http://127.0.0.1:{site}; proxy_bind {b};{proxy} }}
  }}
}}
"""


@pytest.fixture(scope="module")
def two_clients(browser_server, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """nginx in front of the shared Streamlit server; yields the URLs of client A and B."""
    need(None if Path(NGINX).exists() else
         f"{NGINX} is missing; the proxy test needs Debian's nginx (apt-get install nginx-light)")
    tmp = tmp_path_factory.mktemp("nginx")
    app_port = int(browser_server.rsplit(":", 1)[1])
    site, port_a, port_b = free_port(), free_port(), free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(CONFIG.format(tmp=tmp, site=site, app=app_port, port_a=port_a,
                                  port_b=port_b, a=CLIENT_A, b=CLIENT_B, proxy=_PROXY))
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    urls = (f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}")
    try:
        deadline = time.monotonic() + 20
        for url in urls:
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("nginx did not answer:\n" + (tmp / "error.log").read_text())
                time.sleep(0.2)
        yield urls
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _hits(db_url: str, key: str, counted: bool = True) -> int:
    with closing(sqlite_db(db_url)) as conn:
        return conn.execute("SELECT count(*) FROM throttle_hit WHERE kind = 'login' AND key = ? "
                            "AND counted = ?", (key, counted)).fetchone()[0]


def _submit(page, password: str) -> None:
    settle(page)  # the last answer is drawn in full before the next try is typed
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()


def test_behind_nginx_a_guesser_locks_out_only_itself(browser_server, browser_chromium,
                                                      two_clients):
    """Client A types five wrong passwords for admin and is refused even the right one; the
    admin, on client B behind the same proxy, logs in. The app counted each by its own
    address, never by the proxy's."""
    site_a, site_b = two_clients
    assert settings.get_int(None, "login.pair_failure_limit") == 5
    context_a = browser_chromium.new_context(locale="zh-CN")
    context_b = browser_chromium.new_context(locale="zh-CN")
    try:
        page = new_page(context_a)
        # The anonymous home page runs twice (the cookie component reports, then the form is
        # drawn again): typing before the second run ends can lose the submit.
        load(page, site_a, runs=2)
        expect(page.get_by_role("button", name="登录")).to_be_visible(timeout=WAIT)
        for tried in range(1, settings.get_int(None, "login.pair_failure_limit") + 1):
            _submit(page, "not-the-password")
            wait_until(lambda n=tried: _hits(browser_server.db_url, f"addr:{CLIENT_A}") == n,
                       f"wrong password {tried} is counted for client A's own address")
            expect(page.get_by_text("用户名或密码错误。")).to_be_visible(timeout=WAIT)
        _submit(page, PASSWORD)
        expect(page.get_by_text(re.compile("登录失败次数过多"))).to_be_visible(timeout=WAIT)

        other = new_page(context_b)
        log_in(other, site_b, "admin")
        expect(other.get_by_role("heading", name="卫管理员，您好").first).to_be_visible(timeout=WAIT)
        # B's attempt was counted for B's address and forgiven when it succeeded.
        assert _hits(browser_server.db_url, f"pair:admin|{CLIENT_B}", counted=False) == 1
        assert _hits(browser_server.db_url, f"pair:admin|{CLIENT_A}") == 5
        with closing(sqlite_db(browser_server.db_url)) as conn:
            assert conn.execute("SELECT count(*) FROM throttle_hit "
                                "WHERE key LIKE '%::ffff:%'").fetchone()[0] == 0
    finally:
        context_a.close()
        context_b.close()
