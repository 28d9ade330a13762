"""Users, roles, passwords, login throttling and session validity.

Passwords: bcrypt over a SHA-256 digest of the exact passphrase (bcrypt alone reads only the
first 72 bytes; nothing is stripped, so spaces at the ends count).
Throttling (lib.core.throttle, kind "login"): an account from one address, or an address, with
too many failures in the last window is refused until old failures age out; an account failing
from many addresses is slowed down, never locked (see ``login``).
Sessions and cookies: valid only if issued after the user's ``tokens_valid_after``, which moves
on logout and on password change.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import bcrypt
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from lib.core import config, settings, throttle
from lib.core.clock import as_utc
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, PermissionDenied, ValidationFailed
from lib.core.inputs import clean_text, parse_id, phone_digits
from lib.core.models import Role, UnitKind, utcnow
from lib.org.models import Unit, User, UserRole
from lib.org.units import Actor, get_unit, in_subtree, subtree

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,39}$")
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 256
DISPLAY_NAME_MAX = 60

# Failed logins count over 15 minutes: refused for one account from one address
# (setting login.pair_failure_limit) and for one address (login.address_failure_limit); one
# account from any addresses is slowed, never locked (login.slowdown_from, …_max_seconds).
THROTTLE_WINDOW = timedelta(minutes=15)

# Which kind of unit each role may sit in.
ROLE_UNIT_KINDS: dict[str, set[str]] = {
    Role.grid_worker: {UnitKind.community},
    Role.community_staff: {UnitKind.community},
    Role.street_staff: {UnitKind.street},
    Role.department_staff: {UnitKind.department},
    Role.district_staff: {UnitKind.district},
    Role.city_staff: {UnitKind.city},
    Role.inspector: {UnitKind.district, UnitKind.city},
    Role.reward_approver: {UnitKind.district, UnitKind.street},
    Role.leader: {UnitKind.city, UnitKind.district, UnitKind.street, UnitKind.community},
    Role.admin: {UnitKind.district, UnitKind.city},
    Role.sensitive_viewer: {UnitKind.district, UnitKind.city},
}
ALL_ROLES = [r.value for r in Role]


# ---------------------------------------------------------------- passwords


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(config.bcrypt_rounds())).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), password_hash.encode("ascii"))
    except (ValueError, TypeError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("an unknown user never matches this")


def validate_password(password: str) -> None:
    if not password:
        raise ValidationFailed("error.password_required")
    if len(password) < PASSWORD_MIN_CHARS:
        raise ValidationFailed("error.password_too_short", min=PASSWORD_MIN_CHARS)
    if len(password) > PASSWORD_MAX_CHARS:
        raise ValidationFailed("error.password_too_long", max=PASSWORD_MAX_CHARS)


def normalise_username(username: object) -> str:
    return username.strip().lower() if isinstance(username, str) else ""


def validate_username(username: str) -> None:
    if not username:
        raise ValidationFailed("error.username_required")
    if not USERNAME_RE.match(username):
        raise ValidationFailed("error.username_invalid")


# ---------------------------------------------------------------- login


def _keys(name: str, address: str) -> tuple[str, str, str]:
    """The throttle keys of a login: (account from this address, this address, the account)."""
    account = name or "-"  # every impossible user name counts as one
    return f"pair:{account}|{address}", f"addr:{address}", f"user:{account}"


def slowdown_seconds(account_failures: int) -> float:
    """The pause before answering a login for an account under attack from many addresses:
    nothing below ``login.slowdown_from`` failures, then one second per ten, at most
    ``login.slowdown_max_seconds``."""
    if account_failures < settings.get_int(None, "login.slowdown_from"):
        return 0.0
    return min(settings.get_float(None, "login.slowdown_max_seconds"), account_failures / 10)


def login(engine: Engine | None, username: object, password: object, address: str | None,
          *, now: datetime | None = None, sleep: Callable[[float], None] = time.sleep) -> User:
    """Check a login. Raises ``Throttled`` or ``ValidationFailed('error.login_failed')``.

    Throttling (docs/decisions.md): an account is refused *from an address* after 5 failures
    there since that address's last success for it, and an address is refused for every
    account after 20 (settings ``login.pair_failure_limit``, ``login.address_failure_limit``);
    both decay over 15 minutes. Failures from many addresses never lock the
    account: they slow every answer for it down (``slowdown_seconds``), so the owner, who knows
    the password, still gets in.

    The attempt is counted as a failure *before* the password is checked, in a short write
    transaction of its own (lib.core.throttle: counted and checked at once, so thirty guesses
    sent together meet the limit of five like thirty sent one by one); the bcrypt check runs
    with no session open; a success then forgives the attempt and clears the account's earlier
    failures. An unknown user costs one bcrypt check like a known one, so timing tells nothing.
    """
    now = now or utcnow()
    name = normalise_username(username if isinstance(username, str) else "")[:40]
    address = (address or "unknown")[:64]
    password = password if isinstance(password, str) else ""
    if not name or not password:
        raise ValidationFailed("error.login_missing")
    if not USERNAME_RE.match(name):
        name = ""  # cannot exist; checked like an unknown user below, never sent to SQL
    pair, by_address, account = _keys(name, address)
    with write_session(engine) as session:
        token = throttle.take(session, "login",
                              {pair: settings.get_int(None, "login.pair_failure_limit"),
                               by_address: settings.get_int(None, "login.address_failure_limit"),
                               account: None},
                              window=THROTTLE_WINDOW, now=now, error_key="error.login_throttled")
        user = session.exec(select(User).where(User.username == name)).first() if name else None
    pause = slowdown_seconds(token.before[account])
    if pause:
        sleep(pause)
    if len(password) > PASSWORD_MAX_CHARS:
        verify_password("x", _dummy_hash())
        ok = False
    elif user is None or not user.active:
        verify_password(password, _dummy_hash())  # as long as a known user's check
        ok = False
    else:
        ok = verify_password(password, user.password_hash)
    if not ok:
        raise ValidationFailed("error.login_failed")
    with write_session(engine) as session:
        throttle.forgive(session, token)
        throttle.reset(session, "login", [pair, account], window=THROTTLE_WINDOW, now=now)
    return user


def session_is_valid(session: Session, username: str | None, issued_at: datetime | None) -> User | None:
    """The user if a login issued at ``issued_at`` still holds (active, not logged out since)."""
    if not username or issued_at is None:
        return None
    user = session.exec(select(User).where(User.username == normalise_username(username))).first()
    if user is None or not user.active:
        return None
    if as_utc(issued_at) < as_utc(user.tokens_valid_after):
        return None
    return user


def end_sessions(session: Session, user_id: int, now: datetime | None = None) -> None:
    """Log the user out everywhere: every session and cookie issued before now stops working."""
    user = session.get(User, user_id)
    if user is not None:
        user.tokens_valid_after = now or utcnow()
        session.add(user)
        session.commit()


# ---------------------------------------------------------------- actors and permissions


def roles_of(session: Session, user_id: int) -> frozenset[str]:
    return frozenset(session.exec(select(UserRole.role).where(UserRole.user_id == user_id)).all())


def load_actor(session: Session, user: User) -> Actor:
    unit = get_unit(session, user.unit_id)
    return Actor(id=user.id, username=user.username, display_name=user.display_name,
                 unit_id=unit.id, unit_kind=unit.kind, unit_tier=unit.tier, unit_path=unit.path,
                 roles=roles_of(session, user.id))


def actor_by_username(session: Session, username: str) -> Actor:
    user = session.exec(select(User).where(User.username == normalise_username(username))).first()
    if user is None:
        raise NotFound("error.user_not_found")
    return load_actor(session, user)


def require_role(actor: Actor, *roles: str) -> None:
    if not actor.has(*roles):
        raise PermissionDenied("error.forbidden")


def check_role_fits_unit(role: str, unit: Unit) -> None:
    if role not in ROLE_UNIT_KINDS:
        raise ValidationFailed("error.role_unknown", role=role)
    if unit.kind not in ROLE_UNIT_KINDS[role]:
        raise ValidationFailed("error.role_unit_mismatch", role=role)


# ---------------------------------------------------------------- user administration


def _insert_user(session: Session, *, username: str, display_name: str, password: str,
                 unit: Unit, roles: list[str], phone: str | None) -> User:
    username = normalise_username(username)
    validate_username(username)
    display_name = clean_text(display_name, field="display_name", max_len=DISPLAY_NAME_MAX,
                              required=True, multiline=False)
    validate_password(password)
    roles = sorted(set(roles))
    if not roles:
        raise ValidationFailed("error.role_required")
    for role in roles:
        check_role_fits_unit(role, unit)
    if session.exec(select(User.id).where(User.username == username)).first() is not None:
        raise ValidationFailed("error.username_taken")
    # Stored as digits only: a report from this phone is a staff report, however it was typed.
    user = User(username=username, display_name=display_name, unit_id=unit.id,
                phone=phone_digits(phone), password_hash=hash_password(password))
    session.add(user)
    try:
        session.flush()
    except IntegrityError as err:  # the same name created at the same moment elsewhere
        session.rollback()
        raise ValidationFailed("error.username_taken") from err
    for role in roles:
        session.add(UserRole(user_id=user.id, role=role))
    session.flush()
    return user


def bootstrap_user(session: Session, *, username: str, display_name: str, password: str,
                   unit: Unit, roles: list[str], phone: str | None = None) -> User:
    """Create a user without an acting admin (command line, demo). Same validation."""
    return _insert_user(session, username=username, display_name=display_name, password=password,
                        unit=unit, roles=roles, phone=phone)


def create_user(session: Session, actor: Actor, *, username: str, display_name: str,
                password: str, unit_id: int, roles: list[str], phone: str | None = None) -> User:
    require_role(actor, Role.admin)
    unit = get_unit(session, unit_id)
    if not in_subtree(actor.unit_path, unit):
        raise PermissionDenied("error.out_of_scope")
    user = _insert_user(session, username=username, display_name=display_name,
                        password=password, unit=unit, roles=roles, phone=phone)
    session.commit()
    return user


def reset_password(session: Session, actor: Actor, *, user_id: int, new_password: str) -> None:
    require_role(actor, Role.admin)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("error.user_not_found")
    if not in_subtree(actor.unit_path, get_unit(session, user.unit_id)):
        raise PermissionDenied("error.out_of_scope")
    validate_password(new_password)
    user.password_hash = hash_password(new_password)
    user.tokens_valid_after = utcnow()
    session.add(user)
    session.commit()


def list_users(session: Session, actor: Actor) -> list[dict[str, object]]:
    """Users in the admin's subtree, with their unit and roles."""
    require_role(actor, Role.admin)
    rows = session.exec(
        select(User, Unit).join(Unit, Unit.id == User.unit_id)
        .where(Unit.path.startswith(actor.unit_path, autoescape=True))
        .order_by(Unit.path, User.username)
    ).all()
    role_rows = session.exec(select(UserRole)).all()
    roles: dict[int, list[str]] = {}
    for row in role_rows:
        roles.setdefault(row.user_id, []).append(row.role)
    return [
        {"id": user.id, "username": user.username, "display_name": user.display_name,
         "unit": unit, "roles": sorted(roles.get(user.id, [])), "active": user.active,
         "phone": user.phone}
        for user, unit in rows
    ]


