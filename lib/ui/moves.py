"""Drawing a move's form from its record (lib.core.machine.Move), and the version rule every
move form follows (``MoveForms``). Any machine's page uses it: the case page, reward approval,
and the reporter's rating, 催办 and claim on the tracking page.

A form is one widget per field, the photo uploader when the move takes photos, labels from the
catalog. Catalog keys, after the machine's prefix (``Machine.labels``): ``action.<action>`` (the
title and the button), ``note.<action>`` (the note's label), ``form.<action>.<field>`` (every
other field); ``<labels>.<choice>`` for a choice. A page may name other keys for a field's label
or the button (the reporter's words on the tracking page), used as the catalog writes them.
A text of at most ``ONE_LINE_MAX`` characters is one line, a longer one a text box.

**The version a move is sent with is the one the user first saw**: ``MoveForms`` records the
subject's version in the session, per subject and move, when the form is first drawn, and sends
that one, never the version read in the run that handles the submit (which would let any change
made meanwhile through). A lost race is answered with "this changed, reload" in the user's
language; reloading forgets the versions seen, so each form takes the subject as it is now, and
so does a move that went through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from lib.core.errors import DomainError, StaleObject
from lib.core.machine import Field, Move
from lib.ui.page import Page
from lib.ui.widgets import DATE_FORMAT, localise_uploader

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "gif"]
ONE_LINE_MAX = 200


@dataclass(frozen=True)
class Submitted:
    values: dict[str, object]
    files: list[tuple[str, bytes]]
    version: int | None = None  # the subject's version when the user first saw the form
    then_next: bool = False  # sent with the second button ("办理并打开下一件")


def _label(page: Page, move: Move, spec: Field, prefix: str, labels: dict[str, str]) -> str:
    if spec.name in labels:
        return page.t(labels[spec.name])
    key = f"note.{move.action}" if spec.name == "note" else f"form.{move.action}.{spec.name}"
    return page.t(prefix + key) + (" *" if spec.required else "")


def _widget(page: Page, move: Move, spec: Field, key: str, options: dict[str, list],
            describe: Callable[[str, object], str], prefix: str,
            labels: dict[str, str]) -> object:
    label = _label(page, move, spec, prefix, labels)
    if spec.kind == "text":
        if spec.max_len is not None and spec.max_len <= ONE_LINE_MAX:
            return st.text_input(label, max_chars=spec.max_len, key=f"{key}_{spec.name}")
        return st.text_area(label, max_chars=spec.max_len, key=f"{key}_{spec.name}")
    if spec.kind == "date":
        return st.date_input(label, value=None, key=f"{key}_{spec.name}", format=DATE_FORMAT)
    if spec.kind == "choice":
        # The choices lib offers this subject (a policy's payment methods), else the record's.
        choices = list(options[spec.name]) if spec.name in options else list(spec.choices)
        return st.radio(label, choices, index=None, horizontal=True,
                        format_func=lambda c: page.t(f"{spec.labels}.{c}"), key=f"{key}_{spec.name}")
    options = options.get(spec.name, [])
    if spec.kind == "unit":
        picked = st.selectbox(label, options, index=0 if spec.required and options else None,
                              format_func=lambda row: describe(spec.name, row),
                              placeholder=page.t("common.choose"), key=f"{key}_{spec.name}")
        return picked.id if picked is not None else None
    if spec.kind == "units":
        picked = st.multiselect(label, options, max_selections=spec.max_items,
                                format_func=lambda row: describe(spec.name, row),
                                placeholder=page.t("common.choose"), key=f"{key}_{spec.name}")
        return [row.id for row in picked]
    if spec.kind == "ref":
        picked = st.selectbox(label, options, index=None,
                              format_func=lambda row: describe(spec.name, row),
                              placeholder=page.t("common.choose"), key=f"{key}_{spec.name}")
        return picked.id if picked is not None else None
    raise ValueError(f"no widget for a {spec.kind!r} field")


def move_form(page: Page, move: Move, *, key: str, options: dict[str, list],
              describe: Callable[[str, object], str], primary: bool,
              limits: dict[str, int] | None = None, prefix: str = "",
              hint: str | None = None, labels: dict[str, str] | None = None,
              submit: str | None = None,
              extra: Callable[[], dict[str, object]] | None = None,
              also: str | None = None) -> Submitted | None:
    """The move's form; the values (by field name) and uploaded files once it is submitted.
    ``prefix``: the machine's catalog prefix; ``hint``: a line of text above the fields;
    ``labels``: field name → catalog key of its label; ``submit``: the button's catalog key;
    ``extra``: draws more inputs before the button (a proof) and returns their values;
    ``also``: the catalog key of a second button that sends the same form and says so
    (``Submitted.then_next``)."""
    labels = labels or {}
    with st.form(key, enter_to_submit=False):
        if hint:
            st.caption(hint)
        values = {spec.name: _widget(page, move, spec, key, options, describe, prefix, labels)
                  for spec in move.fields if spec.name != "note"}
        uploads = None
        if move.photos and limits:
            uploads = st.file_uploader(
                page.t("case.result_photos", max=limits["max_count"], max_mb=limits["max_mb"]),
                accept_multiple_files=True, type=PHOTO_TYPES, key=f"{key}_photos")
            localise_uploader(page, max_mb=limits["max_mb"])
        note = move.field("note")
        if note is not None:
            values["note"] = _widget(page, move, note, key, {}, describe, prefix, labels)
        if extra is not None:
            values.update(extra())
        sent = st.form_submit_button(page.t(submit or prefix + "action." + move.action),
                                     type="primary" if primary else "secondary")
        then_next = bool(also) and st.form_submit_button(page.t(also), type="secondary")
        if not (sent or then_next):
            return None
    return Submitted(values, [(f.name, f.getvalue()) for f in (uploads or [])],
                     then_next=then_next)


class MoveForms:
    """The move forms of one subject (a case, a claim) on a page, sent with the version the
    user first saw. ``subject`` names the kind ("case", "claim"), ``version`` is the subject's
    version as read in this run: a form drawn for the first time records it, later runs keep
    what was recorded."""

    def __init__(self, page: Page, subject: str, subject_id: int, version: int) -> None:
        self.page, self.version = page, version
        self._prefix = f"move_seen_{subject}_{subject_id}_"
        self._stale = f"move_stale_{subject}_{subject_id}"

    def seen(self, action: str) -> int:
        """The version the user first saw ``action``'s form with (recorded now if not yet)."""
        return st.session_state.setdefault(self._prefix + action, self.version)

    def forget(self) -> None:
        """Forget the versions seen: each form takes the subject as it is on its next draw."""
        for name in [k for k in st.session_state if str(k).startswith(self._prefix)]:
            del st.session_state[name]

    def stale_notice(self, reload_key: str) -> None:
        """After a lost race: "this changed, reload", and the button that reloads."""
        if not st.session_state.get(self._stale):
            return
        st.error(self.page.t("error.stale"))
        if st.button(self.page.t("case.reload"), key=reload_key, icon=":material/refresh:"):
            self.forget()
            st.session_state.pop(self._stale, None)
            st.rerun()

    def form(self, move: Move, **kwargs: object) -> Submitted | None:
        """``move_form`` of the move, its version recorded on the first draw and sent back."""
        version = self.seen(move.action)
        sent = move_form(self.page, move, **kwargs)  # type: ignore[arg-type]
        return None if sent is None else Submitted(sent.values, sent.files, version,
                                                   sent.then_next)

    def send(self, sent: Submitted, make: Callable[[int], object],
             done: str | Callable[[object], str | tuple[str, dict[str, object]]],
             then: Callable[[object], None] | None = None) -> None:
        """Make the move with the version seen: on success forget the versions, flash ``done``
        (a catalog key, or a key or a key and its parameters picked from what ``make``
        returned), run ``then`` with that
        result (say, open the next case) and rerun; a lost race marks the page stale and
        reruns (``stale_notice`` says so); any other refusal is shown here."""
        if sent.version is None:  # never fall back on the version read in this run
            raise ValueError("send a form drawn by MoveForms.form")
        try:
            result = make(sent.version)
        except StaleObject:
            st.session_state[self._stale] = True
            st.rerun()
        except DomainError as err:
            self.page.error(err)
            return
        self.forget()
        st.session_state.pop(self._stale, None)
        message = done(result) if callable(done) else done
        key, params = message if isinstance(message, tuple) else (message, {})
        self.page.flash(key, **params)
        if then is not None:
            then(result)
        st.rerun()
