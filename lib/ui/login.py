"""Login around streamlit-authenticator.

The library draws the form and keeps the cookie; three of its seams are replaced so that its
gaps are closed (docs/decisions.md, "Login around streamlit-authenticator"):

- the credential check goes to ``lib.org.auth.login``: users from the database, the exact
  passphrase (the library strips spaces), throttling per account and address, equal timing for
  unknown users;
- the cookie is encoded and decoded here: it carries the login's issue time (``iat``); a
  tampered token (``alg: none``, bad signature, garbage) or one without an issue time is "not
  logged in", never an error, and a token issued before the user's last logout or password
  change is refused.

Session keys: the library's ``authentication_status``/``username``/``name``, and our
``auth_login_at`` (when this session's login was issued) and ``auth_error`` (message key).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import streamlit as st
import streamlit_authenticator as stauth

from lib.core import config, netaddr
from lib.core.errors import DomainError
from lib.core.i18n import t
from lib.org import auth
from lib.org.units import Actor
from lib.ui.menu import language_query, return_target

AUTH_KEYS = ("authentication_status", "username", "name", "email", "roles")


def client_address() -> str:
    """The client's address as the throttles count it (lib.core.netaddr): the websocket's peer,
    or behind the trusted proxies the client they name in ``X-Forwarded-For``.

    Streamlit hides a loopback peer (``st.context.ip_address`` is None for ``127.0.0.1`` and
    ``::1``) and also answers None when there is no request at all (AppTest); a request has
    headers, so a None peer with headers is the loopback a local proxy connects from."""
    try:
        peer = st.context.ip_address
        headers = st.context.headers
    except Exception:  # no request context, e.g. AppTest
        return netaddr.UNKNOWN
    if peer is None:
        if not len(headers):
            return netaddr.UNKNOWN
        peer = "127.0.0.1"
    return netaddr.client_address(peer, headers.get_all("X-Forwarded-For"))


def _mark_logged_in(user_id: int, username: str, name: str, issued_at: datetime) -> None:
    st.session_state["authentication_status"] = True
    st.session_state["username"] = username
    st.session_state["name"] = name
    st.session_state["auth_login_at"] = issued_at
    st.session_state["auth_user_id"] = user_id
    st.session_state.pop("auth_error", None)


def _check_login(username: str | None = None, password: str | None = None, *_args: Any,
                 token: dict | None = None, **_kwargs: Any) -> bool | None:
    """Replaces the library controller's ``login``: it receives the raw form values."""
    if token is not None:
        restored = auth.restore(token.get("username"), token.get("issued_at"))
        if restored is not None:
            _mark_logged_in(restored.id, restored.username, restored.display_name,
                            token["issued_at"])
        return None
    try:
        user = auth.login(None, username, password, client_address())
    except DomainError as err:
        st.session_state["authentication_status"] = False
        st.session_state["auth_error"] = (err.key, err.params)
        return False
    _mark_logged_in(user.id, user.username, user.display_name, datetime.now(timezone.utc))
    # The library sets the cookie now, but the rerun that follows may drop that component
    # before the browser runs it; the next runs set it again until the browser answers.
    st.session_state["auth_set_cookie"] = {}
    return True


# A cookie issued this far in the future (clock skew between app servers) is still believed.
COOKIE_SKEW_SECONDS = 60


def encode_cookie(username: str, issued_at: datetime, exp_date: float, key: str) -> str:
    """The login cookie: the user, when the login was issued (``iat``) and when the cookie
    ends. The issue time travels in the cookie: derived from the expiry and the expiry setting,
    lowering the setting made a cookie copied before a logout look issued after it."""
    return jwt.encode({"username": username, "iat": issued_at.timestamp(), "exp_date": exp_date},
                      key, algorithm="HS256")


def decode_cookie(raw: str | None, key: str, expiry_days: float,
                  now: float | None = None) -> dict | None:
    """The payload of a login cookie we issued, or None for anything else: a bad signature, no
    issue time (a cookie from before the issue time was kept in it), an issue time in the
    future, or a cookie past its own end or older than the expiry setting allows now."""
    if not raw or len(raw) > 4096:
        return None
    try:
        # PyJWT refuses an ``iat`` in the future by itself; the leeway is our skew.
        payload = jwt.decode(raw, key, algorithms=["HS256"], leeway=COOKIE_SKEW_SECONDS)
    except Exception:  # every malformed token is simply "not logged in"
        return None
    username, exp, iat = payload.get("username"), payload.get("exp_date"), payload.get("iat")
    if not isinstance(username, str) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (exp, iat)):
        return None
    now = time.time() if now is None else now
    if exp <= now or iat > now + COOKIE_SKEW_SECONDS or now >= iat + expiry_days * 86400:
        return None
    return {"username": username, "exp_date": exp,
            "issued_at": datetime.fromtimestamp(iat, tz=timezone.utc)}


def _get_cookie() -> dict | None:
    if st.session_state.get("logout"):
        return None
    try:
        raw = st.context.cookies.get(config.cookie_name())
    except Exception:
        raw = None
    return decode_cookie(raw, config.cookie_key(), config.cookie_expiry_days())


