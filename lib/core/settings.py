"""Tunable numbers, each declared once below: its type, its default, and whether the database
may override it (docs/decisions.md, "Settings").

A key the database may override is read from the ``setting`` table when a row holds it, else
from its declaration; ``load_defaults`` writes the declared default of each such key that has no
row yet (a value an administrator changed stays). A key the database may not override — the
limits that guard a secret against guessing: login and tracking throttles, how long a one-time
code lives — has its declared value, whatever a row says: whoever can write the table (the app's
own database role can) must not be able to switch a throttle off. Such a value changes with a
release.

Reading is cheap: a database value is cached per process for 30 s (lib.core.refcache; loading
reference data clears it), a declared one is a dictionary look-up. An unknown key raises
``SettingError``; so does asking ``get_int`` for a text. A database value that does not read as
its type is ignored (the declared default applies, with a warning in the log) and named by
``python -m lib check-config``. Tests pin values for the process with ``overriding``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlmodel import Session, select

from lib.core.models import Setting
from lib.core.refcache import cached

_log = logging.getLogger(__name__)


class SettingError(ValueError):
    """An unknown key, a value of the wrong type, or a database override of a key that takes
    none."""


_CLOCK = r"([01]?[0-9]|2[0-3]):[0-5][0-9]"
# kind: (the Python type a value has, a pattern the stored text must match, what it is called)
KINDS: dict[str, tuple[type, re.Pattern[str], str]] = {
    "int": (int, re.compile(r"-?[0-9]{1,18}"), "a whole number"),
    "float": (float, re.compile(r"-?([0-9]{1,12}(\.[0-9]{0,12})?|\.[0-9]{1,12})([eE][-+]?[0-9]{1,3})?"),
              "a decimal number"),
    "text": (str, re.compile(r"[^\x00]{0,2000}", re.DOTALL), "text"),
    "clock": (str, re.compile(_CLOCK), 'a time of day, "HH:MM"'),
    "clock_span": (str, re.compile(rf"(\s*{_CLOCK}\s*-\s*{_CLOCK}\s*)?"),
                   'a span of the day, "HH:MM-HH:MM", or nothing'),
}


@dataclass(frozen=True)
class Declared:
    key: str
    kind: str
    default: int | float | str
    database: bool  # may the ``setting`` table override it
    about: str


def _d(key: str, kind: str, default: int | float | str, about: str, *, database: bool = True) -> Declared:
    return Declared(key, kind, default, database, about)


DECLARED: dict[str, Declared] = {d.key: d for d in [
    # The tick
    _d("auto_call_up_hours.community", "int", 24,
       "hours after a community's missed deadline before the tick calls the case up (0: off)"),
    _d("auto_call_up_hours.street", "int", 0, "the same for a street (0: off)"),
    _d("auto_call_up_hours.district", "int", 0, "the same for a district (0: off)"),
    # Public intake
    _d("intake.per_phone_per_hour", "int", 5, "public reports from one phone in an hour"),
    _d("intake.per_address_per_hour", "int", 20, "public reports from one network address in an hour"),
    _d("intake.duplicate_days", "int", 30, "how far back the similar-case hint looks, in days"),
    _d("intake.duplicate_radius_m", "int", 300,
       "how near a similar case must be, in metres, when both have a map point"),
    _d("photo.max_bytes", "int", 5 * 2 ** 20, "the largest photo, in bytes"),
    _d("photo.max_pixels", "int", 24_000_000, "the most pixels a photo may claim before it is decoded"),
    _d("photo.max_count", "int", 6, "photos per report or result"),
    # Cases
    _d("deadline.close_of_day", "clock", "17:30", "when a working day ends, China time"),
    _d("cases.merge_window_days", "int", 90,
       "how old an open case may be and still be offered to merge into, in days"),
    _d("cases.extend_max_days", "int", 90,
       "how far ahead an extension (or a request for one) may reach, in days"),
    _d("cases.park_max_days", "int", 366, "how far ahead a parked case's review date may be, in days"),
    _d("cases.hurry_after_hours", "int", 24,
       "hours after a report before its reporter is offered 催办, unless a deadline was missed sooner"),
    # Notices
    _d("notices.quiet_hours", "clock_span", "22:00-08:00",
       "no SMS to residents in these hours, China time (empty: none)"),
    _d("notices.max_attempts", "int", 5, "tries before an SMS is given up"),
    _d("notices.retry_seconds", "int", 60, "the first wait before an SMS is tried again (then doubled)"),
    # Assessment
    _d("kpi.month_start_day", "int", 1, "the first day of an assessment month (1-28)"),
    _d("kpi.weight_response", "float", 0.1, "the response rate's weight in the composite score"),
    _d("kpi.weight_resolution", "float", 0.5, "the resolution rate's weight in the composite score"),
    _d("kpi.weight_satisfaction", "float", 0.4, "the satisfaction rate's weight in the composite score"),
    _d("kpi.basic_satisfied_factor", "float", 0.9, "what a 基本满意 counts for in the satisfaction rate"),
    _d("kpi.min_cases_to_rank", "int", 5, "cases a unit needs in the period to be ranked"),
    _d("kpi.list_size", "int", 5, "units on the red list and on the black list"),
    _d("kpi.spike_min_cases", "int", 5, "the fewest reports in a week that can be a spike"),
    _d("kpi.spike_sigma", "int", 2, "standard deviations above the 8 weeks before that make a spike"),
    _d("kpi.repeat_place_min", "int", 3, "reports at one place in 90 days that make it a repeat place"),
    _d("kpi.long_parked_days", "int", 30, "days parked after which a case is listed as long parked"),
    _d("kpi.close_after_workdays", "int", 5,
       "working days after an assessment month ends before its figures close and are published"),
    _d("kpi.repeat_distance_m", "int", 50,
       "metres within which two located reports of one category are at the same place (repeats)"),
    # Guessing secrets: fixed by the release, never by the database
    _d("login.pair_failure_limit", "int", 5,
       "failed logins for one account from one address in 15 minutes before that address is refused it",
       database=False),
    _d("login.address_failure_limit", "int", 20,
       "failed logins from one address, any accounts, in 15 minutes before it is refused",
       database=False),
    _d("login.slowdown_from", "int", 10,
       "failed logins for one account from any addresses in 15 minutes before its answers slow down",
       database=False),
    _d("login.slowdown_max_seconds", "float", 5.0, "the longest such pause, in seconds", database=False),
    _d("tracking.failures_per_code", "int", 5,
       "failed tracking proofs for one code in an hour", database=False),
    _d("tracking.failures_per_address", "int", 20, "failed tracking proofs from one address in an hour",
       database=False),
    _d("tracking.codes_per_case", "int", 5,
       "SMS codes asked for one tracking code in an hour", database=False),
    _d("tracking.codes_per_address", "int", 20,
       "SMS codes asked from one address in an hour", database=False),
    _d("tracking.code_minutes.view", "int", 30, "how long an SMS code for viewing a case lives, in minutes",
       database=False),
    _d("tracking.code_minutes.rate", "int", 10, "the same for rating", database=False),
    _d("tracking.code_minutes.hurry", "int", 10, "the same for 催办", database=False),
    _d("tracking.code_minutes.claim", "int", 10, "the same for claiming a reward", database=False),
    _d("tracking.held_minutes", "int", 15,
       "how long a reporter who proved a move is not asked again in that browser session, in minutes",
       database=False),
]}

_pinned: dict[str, int | float | str] = {}


def declared(key: str) -> Declared:
    try:
        return DECLARED[key]
    except KeyError:
        raise SettingError(f"unknown setting {key!r} (declared in lib/core/settings.py)") from None


def parse(key: str, raw: object) -> int | float | str:
    """``raw`` (text from the database, or a value) as the type ``key`` is declared with;
    ``SettingError`` naming the key, the value and the type when it is not one."""
    spec = declared(key)
    python_type, pattern, called = KINDS[spec.kind]
    if isinstance(raw, str):
        text = raw if spec.kind == "text" else raw.strip()
        if pattern.fullmatch(text):
            return python_type(text)
    elif python_type is int and type(raw) is int:
        return raw
    elif python_type is float and type(raw) in (int, float):
        return float(raw)  # type: ignore[arg-type]
    raise SettingError(f"setting {key}: {str(raw)[:60]!r} is not {called}")


def defaults() -> dict[str, int | float | str]:
    """Every key's declared default."""
    return {key: spec.default for key, spec in DECLARED.items()}


