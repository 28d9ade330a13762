"""Photo checks: size cap, real image (magic bytes and a full decode under a lowered pixel
limit), re-encoded as JPEG without EXIF, so no GPS position or camera data is ever stored.

The pixel limit is checked from the header before decoding: a 17 KiB PNG that claims
12000×12000 pixels is refused without allocating its ~550 MiB.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image, ImageOps
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lib.core.db import read_session
from lib.core.errors import ValidationFailed
from lib.core.settings import get_int


class PhotoKind(StrEnum):
    """What a case's photo shows (``Attachment.kind``)."""

    report = "report"  # the problem, as reported or when reopened
    result = "result"  # the handler's result


MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
}
LONG_SIDE = 2048


@dataclass(frozen=True)
class Photo:
    data: bytes
    mime: str
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def _format_from_magic(data: bytes) -> str | None:
    for magic, fmt in MAGIC.items():
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_photo(data: bytes, *, max_bytes: int, max_pixels: int, name: str = "") -> Photo:
    """The photo re-encoded, or ``ValidationFailed`` saying what is wrong with it."""
    if len(data) > max_bytes:
        raise ValidationFailed("error.photo_too_large", name=name, max_mb=max_bytes // (1024 * 1024))
    fmt = _format_from_magic(data)
    if fmt is None:
        raise ValidationFailed("error.photo_not_image", name=name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ValidationFailed("error.photo_too_many_pixels", name=name)
                image.load()
                image = ImageOps.exif_transpose(image)
                if image.mode not in ("RGB", "L"):
                    background = Image.new("RGB", image.size, "white")
                    rgba = image.convert("RGBA")
                    background.paste(rgba, mask=rgba.getchannel("A"))
                    image = background
                image.thumbnail((LONG_SIDE, LONG_SIDE))
                out = io.BytesIO()
                image.save(out, format="JPEG", quality=85, optimize=True)
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationFailed("error.photo_too_many_pixels", name=name) from None
    except Exception:  # any decoder failure means: not a usable image
        raise ValidationFailed("error.photo_not_image", name=name) from None
    encoded = out.getvalue()
    return Photo(data=encoded, mime="image/jpeg", sha256=hashlib.sha256(encoded).hexdigest())


def check_photos(files: list[tuple[str, bytes]], *, max_count: int, max_bytes: int,
                 max_pixels: int) -> list[Photo]:
    if len(files) > max_count:
        raise ValidationFailed("error.photo_too_many", max=max_count)
    return [check_photo(data, max_bytes=max_bytes, max_pixels=max_pixels, name=name)
            for name, data in files]


def photo_limits(session: Session) -> dict[str, int]:
    """The configured caps (settings ``photo.max_count``, ``photo.max_bytes``, ``photo.max_pixels``)."""
    return {"max_count": get_int(session, "photo.max_count"),
            "max_bytes": get_int(session, "photo.max_bytes"),
            "max_pixels": get_int(session, "photo.max_pixels")}


def upload_limits(engine: Engine | None = None) -> dict[str, int]:
    """The photo limits lib enforces, for the upload widgets' captions."""
    with read_session(engine) as session:
        limits = photo_limits(session)
    return {**limits, "max_mb": limits["max_bytes"] // (1024 * 1024)}


def checked_photos(engine: Engine | None, files: list[tuple[str, bytes]]) -> list[Photo]:
    """Uploaded files as re-encoded photos, under the configured count, size and pixel caps.
    Decoding runs outside any transaction."""
    if not files:
        return []
    with read_session(engine) as session:
        limits = photo_limits(session)
    return check_photos(files, **limits)
