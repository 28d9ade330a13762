"""The pages of the app and who may open them. The sidebar menu and the page guard read this."""

from __future__ import annotations

from dataclasses import dataclass

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


def allowed(spec: PageSpec, roles: frozenset[str] | None) -> bool:
    """Whether a user with ``roles`` (None: not logged in) may open the page."""
    if spec.public:
        return True
    if roles is None:
        return False
    return spec.roles is None or bool(spec.roles & roles)