def get(session: Session | None, key: str) -> int | float | str:
    """The value of ``key``: pinned by a test, else the database's (for a key it may override),
    else the declared default. ``session`` may be None for a key the database may not override."""
    spec = declared(key)
    if key in _pinned:
        return _pinned[key]
    if not spec.database:
        return spec.default
    if session is None:
        raise SettingError(f"setting {key} may be changed in the database: read it with a session")

    def load() -> int | float | str:
        row = session.get(Setting, key)
        if row is None:
            return spec.default
        try:
            return parse(key, row.value)
        except SettingError as err:
            _log.warning("%s; the default %r applies", err, spec.default)
            return spec.default

    return cached(session, "setting", key, load)


def _typed(session: Session | None, key: str, python_type: type) -> object:
    if KINDS[declared(key).kind][0] is not python_type:
        raise SettingError(f"setting {key} is {KINDS[declared(key).kind][2]}, "
                           f"not read as {python_type.__name__}")
    return get(session, key)


def get_int(session: Session | None, key: str) -> int:
    return _typed(session, key, int)  # type: ignore[return-value]


def get_float(session: Session | None, key: str) -> float:
    return _typed(session, key, float)  # type: ignore[return-value]


def get_str(session: Session | None, key: str) -> str:
    return _typed(session, key, str)  # type: ignore[return-value]