def authenticator() -> stauth.Authenticate:
    """The library, built only on runs that need it, and once per run (its cookie component has
    a fixed key): it renders that component, which reports the browser's cookies back a moment
    later and so reruns the page. A logged-in page needs none of that (its login comes from the
    session, or from the request's cookie)."""
    if st.session_state.get("_authenticator") is not None:
        return st.session_state["_authenticator"]
    instance = stauth.Authenticate(
        {"usernames": {}}, cookie_name=config.cookie_name(), cookie_key=config.cookie_key(),
        cookie_expiry_days=config.cookie_expiry_days(), auto_hash=False, login_sleep_time=0,
    )
    instance.authentication_controller.login = _check_login
    instance.cookie_controller.get_cookie = _get_cookie
    model = instance.cookie_controller.cookie_model
    # The library's token holds only the user and the expiry; ours adds the login's issue time.
    model._token_encode = lambda: encode_cookie(
        st.session_state["username"], st.session_state["auth_login_at"], model.exp_date,
        config.cookie_key())
    st.session_state["_authenticator"] = instance
    return instance


def current_actor() -> Actor | None:
    """Restore the login from the session or the request's cookie and return the actor, or None.

    A session whose login was issued before the user's last logout or password change, or
    whose user is gone or inactive, is logged out here. The cookie component is drawn only to
    set the cookie after a login or delete it after a logout.
    """
    st.session_state["_authenticator"] = None  # a new run: no component drawn yet
    # A misspelt TRUSTED_PROXIES stops every page with its message, as a weak cookie key does,
    # instead of surfacing only when someone first logs in or reports.
    netaddr.trusted_proxies()
    if st.session_state.get("auth_delete_cookie"):
        _delete_cookie()
    if not st.session_state.get("authentication_status"):
        token = _get_cookie()
        if token is not None:
            _check_login(token=token)
    if not st.session_state.get("authentication_status"):
        return None
    if st.session_state.get("auth_set_cookie") is not None:
        _set_cookie()
    actor = auth.restore(st.session_state.get("username"), st.session_state.get("auth_login_at"))
    if actor is None:
        _clear()
    return actor


# Runs after a login that draw the cookie again while the browser has not answered that it set
# it (a browser that refuses cookies never answers; the session stays logged in all the same).
SET_ATTEMPTS = 20


def _set_cookie() -> None:
    """Set the login cookie after a login, run after run, until the browser's cookie component
    answers that it ran. A component drawn on a run that a page switch or the cookie
    component's own report cuts short may never reach the browser; on a busy machine the first
    two tries both were lost, and the next reload asked for the password again. The token and
    its expiry are made once, so the component keeps its arguments (and so its identity and its
    answer) from run to run."""
    pending = st.session_state["auth_set_cookie"]
    days = config.cookie_expiry_days()
    if not days:
        st.session_state.pop("auth_set_cookie", None)
        return
    if "token" not in pending:
        expires = datetime.now() + timedelta(days=days)
        pending.update(attempt=0, expires=expires.isoformat(), token=encode_cookie(
            st.session_state["username"], st.session_state["auth_login_at"],
            expires.timestamp(), config.cookie_key()))
    manager = authenticator().cookie_controller.cookie_model.cookie_manager
    done = manager.cookie_manager(
        method="set", cookie=config.cookie_name(), value=pending["token"], key="auth_cookie_set",
        options={"path": "/", "expires": pending["expires"], "sameSite": "strict"},
        default=False)
    pending["attempt"] += 1
    if done or pending["attempt"] >= SET_ATTEMPTS:
        st.session_state.pop("auth_set_cookie", None)


DELETE_ATTEMPTS = 5


def _delete_cookie() -> None:
    """Delete the login cookie after a logout, run after run, until the cookie component reports
    that the browser no longer has it: a delete drawn on a run that the component's own report
    reruns away may never reach the browser (the server refuses the old cookie anyway)."""
    manager = authenticator().cookie_controller.cookie_model.cookie_manager
    reported = manager.cookies or {}
    attempt = st.session_state.get("auth_delete_attempt", 0)
    if (reported and config.cookie_name() not in reported) or attempt >= DELETE_ATTEMPTS:
        st.session_state.pop("auth_delete_cookie", None)
        st.session_state.pop("auth_delete_attempt", None)
        return
    st.session_state["auth_delete_attempt"] = attempt + 1
    try:
        manager.delete(config.cookie_name(), key=f"delete_{attempt}")
    except KeyError:
        pass  # the component has not reported the browser's cookies yet: deleted all the same


def _clear() -> None:
    for key in AUTH_KEYS:
        st.session_state[key] = None
    for key in ("auth_login_at", "auth_user_id", "auth_set_cookie"):
        st.session_state.pop(key, None)


def login_form(lang: str) -> None:
    """The login form (drawn by the library, labels from our catalog) and its error message."""
    instance = authenticator()
    instance.login(location="main", fields={
        "Form name": t("login.title", lang), "Username": t("login.username", lang),
        "Password": t("login.password", lang), "Login": t("login.submit", lang),
    })
    error = st.session_state.get("auth_error")
    if error and not st.session_state.get("authentication_status"):
        key, params = error
        st.error(t(key, lang, **params))
    if st.session_state.get("authentication_status"):
        return_to(lang)
        st.rerun()


def return_to(lang: str) -> None:
    """After a login, open the page it was asked for (``app.py?next=case&id=5``) in ``lang``;
    nothing when the query names none of our pages (lib/ui/menu.py checks it). The login cookie
    is set on that page's run, as it would be on the home page's."""
    target = return_target(st.query_params)
    if target is not None:
        spec, params = target
        st.switch_page(spec.path, query_params={**params, **language_query(lang)} or None)


def logout(actor: Actor) -> None:
    """End every session of this user (server side), then drop the cookie and session keys."""
    auth.logout_everywhere(actor.id)
    # The cookie is deleted on the next run (``auth_delete_cookie``), because the page switch
    # after logout would drop a delete rendered now, and an identical delete rendered twice is
    # not run again by the browser.
    _clear()
    st.session_state["logout"] = True
    st.session_state["auth_delete_cookie"] = True