# ---------------------------------------------------------------- what the pages call


def restore(username: object, issued_at: datetime | None, engine: Engine | None = None) -> Actor | None:
    """The actor of a login issued at ``issued_at``, if it still holds."""
    with read_session(engine) as session:
        user = session_is_valid(session, username if isinstance(username, str) else None, issued_at)
        return load_actor(session, user) if user is not None else None


def logout_everywhere(user_id: int, engine: Engine | None = None) -> None:
    with write_session(engine) as session:
        end_sessions(session, user_id)


@dataclass(frozen=True)
class UsersScreen:
    users: list[dict[str, object]]
    units: list[Unit]


def users_screen(actor: Actor, engine: Engine | None = None) -> UsersScreen:
    require_role(actor, Role.admin)
    with read_session(engine) as session:
        return UsersScreen(list_users(session, actor), subtree(session, get_unit(session, actor.unit_id)))


def add_user(actor: Actor, *, username: str, display_name: str, password: str, unit_id: int,
             roles: list[str], phone: str | None = None, engine: Engine | None = None) -> str:
    """Create a user as an admin; returns the stored user name."""
    with write_session(engine) as session:
        return create_user(session, actor, username=username, display_name=display_name,
                           password=password, unit_id=unit_id, roles=roles, phone=phone).username


def set_phone(actor: Actor, *, user_id: object, phone: object,
              engine: Engine | None = None) -> str | None:
    """An admin records a staff member's phone (digits only; empty clears it); returns what was
    stored. Reports from a staff phone earn no reward, and an approver never decides a claim
    from their own phone."""
    require_role(actor, Role.admin)
    digits = phone_digits(phone)
    with write_session(engine) as session:
        try:
            user = session.get(User, parse_id(user_id))
        except NotFound:
            user = None
        if user is None:
            raise NotFound("error.user_not_found")
        if not in_subtree(actor.unit_path, get_unit(session, user.unit_id)):
            raise PermissionDenied("error.out_of_scope")
        user.phone = digits
        session.add(user)
        return digits


def set_password(actor: Actor, *, user_id: int, new_password: str,
                 engine: Engine | None = None) -> None:
    with write_session(engine) as session:
        reset_password(session, actor, user_id=user_id, new_password=new_password)
