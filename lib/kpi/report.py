"""The monthly assessment report (月度通报): a chosen month's headline figures against the month
before, the rankings of every level with the commendation (红榜) and criticism (黑榜) lists, and
the figures by category — as data for the printable page and as an Excel workbook.

The workbook holds values only: every text cell is neutralised (a leading apostrophe before
= + - @), no cell holds a formula, and the charts are native Excel bar charts over the sheet's
own values.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.ledger import neutralise
from lib.cases.models import Case
from lib.core.clock import china, spreadsheet_time
from lib.core.db import read_session
from lib.core.i18n import catalog, name, t
from lib.core.inputs import file_safe
from lib.core.models import Category, UnitKind, utcnow
from lib.kpi import access, behind, figures, published, rankings
from lib.kpi.extras import EXTRAS
from lib.kpi.figures import HEADLINE, Period, Quantiles, Value
from lib.kpi.models import KpiAdjustment, KpiMonth, KpiMonthUnit
from lib.kpi.rankings import BLACK, RED, Ranking, RankRow
from lib.kpi.rollup import Counters
from lib.kpi.views import Query, _context
from lib.org.models import Unit
from lib.org.units import Actor

RANKED_FIGURES = ["composite", "response_rate", "resolution_rate", "satisfaction_rate",
                  "on_time_rate", "overdue_rate"]
CATEGORY_FIGURES = ["reported", "closed", "on_time_rate", "satisfaction_rate", "mean_closure_hours"]


@dataclass(frozen=True)
class Adjustment:
    """A change, after its month closed, to a case that month counted (``kpi_adjustment``):
    ``effect`` is what it would change in the published figures of the case's community (or the
    department that handled it): (unit name, figure, as published, with the change)."""

    case_code: str
    label: str  # the closed month it changes
    action: str
    at: datetime
    reason: str | None
    effect: list[tuple[str, str, Value, Value]]


@dataclass
class Report:
    scope_unit: Unit
    period: Period
    previous: Period
    values: dict[str, Value]
    before: dict[str, Value]
    quantiles: Quantiles
    rankings: list[Ranking]
    categories: list[tuple[Category, dict[str, Value], Counters]]
    made_at: datetime
    closed_at: datetime | None = None  # when the month closed (None: still open)
    adjustments: list[Adjustment] = field(default_factory=list)  # shown in this month


EFFECT_FIGURES = [*HEADLINE, "composite"]


def monthly(actor: Actor | None, query: Query, engine: Engine | None = None) -> Report:
    """The 通报 of the chosen month: for a closed month read from what it published alone (its
    counters, quantiles, names and settings; made at the moment it closed), so that it stays
    the same byte for byte whatever happens after; with the adjustments to closed months
    recorded in this month, in the reader's area."""
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        previous = ctx.period.previous(ctx.start_day)
        category_id = ctx.category.id if ctx.category is not None else None
        sums = figures.by_period(session, ctx.scope, [previous, ctx.period],
                                 category_id=category_id)
        quantiles = figures.closure_quantiles(session, ctx.scope, ctx.period.start,
                                              ctx.period.end, category_id=category_id)
        if ctx.scope.kind == UnitKind.community:
            lists = [rankings.rankings(actor, query, engine=engine)]
        else:
            lists = [rankings.rank(session, ctx, ctx.scope, level)
                     for level in access.ranking_levels(ctx.scope)]
        by_category = figures.totals(session, ctx.scope, ctx.period.start, ctx.period.end,
                                     by="category", category_id=category_id)
        categories = [(c, figures.evaluate(by_category.get(c.id, Counters()), ctx.weights),
                       by_category.get(c.id, Counters())) for c in access.categories(session)
                      if category_id is None or c.id == category_id]
        month = published.month_of(session, ctx.period.start, ctx.period.end)
        if month is not None:
            lists = [_as_published(session, month.label, r) for r in lists]
        return Report(ctx.scope, ctx.period, previous,
                      figures.evaluate(sums[ctx.period.label], ctx.weights),
                      figures.evaluate(sums[previous.label], ctx.weights), quantiles, lists,
                      categories, month.closed_at if month is not None else utcnow(),
                      month.closed_at if month is not None else None,
                      adjustments(session, ctx.scope, ctx.period.label))


