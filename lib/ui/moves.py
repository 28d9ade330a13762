"""Drawing a move's form from its record (lib.core.machine.Move): one widget per field, the
photo uploader when the move takes photos, labels from the catalog. Any machine's page uses it.

Catalog keys, after the machine's prefix (``Machine.labels``): ``action.<action>`` (the title
and the button), ``note.<action>`` (the note's label), ``form.<action>.<field>`` (every other
field); ``<labels>.<choice>`` for a choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from lib.core.machine import Field, Move
from lib.ui.page import Page
from lib.ui.widgets import localise_uploader

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "gif"]


@dataclass(frozen=True)
class Submitted:
    values: dict[str, object]
    files: list[tuple[str, bytes]]


def _label(page: Page, move: Move, spec: Field, prefix: str) -> str:
    key = f"note.{move.action}" if spec.name == "note" else f"form.{move.action}.{spec.name}"
    return page.t(prefix + key) + (" *" if spec.required else "")


def _widget(page: Page, move: Move, spec: Field, key: str, options: list,
            describe: Callable[[str, object], str], prefix: str) -> object:
    label = _label(page, move, spec, prefix)
    if spec.kind == "text":
        return st.text_area(label, max_chars=spec.max_len, key=f"{key}_{spec.name}")
    if spec.kind == "date":
        return st.date_input(label, value=None, key=f"{key}_{spec.name}")
    if spec.kind == "choice":
        return st.radio(label, list(spec.choices), index=None, horizontal=True,
                        format_func=lambda c: page.t(f"{spec.labels}.{c}"), key=f"{key}_{spec.name}")
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
              hint: str | None = None) -> Submitted | None:
    """The move's form; the values (by field name) and uploaded files once it is submitted.
    ``prefix``: the machine's catalog prefix; ``hint``: a line of text above the fields."""
    with st.form(key):
        if hint:
            st.caption(hint)
        values = {spec.name: _widget(page, move, spec, key, options.get(spec.name, []), describe,
                                     prefix)
                  for spec in move.fields if spec.name != "note"}
        uploads = None
        if move.photos and limits:
            uploads = st.file_uploader(
                page.t("case.result_photos", max=limits["max_count"], max_mb=limits["max_mb"]),
                accept_multiple_files=True, type=PHOTO_TYPES, key=f"{key}_photos")
            localise_uploader(page, max_mb=limits["max_mb"])
        note = move.field("note")
        if note is not None:
            values["note"] = _widget(page, move, note, key, [], describe, prefix)
        if not st.form_submit_button(page.t(prefix + "action." + move.action),
                                     type="primary" if primary else "secondary"):
            return None
    return Submitted(values, [(f.name, f.getvalue()) for f in (uploads or [])])
