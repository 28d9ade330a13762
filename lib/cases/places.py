"""Where a case is: its address normalised into a key, and the distance between two map points.

Two reports of one place are written in many ways (全角/半角, spaces, "号" or not, Chinese or
ASCII punctuation); ``place_key`` keeps only what names the place — Chinese characters, letters
and digits — so that "红星路１２号（南门）" and "红星路12号 南门" match. The assessment's repeat
rate (lib.kpi) matches a place by this key, or by two map points within a set distance
(``distance_m``).
"""

from __future__ import annotations

import math
import unicodedata

PLACE_KEY_MAX = 200  # Case.place_key's length
# Characters that only separate or decorate an address: dropped along with every punctuation
# mark, symbol and space Unicode knows. "号" (number) is written or left out at will.
_NOISE = frozenset("号#＃№")
EARTH_RADIUS_M = 6_371_000


def place_key(address: str | None) -> str:
    """The address as a key: NFKC (full-width to half-width), lower case, only CJK characters,
    letters and digits kept (whitespace, punctuation incl. Chinese "，。、（）—·" and "号"
    dropped). "" for no address."""
    if not address:
        return ""
    text = unicodedata.normalize("NFKC", address).lower()
    kept = [ch for ch in text if ch not in _NOISE and unicodedata.category(ch)[0] in "LN"]
    return "".join(kept)[:PLACE_KEY_MAX]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points in degrees (haversine)."""
    dlat = math.radians(lat2 - lat1)
    dlon = math.radians(lon2 - lon1)
    a = math.sin(dlat / 2) ** 2 + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) \
        * math.sin(dlon / 2) ** 2
    return EARTH_RADIUS_M * 2 * math.asin(math.sqrt(min(1.0, a)))