def _as_published(session: Session, label: str, ranking: Ranking) -> Ranking:
    """The ranking with each unit under the name it had when the month closed."""
    names = {unit: (zh, (stored or {}).get("name_en")) for unit, zh, stored in session.exec(
        select(KpiMonthUnit.unit_id, KpiMonthUnit.unit_name, KpiMonthUnit.extras).where(
            KpiMonthUnit.label == label, KpiMonthUnit.category_id == 0,
            KpiMonthUnit.unit_id.in_([r.unit.id for r in ranking.rows]))).all()}

    def renamed(row: RankRow) -> RankRow:
        zh, en = names.get(row.unit.id, (None, None))
        if not zh:
            return row
        unit = Unit(**{**row.unit.model_dump(), "name_zh": zh, "name_en": en or row.unit.name_en})
        return replace(row, unit=unit)

    rows = [renamed(r) for r in ranking.rows]
    by_id = {r.unit.id: r for r in rows}
    return replace(ranking, rows=rows, red=[by_id.get(r.unit.id, r) for r in ranking.red],
                   black=[by_id.get(r.unit.id, r) for r in ranking.black])


def adjustments(session: Session, scope: Unit, label: str) -> list[Adjustment]:
    """The adjustments shown in month ``label`` for the cases of the scope's area (a community:
    its own cases; a department: the cases whose change touched its figures), oldest first,
    each with its effect on the published figures of the units it changed."""
    stmt = select(KpiAdjustment, Case.code).join(Case, Case.id == KpiAdjustment.case_id).where(
        KpiAdjustment.shown_in == label).order_by(KpiAdjustment.at, KpiAdjustment.id)
    if scope.kind == UnitKind.department:
        found = [(a, code) for a, code in session.exec(stmt).all()
                 if str(scope.id) in ((a.changes or {}).get("units") or {})]
    else:
        if scope.kind != UnitKind.community:
            stmt = stmt.where(KpiAdjustment.community_id.in_(select(Unit.id).where(
                Unit.kind == UnitKind.community, Unit.path.startswith(scope.path, autoescape=True))))
        else:
            stmt = stmt.where(KpiAdjustment.community_id == scope.id)
        found = list(session.exec(stmt).all())
    out = []
    for adjustment, code in found:
        month = session.get(KpiMonth, adjustment.label)
        w = (month.settings or {}).get("weights") if month is not None else None
        w = w or figures.weights(session)
        effect = []
        for unit_id, delta in ((adjustment.changes or {}).get("units") or {}).items():
            if scope.kind == UnitKind.department and unit_id != str(scope.id):
                continue
            if scope.kind != UnitKind.department and int(unit_id) != adjustment.community_id:
                continue
            kept = session.get(KpiMonthUnit, (adjustment.label, int(unit_id), 0))
            if kept is None:
                continue
            base = published.values(kept)
            moved = {k: v + delta.get(k, 0) for k, v in base.items()}
            old = figures.evaluate(figures.counters_of(base), w)
            new = figures.evaluate(figures.counters_of(moved), w)
            effect += [(kept.unit_name, key, old[key], new[key]) for key in EFFECT_FIGURES
                       if old[key].value != new[key].value]
        out.append(Adjustment(code, adjustment.label, adjustment.action, adjustment.at,
                              adjustment.reason, effect))
    return out


def effect_text(adjustment: Adjustment, lang: str) -> str:
    """"红星路社区 解决率 95.0% → 92.5%；…", or that no published figure changes."""
    parts = []
    for unit_name, key, old, new in adjustment.effect:
        kind = kind_of(key)
        suffix = "%" if kind == "rate" else ""
        parts.append(t("kpi.months.effect_line", lang, unit=unit_name,
                       figure=t(f"kpi.figure.{key}", lang),
                       before=_shown_text(old, kind, lang) + suffix if old.value is not None
                       else t("kpi.no_data", lang),
                       after=_shown_text(new, kind, lang) + suffix if new.value is not None
                       else t("kpi.no_data", lang)))
    return "；".join(parts) or t("kpi.months.effect_none", lang)


def _shown_text(value: Value, kind: str, lang: str) -> str:
    number = shown(value, kind) or 0
    return f"{number:,.0f}" if kind == "count" else f"{number:.1f}"


# ---------------------------------------------------------------- formatting shared with pages


