"""Admin: the users of my subtree; create a user; reset a password; record a staff phone."""

import pandas as pd
import streamlit as st

from lib.core.errors import DomainError
from lib.org import auth
from lib.ui.page import setup_page
from lib.ui.text import md_escape

page = setup_page("admin_users")
with page.guard():
    st.title(page.t("page.admin_users"))
    page.show_flash()

    screen = auth.users_screen(page.actor)
    users, units = screen.users, screen.units

    def unit_name(unit) -> str:
        return f"{page.name(unit)} ({unit.code})"

    frame = pd.DataFrame([{
        page.t("users.username"): u["username"],
        page.t("users.display_name"): u["display_name"],
        page.t("users.unit"): unit_name(u["unit"]),
        page.t("users.roles"): "、".join(page.t("role." + r) for r in u["roles"]),
        page.t("users.phone"): u["phone"] or "",
    } for u in users])
    st.caption(page.t("users.count", count=len(users)))
    st.dataframe(frame, hide_index=True, width="stretch")

    left, right = st.columns(2)
    with left, st.form("admin_users_create", clear_on_submit=False, enter_to_submit=False):
        st.subheader(page.t("users.create"))
        username = st.text_input(page.t("users.username"), max_chars=40)
        display_name = st.text_input(page.t("users.display_name"), max_chars=60)
        password = st.text_input(page.t("users.password"), type="password", max_chars=256)
        unit = st.selectbox(page.t("users.unit"), units, format_func=unit_name)
        roles = st.multiselect(page.t("users.roles"), auth.ALL_ROLES, placeholder=page.t("common.choose"),
                               format_func=lambda r: page.t("role." + r))
        phone = st.text_input(page.t("users.phone"), max_chars=20, help=page.t("users.phone_hint"))
        if st.form_submit_button(page.t("users.create_submit"), type="primary"):
            try:
                created = auth.add_user(page.actor, username=username, display_name=display_name,
                                        password=password, unit_id=unit.id, roles=roles,
                                        phone=phone)
                st.success(page.t("users.created", username=md_escape(created)))
            except DomainError as err:
                page.error(err)

    with right, st.form("admin_users_reset", clear_on_submit=True, enter_to_submit=False):
        st.subheader(page.t("users.reset"))
        target = st.selectbox(page.t("users.username"), users,
                              format_func=lambda u: f"{u['username']} · {u['display_name']}")
        new_password = st.text_input(page.t("users.new_password"), type="password", max_chars=256)
        if st.form_submit_button(page.t("users.reset_submit")):
            try:
                auth.set_password(page.actor, user_id=target["id"], new_password=new_password)
                st.success(page.t("users.reset_done", username=md_escape(target["username"])))
            except DomainError as err:
                page.error(err)

    with st.form("admin_users_phone", enter_to_submit=False):
        st.subheader(page.t("users.phone_set"))
        st.caption(page.t("users.phone_hint"))
        holder = st.selectbox(page.t("users.username"), users, key="admin_users_phone_user",
                              format_func=lambda u: f"{u['username']} · {u['display_name']}")
        staff_phone = st.text_input(page.t("users.phone"), max_chars=20, key="admin_users_phone_value")
        if st.form_submit_button(page.t("users.phone_submit")):
            try:
                stored = auth.set_phone(page.actor, user_id=holder["id"], phone=staff_phone)
            except DomainError as err:
                page.error(err)
            else:  # drawn again so that the table shows the phone
                page.flash("users.phone_done" if stored else "users.phone_cleared",
                           username=md_escape(holder["username"]))
                st.rerun()
