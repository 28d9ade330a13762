"""The monthly report (月度通报) as leaders print and file it: the red and black lists print each
unit's own rank, every table prints every row, and the workbook's sheets are tables a clerk can
sort and filter — numbers as numbers, dates as dates, headers that name their unit, a frozen
header and an autofilter — in a file named by its unit and month."""

from __future__ import annotations

import re
from datetime import date, datetime
from io import BytesIO

import pytest
from openpyxl import load_workbook

from lib.core.i18n import t
from lib.kpi import report
from lib.kpi.views import Query
from tests.factories import actor, app
from tests.test_pages_kpi import (  # noqa: F401 (fixtures: the data, and the day after its month)
    RAW_KEY,
    day_after_the_data_month,
    goto,
    kpi_db,
    ok,
    this_period,
)

# A Markdown ordered-list item: "6. 春熙路街道" renders numbered by the list, not by the data.
ORDERED_ITEM = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)


def _unescaped(value: object) -> object:
    """A static table's Markdown cell as it reads (``2026\\-12`` is "2026-12")."""
    return re.sub(r"\\(.)", r"\1", value) if isinstance(value, str) else value


def _book(kpi_db, username: str = "district_leader", lang: str = "zh"):  # noqa: F811
    monthly = report.monthly(actor(kpi_db, username), Query(), kpi_db)
    return monthly, load_workbook(BytesIO(report.workbook(monthly, lang)))


# ---------------------------------------------------------------- the printed page


def test_the_red_and_black_lists_print_each_units_own_rank(kpi_db):  # noqa: F811
    at = goto(app("district_leader"), "kpi_report")
    ok(at, "kpi_report")
    monthly = report.monthly(actor(kpi_db, "district_leader"), Query(), kpi_db)
    listed = [(ranking, r) for ranking in monthly.rankings if not ranking.own_only
              for r in (*ranking.red, *ranking.black)]
    assert listed
    texts = [str(m.value) for m in at.main.markdown]
    assert not [text for text in texts if ORDERED_ITEM.search(text)]
    shown = "\n".join(texts)
    for _ranking, row in listed:
        line = t("kpi.report.list_line", rank=row.rank, unit=row.unit.name_zh,
                 score=f"{row.values['composite'].value * 100:.1f}")
        assert line in shown, line


@pytest.mark.parametrize("username", ["district_leader", "community_leader"])
def test_every_table_of_the_report_has_a_printed_copy_with_every_row(kpi_db, username):  # noqa: F811
    at = goto(app(username), "kpi_report")
    ok(at, "kpi_report")
    grids = list(at.main.dataframe)
    tables = list(at.main.table)
    assert grids and len(tables) == len(grids)
    for grid, table in zip(grids, tables, strict=True):
        on_screen, on_paper = grid.value, table.value
        assert [_unescaped(c) for c in on_paper.columns] == list(on_screen.columns)
        assert len(on_paper) == len(on_screen) > 0
        assert on_paper.map(_unescaped).astype(str).values.tolist() == \
            on_screen.astype(str).values.tolist()
    communities = next(g.value for g in grids if t("kpi.col.rank") in g.value.columns and
                       "红星路社区" in set(g.value[t("kpi.col.unit")]))
    assert len(communities) >= 1


# ---------------------------------------------------------------- the workbook


def test_every_sheet_is_one_table_with_a_frozen_header_and_a_filter(kpi_db):  # noqa: F811
    _monthly, book = _book(kpi_db)
    for sheet in book.worksheets:
        assert sheet.freeze_panes is not None, sheet.title
        header_row = sheet[sheet.freeze_panes].row - 1
        assert sheet.auto_filter.ref, sheet.title
        first, last = sheet.auto_filter.ref.split(":")
        assert first == f"A{header_row}", (sheet.title, sheet.auto_filter.ref)
        width = max(c.column for c in sheet[header_row] if c.value is not None)
        assert re.match(r"[A-Z]+", last).group(0) == sheet.cell(header_row, width).column_letter
        assert int(re.search(r"\d+", last).group(0)) >= sheet.max_row - 2, sheet.title


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_workbook_headers_name_their_unit_and_never_a_catalog_key(kpi_db, lang):  # noqa: F811
    _monthly, book = _book(kpi_db, lang=lang)
    words = [str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row
             if isinstance(c.value, str)]
    assert not [w for w in words if RAW_KEY.search(w)], [w for w in words if RAW_KEY.search(w)]
    categories = book.worksheets[-1]
    header = [c.value for c in categories[1]]
    assert t("kpi.figure.reported", lang) + t("kpi.report.unit.count", lang) in header


def test_numbers_are_numbers_and_dates_are_dates(kpi_db):  # noqa: F811
    monthly, book = _book(kpi_db)
    summary = book.worksheets[0]
    row = [c.value for c in summary[2]]
    assert monthly.period.start in [v.date() if isinstance(v, datetime) else v for v in row]
    dates = [c for c in summary[2] if isinstance(c.value, (date, datetime))]
    assert len(dates) == 3 and all("yy" in c.number_format for c in dates)
    for sheet in book.worksheets[3:-1]:  # the rankings: ranks sort as numbers
        ranks = [sheet.cell(n, 1).value for n in range(2, sheet.max_row + 1)]
        assert ranks and all(r is None or isinstance(r, int) for r in ranks), (sheet.title, ranks)
        unranked = [sheet.cell(n, sheet.max_column).value for n in range(2, sheet.max_row + 1)
                    if sheet.cell(n, 1).value is None]
        assert all(v == t("kpi.rank.unranked") for v in unranked), unranked
    rates = [c for sheet in book.worksheets for r in sheet.iter_rows() for c in r
             if isinstance(c.value, float)]
    assert rates and all(c.number_format == "0.0" for c in rates)


@pytest.mark.parametrize("username,unit", [("district_leader", "锦江区"),
                                           ("community_leader", "红星路社区")])
def test_the_file_name_names_the_unit_and_the_month(kpi_db, username, unit):  # noqa: F811
    name, content = report.report_file(actor(kpi_db, username), Query(), "zh", kpi_db)
    assert name == f"月度通报-{unit}-{this_period().label}.xlsx"
    assert content.startswith(b"PK")
    english, _ = report.report_file(actor(kpi_db, username), Query(), "en", kpi_db)
    assert english.startswith("monthly-report-") and english.endswith(f"-{this_period().label}.xlsx")


def test_a_file_name_never_carries_a_path_or_a_forbidden_character(kpi_db):  # noqa: F811
    monthly = report.monthly(actor(kpi_db, "district_leader"), Query(), kpi_db)
    monthly.scope_unit.name_zh = '../红星:路*社"区?'
    assert report.file_name(monthly, "zh") == f"月度通报-_红星_路_社_区_-{this_period().label}.xlsx"