def shown(value: Value, kind: str) -> float | None:
    """A figure as a table shows it: rates in per cent (1 decimal), hours to 1 decimal."""
    if value.value is None:
        return None
    if kind == "rate" or kind == "score":
        return round(value.value * 100, 1)
    if kind in ("hours", "yuan"):
        return round(value.value, 1)
    return round(value.value, 0)


def kind_of(key: str) -> str:
    """"rate", "hours", "count", "yuan" or "score" (the composite)."""
    figure = figures.BY_KEY.get(key)
    if figure is not None:
        return figure.kind
    extra = next((e for e in EXTRAS if e.key == key), None)
    return extra.kind if extra is not None else "score"


# ---------------------------------------------------------------- the workbook


HEADER = Font(bold=True)
TITLE = Font(bold=True, size=14)
RED_FILL = PatternFill("solid", fgColor="FDE2E1")
BLACK_FILL = PatternFill("solid", fgColor="E5E7EB")
DATE_FORMAT = "yyyy-mm-dd"
TIME_FORMAT = "yyyy-mm-dd hh:mm"
DECIMAL_FORMAT = "0.0"
WHOLE_FORMAT = "#,##0"
# Characters a file name may not hold on Windows, macOS or Linux.


def _cell(value: object) -> object:
    return neutralise(value) if isinstance(value, str) else value


