"""Restricted cases (黄赌毒, special populations) in lists of other things: another case's merge
list, the staff form's similar cases, the assessment map, monitoring's repeat places, and the
batch bar's offer. Each list names a restricted case only to a reader who may read its content,
and every such listing is in the access log."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from lib.cases import batch, intake
from lib.cases.detail import case_detail
from lib.cases.models import AccessLog, Case
from lib.core import refcache
from lib.core.db import read_session, write_session
from lib.core.models import Setting, utcnow
from lib.kpi import figures, monitoring, views
from lib.kpi.views import Query
from lib.org.models import User
from tests.factories import NEIGHBOUR, actor, category_id, move, new_case

SECRET_PLACE = "红星路9号3栋501"


def _logs(engine, case_id: int) -> list[tuple[str, str]]:
    with read_session(engine) as s:
        return [tuple(r) for r in s.exec(
            select(User.username, AccessLog.what).join(User, User.id == AccessLog.user_id)
            .where(AccessLog.case_id == case_id).order_by(AccessLog.id)).all()]


def _merge_list(engine, username: str, case_id: int) -> list[int]:
    detail = case_detail(actor(engine, username), case_id, engine=engine)
    assert "merge" in detail.actions, username
    return [o.id for o in detail.options["merge_into"]]


def _place(engine, case_id: int, lat: float, lon: float) -> None:
    with write_session(engine) as s:
        row = s.get(Case, case_id)
        row.latitude, row.longitude = lat, lon


def _set(engine, key: str, value: object) -> None:
    with write_session(engine) as s:
        s.get(Setting, key).value = str(value)
    refcache.clear()


# ---------------------------------------------------------------- item 8: merge and similar lists


def test_a_merge_list_names_a_restricted_case_only_to_who_reads_it_and_logs_it(db):
    vice = new_case(db, category="vice", address=SECRET_PLACE)  # waits at its community
    ordinary = new_case(db, address="红星路10号")
    # The community handles both: it reads the restricted case, so its merge list names it.
    fresh = new_case(db, address="红星路11号")
    listed = _merge_list(db, "community01", fresh.id)
    assert vice.id in listed and ordinary.id in listed
    assert _logs(db, vice.id) == [("community01", "merge_list")]
    assert _logs(db, ordinary.id) == []  # an ordinary case's listing is no restricted read
    # Called up to the street, then the district: a street or district clerk without the
    # permission triages it there and reads no restricted case of the community.
    move(db, "community01", fresh.id, "accept")
    move(db, "community01", fresh.id, "call_up", note="请街道协调")
    assert ordinary.id in _merge_list(db, "street01", fresh.id)
    assert vice.id not in _merge_list(db, "street01", fresh.id)
    move(db, "street01", fresh.id, "call_up", note="请区里协调")
    assert vice.id not in _merge_list(db, "district01", fresh.id)
    assert _logs(db, vice.id) == [("community01", "merge_list")]
    # The district's holder of the permission reads it, and the listing is logged.
    assert vice.id in _merge_list(db, "district_privacy", fresh.id)
    assert _logs(db, vice.id) == [("community01", "merge_list"), ("district_privacy", "merge_list")]


def test_similar_cases_name_a_restricted_case_only_to_who_reads_it_and_log_it(db):
    vice = new_case(db, category="vice", address=SECRET_PLACE)
    kind = dict(category_id=vice.category_id, community_id=vice.community_id, engine=db)
    # An inspector and a district clerk file reports in the area but read no restricted content.
    for username in ("inspector01", "district01"):
        assert intake.similar_for(actor(db, username), **kind) == [], username
    assert _logs(db, vice.id) == []
    for username in ("community01", "district_privacy"):
        found = intake.similar_for(actor(db, username), **kind)
        assert [(d.id, d.address) for d in found] == [(vice.id, SECRET_PLACE)], username
    assert _logs(db, vice.id) == [("community01", "similar"), ("district_privacy", "similar")]
    # An ordinary category's similar cases are no restricted read: nothing logged.
    fire = new_case(db, address="红星路12号")
    assert [d.id for d in intake.similar_for(actor(db, "community01"), category_id=fire.category_id,
                                             community_id=fire.community_id, engine=db)] == [fire.id]
    assert _logs(db, fire.id) == []


# ---------------------------------------------------------------- section 4: map and monitoring


def _this_month(**fields) -> Query:
    """The month under way, where the cases made now are (the pages open on the last one)."""
    return Query(label=figures.month_period(figures.today()).label, **fields)


def test_the_kpi_map_never_carries_a_restricted_case_point(db):
    fire = new_case(db, address="红星路13号")
    vice = new_case(db, category="vice", address=SECRET_PLACE)
    _place(db, fire.id, 30.6601, 104.0601)
    _place(db, vice.id, 30.6655, 104.0655)
    for username in ("district_leader", "street_leader", "community_leader", "district01"):
        points = views.where(actor(db, username), _this_month(), engine=db).points
        assert (104.0601, 30.6601, fire.category_id) in points, username
        assert all(cat != vice.category_id for _, _, cat in points), username
        assert (104.0655, 30.6655) not in {(lon, lat) for lon, lat, _ in points}, username
    # Asked for the restricted category alone, the map has no point at all.
    only = _this_month(category_id=vice.category_id)
    assert views.where(actor(db, "district_leader"), only, engine=db).points == []


def test_monitoring_lists_no_restricted_place_when_every_reported_place_counts(db):
    """With ``kpi.repeat_place_min`` at 1 the list is read from the cases, not from the roll-up
    that already leaves restricted categories out."""
    _set(db, "kpi.repeat_place_min", 1)
    now = utcnow()
    for hours in (3, 2):
        new_case(db, category="vice", address=SECRET_PLACE, now=now - timedelta(hours=hours))
    new_case(db, address="红星路14号", now=now - timedelta(hours=1))
    m = monitoring.monitoring(actor(db, "street_leader"), Query(), db, now=now)
    assert m.repeat_min == 1
    places = [(r.category.key, r.address, r.reports) for r in m.repeats]
    assert ("fire", "红星路14号", 1) in places
    assert all(address != SECRET_PLACE for _, address, _ in places), places
    assert all(not r.category.restricted for r in m.repeats)
    m = monitoring.monitoring(actor(db, "street_leader"),
                              Query(category_id=category_id(db, "vice")), db, now=now)
    assert m.repeats == []


# ---------------------------------------------------------------- section 4: the batch offer


def test_the_batch_offer_leaves_out_every_case_the_user_may_not_act_on(db):
    """What the buttons offer, not only what a batch would refuse: a case of another community,
    one the street may read but not triage, one already accepted."""
    own = new_case(db, address="红星路15号")
    accepted = move(db, "community01", new_case(db, address="红星路16号").id, "accept")
    elsewhere = new_case(db, community=NEIGHBOUR, address="新华路1号")
    chosen = [own.id, accepted.id, elsewhere.id]
    offer = batch.offer(actor(db, "community01"), chosen, engine=db)
    assert offer.eligible == {"accept": [own.id], "dispatch": [], "close": []}
    assert offer.default_unit == {}
    # The street sees all three (its area) and may move none of them from the queue.
    street = batch.offer(actor(db, "street01"), chosen, engine=db)
    assert street.eligible == {"accept": [], "dispatch": [], "close": []}
    # The neighbour may accept only its own.
    neighbour = batch.offer(actor(db, "staff_" + NEIGHBOUR), chosen, engine=db)
    assert neighbour.eligible == {"accept": [elsewhere.id], "dispatch": [], "close": []}
