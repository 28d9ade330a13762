"""Community boundaries for the district map: read, measure and (for the demo) generate them.

Boundaries are kept as GeoJSON in ``data/geo/``, one file per district, named by the district
code (``data/geo/510104.geojson``): a FeatureCollection with one Polygon or MultiPolygon feature
per community, keyed by ``properties.code`` (the community's unit code), WGS-84 lon/lat.

The demo district's file is made by ``generate`` (``write_demo`` writes it): plausible shapes
laid out as a grid of street blocks around Jinjiang, not surveyed boundaries. A real district
replaces the file with its own boundaries (features keyed by community unit code, WGS-84
lon/lat). Nothing is fetched from the internet at run time.

Standard library only, so that it can be used and tested without the drawing libraries. Areas
and centroids are planar, in degrees: good for drawing and for placing points, not for km².
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from lib.core import config

GEO_DIR = config.ROOT / "data" / "geo"
ORG_UNITS = config.ROOT / "data" / "org_units.json"
DEMO_SEED = 510104
# The demo district's box (lon, lat): roughly Chengdu's Jinjiang district.
DEMO_BOX = (104.06, 30.57, 104.16, 30.66)
DEMO_CELLS = 4  # cells per side of a street block, more when a street has more communities
JITTER = 0.3  # how far a lattice vertex may move, as a share of its cell
BLOCK_SPREAD = 0.3  # street blocks' widths and heights vary by up to ± half of this
DECIMALS = 6
_CODE = re.compile(r"^[A-Za-z0-9_-]+$")

Ring = list[tuple[float, float]]


# ---- reading ---------------------------------------------------------------------------------


def load_boundaries(district_code: str, directory: Path | None = None) -> dict | None:
    """The district's FeatureCollection from ``<directory>/<code>.geojson``, or None if absent.

    Raises ValueError naming the file and the feature if the file is not a FeatureCollection of
    Polygon/MultiPolygon features that each carry a distinct ``properties.code``.
    """
    if not _CODE.match(district_code):
        raise ValueError(f"Not a district code: {district_code!r}")
    path = (directory or GEO_DIR) / f"{district_code}.geojson"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    _check(data, path)
    return data


def _check(data: object, path: Path) -> None:
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError(f"{path}: not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise ValueError(f"{path}: the FeatureCollection has no list of features")
    seen: set[str] = set()
    for n, feature in enumerate(features):
        where = f"{path}: feature {n}"
        if not isinstance(feature, dict):
            raise ValueError(f"{where} is not an object")
        code = (feature.get("properties") or {}).get("code")
        if not isinstance(code, str) or not code:
            raise ValueError(f"{where} has no properties.code (the community's unit code)")
        where = f"{path}: feature {n} ({code})"
        if code in seen:
            raise ValueError(f"{where}: the code appears twice")
        seen.add(code)
        geometry = feature.get("geometry") or {}
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if kind not in ("Polygon", "MultiPolygon"):
            raise ValueError(f"{where} has geometry {kind!r}; only Polygon and MultiPolygon are drawn")
        polygons = geometry.get("coordinates")
        polygons = [polygons] if kind == "Polygon" else polygons
        if not isinstance(polygons, list) or not polygons or not all(
                isinstance(rings, list) and rings and all(_is_ring(r) for r in rings) for rings in polygons):
            raise ValueError(f"{where}: its {kind} coordinates are not rings of 4 or more [lon, lat]")


def _is_ring(ring: object) -> bool:
    return isinstance(ring, list) and len(ring) >= 4 and all(
        isinstance(p, list) and len(p) >= 2 and all(isinstance(v, (int, float)) for v in p[:2])
        for p in ring)


# ---- measuring -------------------------------------------------------------------------------


def _polygons(feature: dict) -> list[list[Ring]]:
    """The feature's polygons, each a list of rings (outer first, then holes) of (lon, lat)."""
    geometry = feature["geometry"]
    polygons = geometry["coordinates"]
    if geometry["type"] == "Polygon":
        polygons = [polygons]
    return [[[(float(p[0]), float(p[1])) for p in ring] for ring in rings] for rings in polygons]


def _open(ring: Ring) -> Ring:
    return ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring


