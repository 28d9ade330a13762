"""The pages of the app and who may open them. The sidebar menu and the page guard read this.

It also says where a login returns to: a page that asks for a login links to
``app.py?next=<page key>&<kept params>``, and after the login the app opens that page again. Only
our own pages, by key, and only the query parameters below, each checked, are ever followed: a
``next`` that is a URL, a path or an unknown key is ignored (no open redirect).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lib.core import config
from lib.core.errors import NotFound
from lib.core.inputs import parse_id
from lib.org.permissions import (
    ADMINS,
    CASE_READERS,
    CASE_WORKERS,
    KPI_READERS,
    REPORTERS,
    REWARD_APPROVERS,
    REWARD_READERS,
)


@dataclass(frozen=True)
class PageSpec:
    key: str
    path: str
    icon: str
    roles: frozenset[str] | None  # None: any logged-in user
    public: bool = False
    in_menu: bool = True


PAGES: list[PageSpec] = [
    PageSpec("home", "app.py", ":material/home:", None, public=True),
    PageSpec("queue", "pages/queue.py", ":material/inbox:", CASE_WORKERS),
    PageSpec("staff_report", "pages/staff_report.py", ":material/add_alert:", REPORTERS),
    PageSpec("ledger", "pages/ledger.py", ":material/table_view:", CASE_READERS),
    PageSpec("case", "pages/case.py", ":material/description:", CASE_READERS, in_menu=False),
    PageSpec("kpi_overview", "pages/kpi_overview.py", ":material/monitoring:", KPI_READERS),
    PageSpec("kpi_rankings", "pages/kpi_rankings.py", ":material/leaderboard:", KPI_READERS),
    PageSpec("kpi_satisfaction", "pages/kpi_satisfaction.py", ":material/sentiment_satisfied:",
             KPI_READERS),
    PageSpec("kpi_closure", "pages/kpi_closure.py", ":material/timer:", KPI_READERS),
    PageSpec("kpi_flow", "pages/kpi_flow.py", ":material/account_tree:", KPI_READERS),
    PageSpec("kpi_map", "pages/kpi_map.py", ":material/map:", KPI_READERS),
    PageSpec("kpi_monitoring", "pages/kpi_monitoring.py", ":material/notifications_active:",
             KPI_READERS),
    PageSpec("kpi_report", "pages/kpi_report.py", ":material/summarize:", KPI_READERS),
    PageSpec("rewards", "pages/rewards.py", ":material/redeem:", REWARD_APPROVERS),
    PageSpec("reward_ledger", "pages/reward_ledger.py", ":material/receipt_long:", REWARD_READERS),
    PageSpec("report", "pages/report.py", ":material/campaign:", None, public=True),
    PageSpec("track", "pages/track.py", ":material/search:", None, public=True),
    PageSpec("admin_users", "pages/admin_users.py", ":material/group:", ADMINS),
    PageSpec("admin_org", "pages/admin_org.py", ":material/account_tree:", ADMINS),
    PageSpec("admin_categories", "pages/admin_categories.py", ":material/category:", ADMINS),
    PageSpec("admin_rewards", "pages/admin_rewards.py", ":material/paid:", ADMINS),
]

PAGE_BY_KEY = {p.key: p for p in PAGES}
NEXT = "next"
_KEY = re.compile(r"[a-z_]{1,32}")


def _valid_id(value: str) -> str | None:
    try:
        return str(parse_id(value))
    except NotFound:
        return None


def _valid_key(value: str) -> str | None:
    return value if _KEY.fullmatch(value) else None


# The query parameters a login keeps, each with its check: a case id, a reward claim's id, a
# queue tab's key. The page itself still checks each value against what the user may see.
RETURN_PARAMS = {"id": _valid_id, "claim": _valid_id, "tab": _valid_key}


def allowed(spec: PageSpec, roles: frozenset[str] | None) -> bool:
    """Whether a user with ``roles`` (None: not logged in) may open the page."""
    if spec.public:
        return True
    if roles is None:
        return False
    return spec.roles is None or bool(spec.roles & roles)


def language_query(lang: str) -> dict[str, str]:
    """The query parameter that carries ``lang`` in links; none for the default language."""
    return {} if lang == config.default_language() else {"lang": lang}


def _kept(query: Mapping[str, str]) -> dict[str, str]:
    kept = {}
    for param, check in RETURN_PARAMS.items():
        value = query.get(param)
        checked = check(value) if isinstance(value, str) else None
        if checked is not None:
            kept[param] = checked
    return kept


def return_query(key: str, query: Mapping[str, str]) -> dict[str, str]:
    """The login link's query for page ``key`` opened with ``query``: where to come back to."""
    return {NEXT: key, **_kept(query)}


def return_target(query: Mapping[str, str]) -> tuple[PageSpec, dict[str, str]] | None:
    """The page and query a login should open, from the home page's query; None when it names
    none of our pages (or only the home page itself)."""
    key = query.get(NEXT)
    spec = PAGE_BY_KEY.get(key) if isinstance(key, str) else None
    if spec is None or spec.key == "home":
        return None
    return spec, _kept(query)
