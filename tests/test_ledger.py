"""The ledger (台账): scope, masking by the privacy rules, access log, and exports that never
carry a live formula."""

from __future__ import annotations

import csv
import io
import threading
from datetime import date, datetime, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import func
from sqlmodel import select

from lib.cases import ledger
from lib.cases.models import AccessLog
from lib.cases.queue import Filters
from lib.core.db import read_session
from lib.core.errors import PermissionDenied, ValidationFailed
from lib.core.i18n import name, t
from tests.factories import actor, closed_case, new_case

HOSTILE = ['=HYPERLINK("http://127.0.0.1:9/x","点我")', "+1+1", "-2+3", "@SUM(A1)"]


def _case(db, description: str, *, address: str | None = None, **fields):
    """A report whose address repeats its description unless given."""
    return new_case(db, description=description, address=address or description[:150], **fields)


def _actor(db, username: str):
    return actor(db, username)


def _export(db, username: str, fmt: str, filters: Filters = Filters()) -> bytes:
    return ledger.export(_actor(db, username), filters, fmt=fmt, engine=db,
                         lang_name=lambda row: name(row, "zh"), label=lambda key: t(key, "zh"))


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_exports_neutralise_every_cell_that_would_run_as_a_formula(db):
    for text in HOSTILE:
        _case(db, text)
    rows = _csv_rows(_export(db, "community01", "csv"))
    header, body = rows[0], rows[1:]
    description = header.index(t("ledger.col.description", "zh"))
    address = header.index(t("ledger.col.address", "zh"))
    cells = {row[description] for row in body} | {row[address] for row in body}
    assert {"'" + text for text in HOSTILE} <= cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)

    book = load_workbook(io.BytesIO(_export(db, "community01", "xlsx")))
    sheet = book.active
    values = [cell.value for row in sheet.iter_rows(min_row=2) for cell in row]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert "'" + HOSTILE[0] in values
    assert not any(isinstance(v, str) and v.startswith("=") for v in values)


def test_tab_and_carriage_return_at_the_start_are_neutralised_too():
    assert ledger.neutralise("\t=1") == "'\t=1" and ledger.neutralise("\r=1") == "'\r=1"
    assert ledger.neutralise("红星路") == "红星路" and ledger.neutralise(5) == 5


def test_export_masks_the_phone_for_units_that_do_not_handle_the_case(db):
    _case(db, "楼道堆放杂物", phone="13812345678")
    own = _csv_rows(_export(db, "community01", "csv"))
    leader = _csv_rows(_export(db, "district_leader", "csv"))
    phone_column = own[0].index(t("ledger.col.reporter_phone", "zh"))
    assert own[1][phone_column] == "13812345678"
    assert leader[1][phone_column] == "138****5678"
    assert "13812345678" not in _export(db, "district_leader", "csv").decode("utf-8-sig")


def test_restricted_cases_hide_reporter_and_description_and_log_full_views(db):
    _case(db, "某楼有人聚众赌博，组织者张某", category="vice", phone="13812340000",
          address="红星路9号")
    for username in ("community_leader", "district01", "inspector01"):
        text = _export(db, username, "csv").decode("utf-8-sig")
        assert "13812340000" not in text and "王小二" not in text and "张某" not in text
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(AccessLog)).one() == 0
    text = _export(db, "district_privacy", "csv").decode("utf-8-sig")
    assert "13812340000" in text and "张某" in text
    with read_session(db) as s:
        logged = s.exec(select(AccessLog)).all()
    assert [(row.what, row.user_id) for row in logged] == [
        ("export", _actor(db, "district_privacy").id)]


def test_the_ledger_stays_in_the_users_area(db):
    _case(db, "本社区的案件", community="510104001001")
    _case(db, "别的街道的案件", community="510104002001")
    mine, total = ledger.page(_actor(db, "street01"), Filters(), offset=0, limit=50, engine=db,
                              lang_name=lambda row: name(row, "zh"), label=lambda key: key)
    assert total == 1 and mine[0]["description"] == "本社区的案件"
    everything, total = ledger.page(_actor(db, "district01"), Filters(), offset=0, limit=50,
                                    engine=db, lang_name=lambda row: name(row, "zh"),
                                    label=lambda key: key)
    assert total == 2


def test_the_ledger_refuses_roles_without_it_and_a_backwards_period(db):
    label = {"lang_name": lambda row: name(row, "zh"), "label": lambda key: key}
    with pytest.raises(PermissionDenied):
        ledger.page(_actor(db, "admin"), Filters(), offset=0, limit=10, engine=db, **label)
    with pytest.raises(PermissionDenied):
        _export(db, "street_approver", "csv")
    with pytest.raises(ValidationFailed):
        ledger.page(_actor(db, "street01"), Filters(),
                    ledger.Period(date(2026, 5, 2), date(2026, 5, 1)), offset=0, limit=10,
                    engine=db, **label)
    with pytest.raises(ValidationFailed):
        ledger.export(_actor(db, "street01"), Filters(), fmt="html", engine=db, **label)