def _sheet_title(text: str, used: set[str]) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique."""
    clean = "".join(ch for ch in text if ch not in "[]:*?/\\")[:31] or "Sheet"
    title, n = clean, 2
    while title in used:
        suffix = f" {n}"
        title, n = clean[:31 - len(suffix)] + suffix, n + 1
    used.add(title)
    return title


def _unit(key: str, lang: str) -> str:
    """The unit a figure's column header carries: "（%）", "（小时）", "（件）", "（次）"…: the
    figure's own where the catalog names one, else its kind's."""
    own = catalog(lang).get(f"kpi.report.unit.{key}")
    return own if own is not None else t(f"kpi.report.unit.{kind_of(key)}", lang)


def _write(sheet, row: int, column: int, value: object):  # noqa: ANN001, ANN202
    """One cell: text neutralised, numbers and dates as themselves with a number format."""
    cell = sheet.cell(row=row, column=column, value=_cell(value))
    if isinstance(value, datetime):
        cell.number_format = TIME_FORMAT
    elif isinstance(value, date):
        cell.number_format = DATE_FORMAT
    elif isinstance(value, float):
        cell.number_format = DECIMAL_FORMAT
    elif isinstance(value, int) and not isinstance(value, bool):
        cell.number_format = WHOLE_FORMAT
    return cell


def _table(sheet, top: int, header: list[str], rows: list[list[object]]) -> int:  # noqa: ANN001
    """The sheet's one table: a header at row ``top`` (frozen, with an autofilter over the
    table) and its rows; return the next free row."""
    for column, text in enumerate(header, start=1):
        _write(sheet, top, column, text).font = HEADER
    for offset, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            _write(sheet, top + offset, column, value)
    for column, text in enumerate(header, start=1):
        width = max([len(str(text))] + [len(str(r[column - 1])) for r in rows if column <= len(r)])
        sheet.column_dimensions[get_column_letter(column)].width = min(40, max(10, width * 1.6))
    sheet.freeze_panes = sheet.cell(row=top + 1, column=1)
    last = get_column_letter(len(header))
    sheet.auto_filter.ref = f"A{top}:{last}{top + max(1, len(rows))}"
    return top + len(rows) + 2


def _bar_chart(sheet, title: str, label_col: int, value_col: int, first: int, last: int,  # noqa: ANN001
               anchor: str) -> None:
    if last < first:
        return
    chart = BarChart()
    chart.type = "bar"
    chart.title = title
    chart.legend = None
    chart.height = max(6.0, 0.5 * (last - first + 1))
    chart.width = 16
    chart.add_data(Reference(sheet, min_col=value_col, min_row=first - 1, max_row=last),
                   titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=label_col, min_row=first, max_row=last))
    sheet.add_chart(chart, anchor)


def workbook(report: Report, lang: str) -> bytes:
    """The report as an .xlsx file: values only (text neutralised, numbers as numbers, dates as
    dates), one table a sheet with its header frozen and an autofilter, native charts."""
    def tr(key: str, **params: object) -> str:
        return t(key, lang, **params)

    def headed(key: str) -> str:
        return tr(f"kpi.figure.{key}") + _unit(key, lang)

    scope_name = name(report.scope_unit, lang)
    book = Workbook()
    used: set[str] = set()
    summary = book.active
    summary.title = _sheet_title(tr("kpi.report.sheet_summary"), used)
    summary.cell(row=1, column=1, value=_cell(tr("kpi.report.title", unit=scope_name,
                                                  period=report.period.label))).font = TITLE
    made = spreadsheet_time(report.made_at).replace(second=0)
    for column, value in enumerate((tr("kpi.report.start"), report.period.start,
                                    tr("kpi.report.end"), report.period.end,
                                    tr("kpi.report.previous"), report.previous.label,
                                    tr("kpi.report.made"), made), start=1):
        _write(summary, 2, column, value)
    rows = []
    for key in [*HEADLINE, "composite"]:
        now, before = report.values[key], report.before[key]
        kind = kind_of(key)
        change = None if now.value is None or before.value is None else \
            round((shown(now, kind) or 0) - (shown(before, kind) or 0), 1)
        rows.append([headed(key), shown(now, kind), shown(before, kind), change,
                     now.numerator if now.denominator is not None else None, now.denominator,
                     tr(f"kpi.def.{key}")])
    q = report.quantiles
    for key, value in (("median_hours", q.median_hours), ("p90_hours", q.p90_hours),
                       ("median_workdays", q.median_workdays)):
        rows.append([tr(f"kpi.closure.{key}"), _round(value), None, None, q.count, None,
                     tr("kpi.def.closure_quantiles")])
    next_row = _table(summary, 4, [tr("kpi.col.figure"), report.period.label, report.previous.label,
                                   tr("kpi.col.change"), tr("kpi.col.numerator"),
                                   tr("kpi.col.denominator"), tr("kpi.col.definition")], rows)
    summary.cell(row=next_row, column=1, value=_cell(tr("kpi.report.no_data_note")))

    # 上月结账后的调整: what changed in closed months since, on a sheet of its own (every sheet
    # is one filterable table), beside the summary.
    sheet = book.create_sheet(_sheet_title(tr("kpi.months.sheet_adjustments"), used))
    _table(sheet, 1, adjustment_header(lang),
           adjustment_rows(report, lang) or [[tr("kpi.months.adjustments_none")]])

    lists = book.create_sheet(_sheet_title(tr("kpi.report.sheet_lists"), used))
    listed_rows = [[tr(f"kpi.level.{ranking.level}"), tr(key), r.rank, name(r.unit, lang),
                    shown(r.values["composite"], "score")]
                   for ranking in report.rankings if not ranking.own_only
                   for listed, key in ((ranking.red, "kpi.rank.red"), (ranking.black, "kpi.rank.black"))
                   for r in listed]
    _table(lists, 1, [tr("kpi.report.col_level"), tr("kpi.col.list"), tr("kpi.col.rank"),
                      tr("kpi.col.unit"), headed("composite")], listed_rows)

    for ranking in report.rankings:
        sheet = book.create_sheet(_sheet_title(tr("kpi.report.sheet_ranking",
                                                  level=tr(f"kpi.level.{ranking.level}")), used))
        header = [tr("kpi.col.rank"), tr("kpi.col.unit"), *(headed(k) for k in RANKED_FIGURES),
                  tr("kpi.col.cases"), tr("kpi.col.list")]
        # An unranked unit has no rank (an empty cell, so the column sorts as numbers) and says
        # so in the list column.
        body = [[r.rank, name(r.unit, lang),
                 *(shown(r.values[k], kind_of(k)) for k in RANKED_FIGURES), r.cases,
                 tr("kpi.rank.red") if r.listed == RED else
                 tr("kpi.rank.black") if r.listed == BLACK else
                 tr("kpi.rank.unranked") if r.rank is None else ""] for r in ranking.rows]
        _table(sheet, 1, header, body)
        for offset, row in enumerate(ranking.rows, start=2):
            fill = RED_FILL if row.listed == RED else BLACK_FILL if row.listed == BLACK else None
            if fill is not None:
                for column in range(1, len(header) + 1):
                    sheet.cell(row=offset, column=column).fill = fill
        scored = sum(1 for r in ranking.rows if r.rank is not None)
        _bar_chart(sheet, tr("kpi.figure.composite"), 2, 3, 2, 1 + scored,
                   f"{get_column_letter(len(header) + 2)}2")

    sheet = book.create_sheet(_sheet_title(tr("kpi.report.sheet_categories"), used))
    header = [tr("kpi.col.category"), *(headed(k) for k in CATEGORY_FIGURES)]
    body = [[name(c, lang), *(shown(v[k], kind_of(k)) for k in CATEGORY_FIGURES)]
            for c, v, _ in report.categories]
    _table(sheet, 1, header, body)
    _bar_chart(sheet, tr("kpi.figure.reported"), 1, 2, 2, 1 + len(body),
               f"{get_column_letter(len(header) + 2)}2")

    return _saved(book, report.made_at)


def adjustment_header(lang: str) -> list[str]:
    return [t(f"kpi.months.col_{key}", lang) for key in ("case", "month", "at", "move", "reason",
                                                          "effect")]


def adjustment_rows(report: Report, lang: str) -> list[list[object]]:
    """上月结账后的调整: one row per adjustment shown in this month."""
    return [[a.case_code, a.label, spreadsheet_time(a.at), t(f"action.{a.action}", lang),
             a.reason or "", effect_text(a, lang)] for a in report.adjustments]


def _saved(book: Workbook, at: datetime) -> bytes:
    """The workbook's bytes, the same for the same content: its properties say it was made and
    last changed ``at`` (a closed month: when it closed), and so does each part of the file."""
    stamp = (at.astimezone(timezone.utc) if at.tzinfo else at).replace(tzinfo=None, microsecond=0)
    book.properties.created = stamp
    book.properties.modified = stamp
    raw = io.BytesIO()
    with ZipFile(raw, "w", ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(book, archive).save()
    local = china(at).timetuple()[:6]
    out = io.BytesIO()
    with ZipFile(raw) as source, ZipFile(out, "w", ZIP_DEFLATED) as target:
        for item in source.infolist():
            entry = ZipInfo(item.filename, date_time=max(local, (1980, 1, 1, 0, 0, 0)))
            entry.compress_type = ZIP_DEFLATED
            entry.external_attr = item.external_attr
            target.writestr(entry, source.read(item.filename))
    return out.getvalue()


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def file_name(report: Report, lang: str) -> str:
    """"月度通报-锦江区-2026-11.xlsx": what, whose and which month."""
    unit = file_safe(name(report.scope_unit, lang), "_").strip(" .") or report.scope_unit.code
    return f"{t('kpi.report.file_stem', lang)}-{unit}-{report.period.label}.xlsx"


def report_file(actor: Actor | None, query: Query, lang: str,
                engine: Engine | None = None) -> tuple[str, bytes]:
    """The file name and bytes of the monthly workbook for the reader's chosen unit."""
    report = monthly(actor, query, engine)
    return file_name(report, lang), workbook(report, lang)


