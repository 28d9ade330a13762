"""The move engine: every state machine of the platform (a case, a reward claim, an inspection,
a joint-meeting decision) is a table of ``Move`` records run by one ``act``.

A move record says everything about one move: the states it starts from and the state it leads
to, who may make it (names the machine resolves, e.g. "owner", "handler"), an extra guard, its
effect, the form fields it takes (kind, required, limits), whether it takes photos, whether the
public timeline shows it, whether it needs a note, and whether it is an expected next step (the
page offers those first). Pages draw forms from the record and hold no rule.

``act`` locks the subject's row, checks scope, version, state, who and guard, validates the
fields, applies the effect and appends one numbered event; the number comes from a counter on
the subject's row, bumped in the same UPDATE that steps its version (never ``max(seq)+1``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, select

from lib.core.errors import NotFound, PermissionDenied, StaleObject, ValidationFailed
from lib.core.inputs import clean_text, parse_id
from lib.core.models import utcnow

NOTE_MAX = 1000

# Field kinds a page knows how to draw:
#   text      a multi-line text box (``max_len``)
#   date      a calendar day; lib turns it into the close of that working day, China time
#   choice    one of ``choices`` (labels: the catalog key ``<labels>.<choice>``), nothing preset
#   unit      one unit from the options lib offers for this subject
#   units     several units from the options (at most ``max_items``)
#   ref       one record (e.g. a case to merge into) from the options lib offers
#   photos    uploaded photos, checked and re-encoded by lib
FIELD_KINDS = {"text", "date", "choice", "unit", "units", "ref", "photos"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    required: bool = False
    max_len: int | None = None
    choices: tuple[str, ...] = ()
    labels: str = ""  # catalog prefix of the choices' labels
    max_items: int | None = None
    options: str = ""  # unit, units, ref: the name of the list lib offers (e.g. "dispatch_targets")


def note(required: bool = False, max_len: int = NOTE_MAX) -> Field:
    return Field("note", "text", required=required, max_len=max_len)


@dataclass
class Step:
    """What an effect works with: the open session, the subject (locked), who acts, when, the
    checked field values, and ``detail`` (facts written to the event as JSON)."""

    session: Session
    subject: Any
    actor: Any
    now: datetime
    values: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)
    to_state: str | None = None  # an effect may pick the state when the move allows several
    before: dict[str, Any] = field(default_factory=dict)  # what ``Machine.remember`` kept
    action: str = ""  # the move being made


def nothing(step: Step) -> None:
    """The effect of a move that only changes the state (and writes its event)."""


@dataclass(frozen=True)
class Move:
    action: str
    from_states: frozenset[str]
    to_state: str | None  # None: the state stays as it is
    who: frozenset[str]
    effect: Callable[[Step], None] = nothing
    guard: Callable[[Any, Any, Any], bool] | None = None  # (actor, subject, context) -> allowed
    fields: tuple[Field, ...] = ()
    photos: bool = False
    public: bool = False  # the reporter's timeline shows it
    expected: bool = False  # an expected next step: offered first
    also_to: frozenset[str] = frozenset()  # other states the effect may choose
    # What the move causes elsewhere, read by the modules that act on it:
    sms: bool = False  # the reporter hears by SMS of the state it leads to
    tells: tuple[tuple[str, str], ...] = ()  # (who, kind) of the units told in the app
    counts: str | None = None  # the assessment counter it feeds (a ``kpi_day`` column)
    involves: bool = True  # its actor has a hand in the subject (separation of duties)
    # What the move does to the facts the assessment reads (the machine's hooks apply them):
    commits: bool = False  # sets the first commitment (the first handling deadline)
    extends_commitment: bool = False  # moves it, when made before it expired
    resolves: bool = False  # the subject is found resolved now
    unresolves: bool = False  # it is no longer resolved
    wait: str | None = None  # the kind of wait it opens when it sets a response deadline

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def to_states(self, state: str) -> frozenset[str]:
        return frozenset({self.to_state or state}) | self.also_to


def move(action: str, from_states: Iterable[str] | None, to_state: str | None, who: str, *,
         effect: Callable[[Step], None] = nothing, guard: Callable | None = None,
         fields: Iterable[Field] = (), photos: bool = False, public: bool = False,
         expected: bool = False, also_to: Iterable[str] = (), sms: bool = False,
         tells: dict[str, str] | None = None, counts: str | None = None,
         involves: bool = True, commits: bool = False, extends_commitment: bool = False,
         resolves: bool = False, unresolves: bool = False, wait: str | None = None) -> Move:
    """A move record. ``from_states`` None: a move that starts a subject's history (``create``)
    or that another move writes on it (``append``); no user makes it through ``act``."""
    return Move(str(action), frozenset(from_states or ()), to_state, frozenset(who.split()),
                effect, guard, tuple(fields), photos, public, expected, frozenset(also_to), sms,
                tuple((tells or {}).items()), counts, involves, commits, extends_commitment,
                resolves, unresolves, wait)


@dataclass(frozen=True)
class Machine:
    """One state machine: its moves, how it resolves "who", how it loads and guards its subject,
    and where its events go.

    ``roles``: name → (actor, subject, context) -> bool; "public" and "system" are the actor
    None (the public pages and the scheduled tick).
    ``context``: facts a guard needs that are not on the subject row (read in the transaction).
    ``can_see``: whether the actor may load the subject at all (scope).
    ``event``: builds the event row: (subject, seq, action, step, from_state, from_unit) -> row.
    ``after``: runs after every effect, before the row is written (e.g. a derived flag).
    ``recorded``: runs once the event row exists (e.g. attach photos to it).
    ``remember``: what the event needs from the subject as it was before the move.
    """

    name: str
    model: type
    moves: dict[str, Move]
    roles: dict[str, Callable[[Any, Any, Any], bool]]
    event: Callable[..., Any]
    can_see: Callable[[Session, Any, Any], bool]
    context: Callable[[Session, Any, datetime], Any] = lambda session, subject, now: None
    after: Callable[[Step], None] = lambda step: None
    recorded: Callable[[Step, Any], None] = lambda step, event: None
    remember: Callable[[Any], dict] = lambda subject: {}
    not_found: str = "error.not_found"
    labels: str = ""  # catalog prefix: "" for cases ("action.accept"), "claim." for claims
    groups: dict[str, frozenset[str]] = field(default_factory=dict)  # named sets of states

    def group(self, name: str) -> frozenset[str]:
        """A named group of states ("open", "resolved" …); an unknown name raises KeyError."""
        return self.groups[name]

    def moves_into(self, states: Iterable[str]) -> frozenset[str]:
        """The moves a user makes that can lead into one of ``states`` from another state."""
        wanted = frozenset(states)
        return frozenset(m.action for m in self.moves.values() if m.from_states and (
            ({m.to_state} if m.to_state else set()) | m.also_to) & wanted)

    def where(self, test: Callable[[Move], object]) -> dict[str, Move]:
        """The moves whose record passes ``test`` (e.g. ``lambda m: m.counts``)."""
        return {a: m for a, m in self.moves.items() if test(m)}

    def allowed(self, actor: Any, subject: Any, context: Any = None) -> list[str]:
        """The moves ``actor`` may make now; expected next steps first, then in table order."""
        found = [m for m in self.moves.values() if self._may(actor, subject, m, context)]
        return [m.action for m in sorted(found, key=lambda m: not m.expected)]

    def may(self, actor: Any, subject: Any, action: str, context: Any = None) -> bool:
        move_ = self.moves.get(action)
        return move_ is not None and self._may(actor, subject, move_, context)

    def _may(self, actor: Any, subject: Any, move_: Move, context: Any) -> bool:
        if not move_.from_states or subject.state not in move_.from_states:
            return False
        if actor is None:
            if not move_.who & {"public", "system"}:
                return False
        elif not any(self.roles[name](actor, subject, context) for name in move_.who
                     if name not in ("public", "system")):
            return False
        return move_.guard is None or bool(move_.guard(actor, subject, context))


def lock(session: Session, model: type, subject_id: object, not_found: str = "error.not_found") -> Any:
    """The row, locked for this transaction (``FOR UPDATE`` on PostgreSQL; SQLite's write
    transaction already holds the database), as the lock holder sees it."""
    try:
        row_id = parse_id(subject_id)
    except NotFound:
        raise NotFound(not_found) from None
    row = session.exec(select(model).where(model.id == row_id).with_for_update()).first()
    if row is None:
        raise NotFound(not_found)
    session.refresh(row)
    return row


def next_seq(session: Session, model: type, subject_id: int) -> int:
    """Take the next event number of a subject that is not otherwise changed (an event added
    to a case by another case's move): one UPDATE of its counter, which also locks its row."""
    return session.exec(update(model).where(model.id == subject_id)  # type: ignore[call-overload]
                        .values(event_seq=model.event_seq + 1)
                        .returning(model.event_seq)).scalar_one()


def check_fields(move_: Move, params: dict[str, Any], *, relaxed: bool = False) -> dict[str, Any]:
    """The move's fields from ``params``: unknown names refused, text cleaned, required present
    (``relaxed``: the tick, which has nobody to write a note)."""
    unknown = set(params) - {f.name for f in move_.fields} - ({"photos"} if move_.photos else set())
    unknown = {name for name in unknown if params[name] not in (None, "", (), [])}
    if unknown:
        if "photos" in unknown:
            raise ValidationFailed("error.photos_not_here")
        raise ValidationFailed("error.field_unknown", field=sorted(unknown)[0])
    values: dict[str, Any] = {}
    for spec in move_.fields:
        value = params.get(spec.name)
        required = spec.required and not relaxed
        if spec.kind == "text":
            try:
                value = clean_text(value, field=spec.name, max_len=spec.max_len or NOTE_MAX,
                                   required=required)
            except ValidationFailed as err:
                if err.key == "error.fields_required":
                    raise ValidationFailed("error.note_required" if spec.name == "note"
                                           else "error.fields_required", fields=[spec.name]) from None
                raise
        elif spec.kind == "choice":
            if value in (None, ""):
                value = None
            elif value not in spec.choices:
                raise ValidationFailed("error.choice_invalid", field=spec.name)
        elif spec.kind == "units":
            value = list(dict.fromkeys(value or ()))
            if spec.max_items is not None and len(value) > spec.max_items:
                raise ValidationFailed("error.too_many_cohandlers", max=spec.max_items)
        elif spec.kind == "date":
            if value is not None and not isinstance(value, (date, datetime)):
                raise ValidationFailed("error.date_invalid")
        elif value in ("",):
            value = None
        if required and value in (None, [], ()):
            raise ValidationFailed(_required_key(spec), fields=[spec.name])
        values[spec.name] = value
    values["photos"] = list(params.get("photos") or ()) if move_.photos else []
    return values


def _required_key(spec: Field) -> str:
    return {"date": "error.date_required", "choice": "error.rating_required"
            if spec.name == "rating" else "error.choice_required",
            "unit": "error.lead_required"}.get(spec.kind, "error.fields_required")


def act(session: Session, machine: Machine, actor: Any, subject_id: object, action: str, *,
        version: int, now: datetime | None = None, system: bool = False,
        **params: Any) -> Any:
    """Make ``action`` on the subject as ``actor`` (None: the public, or the tick with
    ``system=True``); ``version`` is the version the user saw. Returns the subject."""
    now = now or utcnow()
    move_ = machine.moves.get(action)
    if move_ is None or not move_.from_states:
        raise ValidationFailed("error.action_unknown")
    subject = lock(session, machine.model, subject_id, machine.not_found)
    if actor is not None and not machine.can_see(session, actor, subject):
        raise NotFound(machine.not_found)
    if subject.version != version:
        raise StaleObject("error.stale")
    if actor is None and ("system" if system else "public") not in move_.who:
        raise PermissionDenied("error.forbidden")
    if subject.state not in move_.from_states:
        raise ValidationFailed("error.wrong_state")
    context = machine.context(session, subject, now)
    if not machine._may(actor, subject, move_, context):
        raise PermissionDenied("error.forbidden")
    values = check_fields(move_, params, relaxed=system)
    from_state = subject.state
    step = Step(session, subject, actor, now, values, before=machine.remember(subject),
                action=action)
    with session.no_autoflush:  # one UPDATE of the subject: its changes, version and counter
        move_.effect(step)
        to_state = step.to_state or move_.to_state or from_state
        if to_state not in move_.to_states(from_state):
            raise RuntimeError(f"{machine.name}.{action} led to {to_state}")
        subject.state = to_state
        subject.updated_at = now
        machine.after(step)
        subject.event_seq = subject.event_seq + 1
    session.add(subject)
    try:
        session.flush()  # the version column turns a lost race into StaleDataError here
    except StaleDataError:
        raise StaleObject("error.stale") from None
    event = machine.event(subject, subject.event_seq, action, step, from_state)
    session.add(event)
    session.flush()
    machine.recorded(step, event)
    return subject


def _step(session: Session, machine: Machine, subject: Any, actor: Any, now: datetime,
          values: dict[str, Any] | None, detail: dict[str, Any] | None,
          before: dict[str, Any], action: str = "") -> Step:
    return Step(session, subject, actor, now, dict(values or {}), dict(detail or {}),
                before=before, action=action)


def create(session: Session, machine: Machine, subject: Any, action: str, *, actor: Any,
           now: datetime, state: str | None = None, values: dict[str, Any] | None = None,
           detail: dict[str, Any] | None = None) -> Any:
    """Start a subject's history with the creating move ``action`` (a move with no from-states):
    the subject takes the move's state (``state``: one of those it allows) and its first event
    is built by the machine's event builder, then the machine's hooks run (photos, notices).

    ``subject`` is a new row, added here, or one the caller has just inserted with a plain
    INSERT for speed (its state already the move's, its event counter at 1)."""
    move_ = machine.moves.get(action)
    if move_ is None or move_.from_states or move_.to_state is None:
        raise ValueError(f"{machine.name}.{action} does not start a history")
    state = state or move_.to_state
    if state not in move_.to_states(move_.to_state):
        raise ValueError(f"{machine.name}.{action} cannot lead to {state}")
    if getattr(subject, "id", None) is None:
        subject.state, subject.event_seq = state, 1
        session.add(subject)
        session.flush()
    elif subject.state != state or subject.event_seq != 1:
        raise RuntimeError(f"{machine.name} {subject.id} was not inserted as {action} makes it")
    step = _step(session, machine, subject, actor, now, values, detail, before={},
                 action=action)
    event = machine.event(subject, 1, action, step, None)
    session.add(event)
    session.flush()
    machine.recorded(step, event)
    return subject


def append(session: Session, machine: Machine, subject_id: int, action: str, *, actor: Any,
           now: datetime, detail: dict[str, Any] | None = None) -> Any:
    """Write an event of ``action`` (a move no user makes, with no state of its own) on a
    subject that another subject's move concerns, e.g. "a report joined this case" when a
    report is merged into it. It takes the subject's next number, which locks its row; the
    state stays. No hook runs: the move that causes it tells whom it must."""
    move_ = machine.moves.get(action)
    if move_ is None or move_.from_states or move_.to_state is not None:
        raise ValueError(f"{machine.name}.{action} is not written on another subject")
    seq = next_seq(session, machine.model, subject_id)
    subject = session.get(machine.model, subject_id)
    session.refresh(subject)
    step = _step(session, machine, subject, actor, now, None, detail,
                 before=machine.remember(subject), action=action)
    event = machine.event(subject, seq, action, step, subject.state)
    session.add(event)
    session.flush()
    return event
