"""Where a case is, for matching repeats: its address normalised (``place_key``) and the
distance between two map points (``distance_m``).

``place_key``: NFKC (full-width letters and digits become half-width), lower case, and only
CJK characters, letters and digits kept — whitespace and punctuation (Chinese punctuation
included: "，。、（）()-—·#号") are dropped, so "红星路 1 号" and "红星路１号" are one place.
"""

from __future__ import annotations

import math
import unicodedata

DROPPED = frozenset("号#")
EARTH_RADIUS_M = 6_371_008.8


def place_key(address: str | None) -> str | None:
    """The address normalised (None for no address, or one with nothing left to match on)."""
    if not address:
        return None
    text = unicodedata.normalize("NFKC", address).lower()
    kept = "".join(ch for ch in text if ch not in DROPPED and (ch.isalnum() or _cjk(ch)))
    return kept[:200] or None


def _cjk(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L") or "\u4e00" <= ch <= "\u9fff"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres between two points (degrees, WGS-84 sphere)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))