def test_export_pages_by_key_and_reports_progress(db):
    for n in range(7):
        _case(db, f"第{n}件")
    seen: list[tuple[int, int]] = []
    rows = _csv_rows(ledger.export(_actor(db, "community01"), Filters(), fmt="csv", engine=db,
                                   lang_name=lambda row: name(row, "zh"),
                                   label=lambda key: t(key, "zh"), chunk_size=2,
                                   progress=lambda done, total: seen.append((done, total))))
    assert seen == [(2, 7), (4, 7), (6, 7), (7, 7)]
    codes = [row[0] for row in rows[1:]]
    assert len(codes) == len(set(codes)) == 7  # every case once, none twice across pages


def test_an_export_is_one_snapshot_while_reports_arrive(db):
    """Cases reported while an export runs are not half in it (12 cases exported as 14 rows):
    the export holds one snapshot, even when new rows sort into pages still to come."""
    originals = {_case(db, f"导出前{n}", now=datetime(2026, 1, 10 + 2 * n, tzinfo=timezone.utc)).code
                 for n in range(6)}
    arrivals: list[int] = []

    def report_meanwhile(done: int, total: int) -> None:
        # Runs inside the export's read transaction, between pages: another writer commits a
        # case dated among the rows of the pages still to come.
        worker = threading.Thread(target=lambda: arrivals.append(_case(
            db, f"导出中{done}", now=datetime(2026, 1, 9 + done, 12, tzinfo=timezone.utc)).id))
        worker.start()
        worker.join(timeout=30)

    data = ledger.export(_actor(db, "community01"), Filters(), fmt="csv", engine=db,
                         lang_name=lambda row: name(row, "zh"), label=lambda key: t(key, "zh"),
                         chunk_size=2, progress=report_meanwhile)
    assert len(arrivals) == 3  # three pages, a new case after each
    assert {row[0] for row in _csv_rows(data)[1:]} == originals


def test_the_workbook_holds_dates_as_dates_numbers_as_numbers_and_a_filterable_header(db):
    """Before: every cell was text ("2026-05-01 09:00"), no frozen header, no filter."""
    case = new_case(db, now=datetime(2026, 5, 1, 1, 0, tzinfo=timezone.utc))  # 09:00 China time
    book = load_workbook(io.BytesIO(_export(db, "community01", "xlsx")))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    [row] = [r for r in sheet.iter_rows(min_row=2) if r[0].value == case.code]
    reported = row[header.index(t("ledger.col.reported_at", "zh"))]
    assert reported.value == datetime(2026, 5, 1, 9, 0) and reported.is_date
    assert reported.number_format == ledger.DATE_FORMAT
    hurries = row[header.index(t("ledger.col.hurry_count", "zh"))]
    assert hurries.value == 0 and hurries.data_type == "n"
    for column in ("closed_at", "handle_due_at", "closure_hours"):  # none yet: empty, not "None"
        assert row[header.index(t(f"ledger.col.{column}", "zh"))].value is None, column
    closed = closed_case(db)
    book = load_workbook(io.BytesIO(_export(db, "community01", "xlsx")))
    sheet = book.active
    [row] = [r for r in sheet.iter_rows(min_row=2) if r[0].value == closed.code]
    hours = row[header.index(t("ledger.col.closure_hours", "zh"))]
    assert isinstance(hours.value, (int, float)) and hours.data_type == "n" and hours.number_format == "0.0"
    assert row[header.index(t("ledger.col.closed_at", "zh"))].is_date
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}{sheet.max_row}"


def test_every_export_file_is_named_by_its_unit_and_period():
    label = lambda key: t(key, "zh")  # noqa: E731
    day = date(2026, 12, 3)
    assert ledger.file_name("春熙路街道", ledger.Period(date(2026, 11, 1), date(2026, 11, 30)), "xlsx",
                            today=day, label=label) == "台账_春熙路街道_2026-11-01至2026-11-30.xlsx"
    assert ledger.file_name("锦江区", ledger.Period(), "csv", today=day, label=label) == \
        "台账_锦江区_截至2026-12-03.csv"
    assert ledger.file_name("a/b:c", ledger.Period(date(2026, 11, 1)), "csv", today=day,
                            label=lambda key: t(key, "en")) == "ledger_a-b-c_2026-11-01 to 2026-12-03.csv"
