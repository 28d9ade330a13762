"""Configuration from the environment, with defaults that let a fresh clone run."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DATA_DIR = ROOT / "data"
DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'app.db'}"
COOKIE_KEY_FILE = ROOT / ".streamlit" / "cookie_key.local"

# streamlit-authenticator's documented example keys; a token signed with one logs in anywhere.
KNOWN_WEAK_KEYS = {"some_key", "some_signature_key", "abcdef", "random_signature_key"}
MIN_COOKIE_KEY_BYTES = 32


class ConfigError(RuntimeError):
    pass


def _driver(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def database_url() -> str:
    """The database the app uses (on PostgreSQL, as a role that does not own the tables)."""
    return _driver(os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)


def migration_url() -> str:
    """The database as its owner, for migrations: ``MIGRATION_DATABASE_URL``, else the app's."""
    return _driver(os.environ.get("MIGRATION_DATABASE_URL", "").strip() or database_url())


def default_language() -> str:
    lang = os.environ.get("APP_LANGUAGE", "zh").strip().lower()
    return lang if lang in ("zh", "en") else "zh"


def cookie_key() -> str:
    """The key that signs login cookies: ``COOKIE_KEY`` or the local key file.

    Refuses the library's default key and any key shorter than 32 bytes.
    """
    key = os.environ.get("COOKIE_KEY", "")
    if not key and COOKIE_KEY_FILE.exists():
        key = COOKIE_KEY_FILE.read_text(encoding="utf-8").strip()
    check_cookie_key(key)
    return key


def check_cookie_key(key: str) -> None:
    if not key:
        raise ConfigError(
            "COOKIE_KEY is not set. Set it to a random string of at least 32 bytes, "
            "or run `python -m lib make-cookie-key` for a local demo key."
        )
    if key in KNOWN_WEAK_KEYS:
        raise ConfigError("COOKIE_KEY is a published example key; choose a random one.")
    if len(key.encode("utf-8")) < MIN_COOKIE_KEY_BYTES:
        raise ConfigError(f"COOKIE_KEY must be at least {MIN_COOKIE_KEY_BYTES} bytes long.")


def cookie_name() -> str:
    return os.environ.get("COOKIE_NAME", "safe_community_auth")


def cookie_expiry_days() -> float:
    try:
        return float(os.environ.get("COOKIE_EXPIRY_DAYS", "7"))
    except ValueError:
        return 7.0


def bcrypt_rounds() -> int:
    try:
        return max(4, min(16, int(os.environ.get("BCRYPT_ROUNDS", "12"))))
    except ValueError:
        return 12


DEFAULT_BASE_URL = "http://localhost:8501"


def app_base_url() -> str:
    """Where residents open the app (``APP_BASE_URL``), for the links in their SMS."""
    return (os.environ.get("APP_BASE_URL", "").strip() or DEFAULT_BASE_URL).rstrip("/")


def notice_log_path() -> Path:
    """Where the default sender writes the SMS it would send (``NOTICE_LOG``)."""
    return Path(os.environ.get("NOTICE_LOG", "").strip() or DATA_DIR / "notices.log")


def sms_gateway() -> str:
    """``SMS_GATEWAY``: ``module:factory`` of the SMS gateway; empty for the log file."""
    return os.environ.get("SMS_GATEWAY", "").strip()