def _signed_area_and_moment(ring: Ring) -> tuple[float, float, float]:
    """Shoelace: signed area (positive counter-clockwise) and its first moments about x and y.

    Works relative to the first vertex so that lon/lat far from 0 lose no precision.
    """
    pts = _open(ring)
    if len(pts) < 3:
        return 0.0, 0.0, 0.0
    x0, y0 = pts[0]
    a = mx = my = 0.0
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]):
        x1, y1, x2, y2 = x1 - x0, y1 - y0, x2 - x0, y2 - y0
        cross = x1 * y2 - x2 * y1
        a += cross
        mx += (x1 + x2) * cross
        my += (y1 + y2) * cross
    a /= 2
    return a, mx / 6 + a * x0, my / 6 + a * y0


def signed_area(ring: Ring | list[list[float]]) -> float:
    """The ring's signed area (shoelace): positive when it runs counter-clockwise."""
    return _signed_area_and_moment([(float(p[0]), float(p[1])) for p in ring])[0]


def area(feature: dict) -> float:
    """The feature's area (outer rings minus holes), in square degrees."""
    return sum(abs(signed_area(rings[0])) - sum(abs(signed_area(h)) for h in rings[1:])
               for rings in _polygons(feature))


def outline(feature: dict) -> list[tuple[list[float], list[float]]]:
    """One closed ring per polygon (its outer ring) as (xs, ys), for ``go.Scatter(fill="toself")``.

    Holes are left out: filled by ``toself`` they would hide nothing, and whatever lies in a hole
    is a feature of its own.
    """
    out = []
    for rings in _polygons(feature):
        ring = _open(rings[0])
        xs = [p[0] for p in ring] + [ring[0][0]]
        ys = [p[1] for p in ring] + [ring[0][1]]
        out.append((xs, ys))
    return out


def centroid(feature: dict) -> tuple[float, float]:
    """The area-weighted centroid (lon, lat) of the feature's polygons (holes subtracted)."""
    total = sx = sy = 0.0
    for rings in _polygons(feature):
        for n, ring in enumerate(rings):
            a, mx, my = _signed_area_and_moment(ring)
            sign = 1 if (a >= 0) == (n == 0) else -1  # outer rings add, holes take away
            total += sign * a
            sx += sign * mx
            sy += sign * my
    if total == 0:
        points = [p for rings in _polygons(feature) for p in _open(rings[0])]
        return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)
    return sx / total, sy / total


def _points(item: dict) -> Iterator[tuple[float, float]]:
    for feature in item["features"] if "features" in item else [item]:
        for rings in _polygons(feature):
            for ring in rings:
                yield from ring


def bounds(collection: dict) -> tuple[float, float, float, float]:
    """min lon, min lat, max lon, max lat of a FeatureCollection (or of one feature)."""
    xs, ys = zip(*_points(collection))
    return min(xs), min(ys), max(xs), max(ys)


def _in_ring(ring: Ring, x: float, y: float) -> bool:
    inside = False
    pts = _open(ring)
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def contains(feature: dict, lon: float, lat: float) -> bool:
    """Whether the point lies in the feature (ray casting: in an outer ring and in none of its
    holes). A point exactly on an edge may go either way."""
    return any(_in_ring(rings[0], lon, lat) and not any(_in_ring(h, lon, lat) for h in rings[1:])
               for rings in _polygons(feature))


def community_at(lon: float, lat: float, directory: Path | None = None) -> str | None:
    """The code of the community whose boundary holds the point, from every district's file;
    None outside all of them, or where boundaries overlap there (no guess is made). A file that
    is not a district's boundaries is skipped with a warning in the log: a resident's tap on
    "use my location" must not fail because of it."""
    found = set()
    for path in sorted((directory or GEO_DIR).glob("*.geojson")):
        try:
            collection = _boundaries_file(str(path), path.stat().st_mtime_ns)
        except (OSError, ValueError) as err:
            logging.getLogger(__name__).warning("boundaries skipped: %s", err)
            continue
        for feature in (collection or {}).get("features", []):
            if contains(feature, lon, lat):
                found.add(str(feature["properties"]["code"]))
    return found.pop() if len(found) == 1 else None


@lru_cache(maxsize=32)
def _boundaries_file(path: str, _mtime_ns: int) -> dict | None:
    """A district's file read once per version of it (its modification time is in the key)."""
    where = Path(path)
    return load_boundaries(where.stem, where.parent)