def load_defaults(session: Session) -> int:
    """A row with the declared default for each key the database may override and has none."""
    added = 0
    for key, spec in DECLARED.items():
        if spec.database and session.get(Setting, key) is None:
            session.add(Setting(key=key, value=str(spec.default)))
            added += 1
    session.flush()
    return added


def store(session: Session, key: str, value: object) -> None:
    """Write a database override of ``key``, checked against its declaration; refused for an
    unknown key, a key the database may not override, or a value of the wrong type."""
    spec = declared(key)
    if not spec.database:
        raise SettingError(f"setting {key} is fixed by the release; the database may not override it")
    typed = parse(key, value)
    row = session.get(Setting, key) or Setting(key=key, value="")
    row.value = str(typed)
    session.add(row)
    session.flush()


def problems(session: Session) -> list[str]:
    """What is wrong with the ``setting`` table's rows: unknown keys, overrides of keys the
    database may not override, values that do not read as their type (``check-config``)."""
    found = []
    for row in session.exec(select(Setting).order_by(Setting.key)).all():
        spec = DECLARED.get(row.key)
        if spec is None:
            found.append(f"setting {row.key}: unknown; the row is ignored")
        elif not spec.database:
            found.append(f"setting {row.key}: fixed by the release; the row ({row.value[:60]!r}) "
                         f"is ignored")
        else:
            try:
                parse(row.key, row.value)
            except SettingError as err:
                found.append(f"{err}; the default {spec.default!r} applies")
    return found


@contextmanager
def overriding(values: dict[str, int | float | str]) -> Iterator[None]:
    """For tests: ``values`` win over the database and the declarations in this process until
    the block ends; each is checked against its declaration."""
    checked = {key: parse(key, value) for key, value in values.items()}
    before = dict(_pinned)
    _pinned.update(checked)
    try:
        yield
    finally:
        _pinned.clear()
        _pinned.update(before)