def cases_workbook(actor: Actor | None, query: Query, lang: str, engine: Engine | None = None,
                   now: datetime | None = None) -> tuple[str, bytes]:
    """The cases behind the month's figures, a sheet per figure (lib.kpi.behind.case_sheets):
    each case with what it counts for, so that a unit can check every point of its score. Read
    from the cases as they stand now, in the reader's scope; the 通报 itself stays as published
    when its month has closed, and what changed since is in its adjustments."""
    now = now or utcnow()
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        sheets = behind.case_sheets(session, actor, ctx.scope, ctx.period, ctx.category,
                                    lang=lang, now=now)
        scope_name = name(ctx.scope, lang)
    book = Workbook()
    book.remove(book.active)
    used: set[str] = set()
    stamp = spreadsheet_time(now).replace(second=0, microsecond=0)
    for title, header, rows in sheets:
        sheet = book.create_sheet(_sheet_title(title, used))
        _table(sheet, 1, header, rows or [[t("behind.cases_file.none", lang)]])
    note = book.create_sheet(_sheet_title(t("behind.cases_file.about_sheet", lang), used))
    _table(note, 1, [t("behind.cases_file.about_col", lang)],
           [[t("behind.cases_file.about", lang, unit=scope_name, period=ctx.period.label)],
            [stamp]])
    raw = io.BytesIO()
    book.save(raw)
    unit = file_safe(scope_name, "_").strip(" .") or ctx.scope.code
    return f"{t('behind.cases_file.stem', lang)}-{unit}-{ctx.period.label}.xlsx", raw.getvalue()