def random_point(feature: dict, rng: random.Random, tries: int = 10_000) -> tuple[float, float]:
    """A uniformly random point (lon, lat) inside the feature: drawn in its bounding box until
    one falls inside. The same seeded ``rng`` gives the same points."""
    x0, y0, x1, y1 = bounds(feature)
    for _ in range(tries):
        x, y = x0 + (x1 - x0) * rng.random(), y0 + (y1 - y0) * rng.random()
        if contains(feature, x, y):
            return x, y
    code = (feature.get("properties") or {}).get("code")
    raise ValueError(f"No point found inside feature {code!r} in {tries} tries: is it empty?")


# ---- the demo district -----------------------------------------------------------------------


def _children(node: dict, kind: str) -> list[dict]:
    return sorted((c for c in node.get("children") or [] if c.get("kind") == kind),
                  key=lambda c: c["code"])


def _grid(count: int) -> tuple[int, int]:
    """Columns and rows of the smallest near-square grid that holds ``count`` blocks."""
    cols = math.ceil(math.sqrt(count))
    return cols, math.ceil(count / cols)


def _spans(start: float, end: float, parts: int, rng: random.Random) -> list[float]:
    """``parts + 1`` edges from start to end, the parts' sizes varying by ± BLOCK_SPREAD / 2."""
    sizes = [1 + BLOCK_SPREAD * (rng.random() - 0.5) for _ in range(parts)]
    edges, run = [start], 0.0
    for size in sizes[:-1]:
        run += size
        edges.append(start + (end - start) * run / sum(sizes))
    return edges + [end]


def _axis(edges: list[float], cells: int) -> tuple[list[float], list[float], list[bool]]:
    """A lattice axis: each line's position, its cell's size, and whether it is a block edge."""
    pos, size, fixed = [], [], []
    for a, b in zip(edges, edges[1:]):
        step = (b - a) / cells
        for k in range(cells):
            pos.append(a + k * step)
            size.append(step)
            fixed.append(k == 0)
    return pos + [edges[-1]], size + [size[-1]], fixed + [True]


def _merge(regions: list[tuple[int, int, int, int]], target: int,
           rng: random.Random) -> list[tuple[int, int, int, int]]:
    """Merge neighbouring cell rectangles (row0, row1, col0, col1) until ``target`` remain:
    side by side in a row first, then, once each row is one region, row above row; the smallest
    pair first, ties drawn by ``rng``."""
    regions = list(regions)
    while len(regions) > target:
        pairs = [(a, b) for a in regions for b in regions
                 if a[:2] == b[:2] and b[2] == a[3] + 1]
        if not pairs:
            pairs = [(a, b) for a in regions for b in regions
                     if a[2:] == b[2:] and b[0] == a[1] + 1]
        size = {(a, b): (max(a[1], b[1]) - a[0] + 1) * (max(a[3], b[3]) - a[2] + 1) for a, b in pairs}
        smallest = [p for p in pairs if size[p] == min(size.values())]
        a, b = smallest[int(rng.random() * len(smallest))]
        regions.remove(a)
        regions.remove(b)
        regions.append((min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])))
    return regions


def _ring(lattice: list[list[tuple[float, float]]], r0: int, r1: int, c0: int, c1: int) -> list:
    """The closed, counter-clockwise outline of cells rows r0..r1, columns c0..c1 (from the
    south-west): along the south edge, up the east, back along the north, down the west."""
    south = [lattice[r0][c] for c in range(c0, c1 + 2)]
    east = [lattice[r][c1 + 1] for r in range(r0 + 1, r1 + 2)]
    north = [lattice[r1 + 1][c] for c in range(c1, c0 - 1, -1)]
    west = [lattice[r][c0] for r in range(r1, r0, -1)]
    ring = south + east + north + west
    return [list(p) for p in ring + ring[:1]]


def generate(district: dict, seed: int = DEMO_SEED) -> dict:
    """Plausible demo boundaries for a district node of ``data/org_units.json``.

    The streets (in code order) are the blocks of a near-square grid over ``DEMO_BOX``, read
    from the north-west; each block is a lattice of cells (4 × 4, or more when a street has more
    communities), all cut from one jittered vertex lattice, so neighbours share exact edges and
    the blocks are tiled without gap or overlap. Vertices move inside their block, and along
    (never off) the edges of the blocks, which stay straight. A street with fewer communities
    than cells merges neighbouring cells; its communities (in code order) take the regions from
    the north-west. The same node and seed always give the same collection.
    """
    rng = random.Random(seed)
    streets = _children(district, "street")
    features: list[dict] = []
    if not streets:
        return {"type": "FeatureCollection", "features": features}
    counts = [len(_children(s, "community")) for s in streets]
    cells = max(DEMO_CELLS, math.ceil(math.sqrt(max(counts))))
    cols, rows = _grid(len(streets))
    west, south, east, north = DEMO_BOX
    xs, x_step, x_fixed = _axis(_spans(west, east, cols, rng), cells)
    ys, y_step, y_fixed = _axis(_spans(south, north, rows, rng), cells)
    lattice = []
    for y, dy, y_on_edge in zip(ys, y_step, y_fixed):
        line = []
        for x, dx, x_on_edge in zip(xs, x_step, x_fixed):
            jx, jy = (2 * rng.random() - 1) * JITTER, (2 * rng.random() - 1) * JITTER
            line.append((round(x if x_on_edge else x + jx * dx, DECIMALS),
                         round(y if y_on_edge else y + jy * dy, DECIMALS)))
        lattice.append(line)
    for n, (street, count) in enumerate(zip(streets, counts)):
        if not count:
            continue
        row, col = divmod(n, cols)
        r_base, c_base = (rows - 1 - row) * cells, col * cells  # lattice rows run from the south
        singles = [(r, r, c, c) for r in range(cells) for c in range(cells)]
        regions = sorted(_merge(singles, count, rng), key=lambda g: (-g[1], g[2]))
        for community, (r0, r1, c0, c1) in zip(_children(street, "community"), regions):
            features.append({
                "type": "Feature",
                "properties": {"code": community["code"], "name_zh": community.get("name_zh"),
                               "name_en": community.get("name_en"), "street_code": street["code"]},
                "geometry": {"type": "Polygon", "coordinates": [
                    _ring(lattice, r_base + r0, r_base + r1, c_base + c0, c_base + c1)]},
            })
    features.sort(key=lambda f: f["properties"]["code"])
    return {"type": "FeatureCollection", "features": features}


def _districts(node: dict) -> Iterator[dict]:
    if node.get("kind") == "district":
        yield node
        return
    for child in node.get("children") or []:
        yield from _districts(child)


def dumps(collection: dict) -> str:
    """The file's text: compact, one line, Chinese names as they are."""
    return json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_demo(path: Path | None = None) -> list[Path]:
    """Write ``generate``'s boundaries for every district of ``data/org_units.json`` to
    ``<path>/<district code>.geojson`` (path: the directory, ``data/geo`` by default)."""
    directory = path or GEO_DIR
    directory.mkdir(parents=True, exist_ok=True)
    tree = json.loads(ORG_UNITS.read_text(encoding="utf-8"))
    written = []
    for district in _districts(tree):
        target = directory / f"{district['code']}.geojson"
        target.write_bytes(dumps(generate(district)).encode("utf-8"))
        written.append(target)
    return written


# ---- labels ----------------------------------------------------------------------------------


def label_point(feature: dict) -> tuple[float, float]:
    """Where to write the feature's name: its centroid when that lies inside it, else the middle
    of the widest stretch of its largest polygon along the centroid's latitude (an L- or
    U-shaped community's centroid can fall outside it, on its neighbour)."""
    x, y = centroid(feature)
    if contains(feature, x, y):
        return x, y
    outer = max((_open(rings[0]) for rings in _polygons(feature)), key=lambda r: abs(signed_area(r)))
    ys = sorted({p[1] for p in outer})
    if not (ys[0] < y < ys[-1]):
        y = (ys[0] + ys[-1]) / 2
    crossings = sorted(x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                       for (x1, y1), (x2, y2) in zip(outer, outer[1:] + outer[:1])
                       if (y1 > y) != (y2 > y))
    spans = list(zip(crossings[::2], crossings[1::2]))
    if not spans:
        return x, y
    left, right = max(spans, key=lambda s: s[1] - s[0])
    return (left + right) / 2, y
