"""Community boundaries (lib.org.geo): the committed demo file matches the org tree and its
generator, tiles the district without gap or overlap, and the geometry helpers give known
answers on hand-made shapes."""

from __future__ import annotations

import ast
import json
import math
import random
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from lib.org import geo

DISTRICT = "510104"


def _district() -> dict:
    tree = json.loads(geo.ORG_UNITS.read_text(encoding="utf-8"))
    return next(d for d in geo._districts(tree) if d["code"] == DISTRICT)


def _communities() -> dict[str, str]:
    """Community code -> street code, from the org tree."""
    return {c["code"]: s["code"] for s in _district()["children"] if s["kind"] == "street"
            for c in s.get("children", []) if c["kind"] == "community"}


@pytest.fixture(scope="module")
def committed() -> dict:
    collection = geo.load_boundaries(DISTRICT)
    assert collection is not None, f"data/geo/{DISTRICT}.geojson is missing: run geo.write_demo()"
    return collection


def _box(code: str, x0: float, y0: float, x1: float, y1: float) -> dict:
    return _feature(code, [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])


def _feature(code: str, *rings: list) -> dict:
    return {"type": "Feature", "properties": {"code": code},
            "geometry": {"type": "Polygon", "coordinates": [list(r) for r in rings]}}


SQUARE = _box("square", 0, 0, 1, 1)
L_SHAPE = _feature("L", [[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2], [0, 0]])


# ---- the committed file ----------------------------------------------------------------------


def test_committed_file_has_one_feature_per_community(committed):
    expected = _communities()
    assert len({s for s in expected.values()}) == len(
        [s for s in _district()["children"] if s["kind"] == "street"])
    codes = [f["properties"]["code"] for f in committed["features"]]
    assert codes == sorted(expected)
    streets = {f["properties"]["code"]: f["properties"]["street_code"] for f in committed["features"]}
    assert streets == expected
    names = {c["code"]: (c["name_zh"], c["name_en"]) for s in _district()["children"]
             for c in s.get("children", []) if c["kind"] == "community"}
    assert all((f["properties"]["name_zh"], f["properties"]["name_en"]) == names[f["properties"]["code"]]
               for f in committed["features"])


def test_regenerating_reproduces_the_committed_file_byte_for_byte(tmp_path):
    written = geo.write_demo(tmp_path)
    assert [p.name for p in written] == [f"{DISTRICT}.geojson"]
    assert written[0].read_bytes() == (geo.GEO_DIR / f"{DISTRICT}.geojson").read_bytes()
    assert geo.generate(_district()) == geo.load_boundaries(DISTRICT)


def test_the_seed_decides_the_shapes():
    assert geo.generate(_district(), seed=1) == geo.generate(_district(), seed=1)
    assert geo.generate(_district(), seed=1) != geo.generate(_district())


def _segments_cross(p, q, r, s) -> bool:
    """Whether closed segments pq and rs share any point."""
    def orient(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def on(a, b, c) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    d1, d2, d3, d4 = orient(r, s, p), orient(r, s, q), orient(p, q, r), orient(p, q, s)
    if ((d1 > 0) != (d2 > 0) and d1 != 0 and d2 != 0) and ((d3 > 0) != (d4 > 0) and d3 != 0 and d4 != 0):
        return True
    return ((d1 == 0 and on(r, s, p)) or (d2 == 0 and on(r, s, q))
            or (d3 == 0 and on(p, q, r)) or (d4 == 0 and on(p, q, s)))


def _simple(ring: list) -> bool:
    """No vertex repeats and no two edges meet except neighbours at their shared vertex."""
    pts = ring[:-1]
    if len({tuple(p) for p in pts}) != len(pts):
        return False
    edges = list(zip(pts, pts[1:] + pts[:1]))
    n = len(edges)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours: they share a vertex, and no vertex repeats
            if _segments_cross(*edges[i], *edges[j]):
                return False
    return True


def test_the_simplicity_check_sees_a_crossing():
    assert _simple(L_SHAPE["geometry"]["coordinates"][0])
    assert not _simple([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]])  # a bow tie
    assert not _simple([[0, 0], [2, 0], [1, 0], [1, 1], [0, 0]])  # an edge folding back


def test_every_polygon_is_closed_counter_clockwise_and_simple(committed):
    for f in committed["features"]:
        assert f["geometry"]["type"] == "Polygon"
        (ring,) = f["geometry"]["coordinates"]
        code = f["properties"]["code"]
        assert ring[0] == ring[-1], f"{code}: ring not closed"
        assert geo.signed_area(ring) > 0, f"{code}: ring not counter-clockwise"
        assert _simple(ring), f"{code}: ring crosses itself"
        # Collinear vertices are fine, but no edge may fold back on the previous one.
        pts = ring[:-1]
        for a, b, c in zip(pts[-1:] + pts[:-1], pts, pts[1:] + pts[:1]):
            turn = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])
            dot = (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1])
            assert turn != 0 or dot > 0, f"{code}: spike at {b}"


def _near(feature: dict, x: float, y: float, box: dict) -> bool:
    x0, y0, x1, y1 = box[feature["properties"]["code"]]
    return x0 <= x <= x1 and y0 <= y <= y1 and geo.contains(feature, x, y)


def _just_inside(ring: list) -> list[tuple[float, float]]:
    """Points just inside a counter-clockwise ring: by each vertex (along the bisector of its
    angle) and by the middle of each edge, where an overlap with a neighbour would hide."""
    pts = [tuple(p) for p in ring[:-1]]
    inward = []  # each edge's unit normal to its left (inside, for a counter-clockwise ring)
    for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
        length = math.hypot(bx - ax, by - ay)
        inward.append((-(by - ay) / length, (bx - ax) / length, length))
    out = []
    for n, (ax, ay) in enumerate(pts):
        (px, py, before), (qx, qy, after) = inward[n - 1], inward[n]
        step = 1e-4 * min(before, after)
        dx, dy = px + qx, py + qy
        norm = math.hypot(dx, dy)
        out.append((ax + step * dx / norm, ay + step * dy / norm))
        bx, by = pts[(n + 1) % len(pts)]
        out.append(((ax + bx) / 2 + 1e-3 * after * qx, (ay + by) / 2 + 1e-3 * after * qy))
    return out


def test_polygons_do_not_overlap(committed):
    features = committed["features"]
    box = {f["properties"]["code"]: geo.bounds(f) for f in features}
    rng = random.Random(7)
    for f in features:
        code = f["properties"]["code"]
        cx, cy = geo.centroid(f)
        assert geo.contains(f, cx, cy), f"{code}: centroid outside"
        points = [(cx, cy)] + [geo.random_point(f, rng) for _ in range(40)]
        points += _just_inside(f["geometry"]["coordinates"][0])
        for x, y in points:
            assert geo.contains(f, x, y)
            others = [g["properties"]["code"] for g in features if g is not f and _near(g, x, y, box)]
            assert others == [], f"{code}: ({x}, {y}) also lies in {others}"


def test_communities_tile_their_street_blocks_and_the_blocks_tile_the_district(committed):
    by_street: dict[str, list[dict]] = defaultdict(list)
    for f in committed["features"]:
        by_street[f["properties"]["street_code"]].append(f)
    blocks = {}
    for street, features in by_street.items():
        blocks[street] = geo.bounds({"type": "FeatureCollection", "features": features})
        x0, y0, x1, y1 = blocks[street]
        # The street's communities cover its rectangular block exactly (none overlaps: above).
        assert sum(geo.area(f) for f in features) == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-9), street
    for a in blocks:
        for b in blocks:
            if a < b:
                ax0, ay0, ax1, ay1 = blocks[a]
                bx0, by0, bx1, by1 = blocks[b]
                overlap = max(0, min(ax1, bx1) - max(ax0, bx0)) * max(0, min(ay1, by1) - max(ay0, by0))
                assert overlap == 0, f"streets {a} and {b} overlap"
    total = sum(geo.area(f) for f in committed["features"])
    assert total == pytest.approx(sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in blocks.values()), rel=1e-9)
    cols, rows = geo._grid(len(blocks))
    x0, y0, x1, y1 = geo.bounds(committed)
    assert (x0, y0, x1, y1) == geo.DEMO_BOX
    if cols * rows == len(blocks):  # a full grid: the blocks make up the district's box
        assert total == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-9)


def test_generate_handles_any_number_of_streets_and_communities():
    def street(n: int, count: int) -> dict:
        return {"code": f"9{n:02d}", "kind": "street", "children": [
            {"code": f"9{n:02d}{k:03d}", "kind": "community", "name_zh": "社区", "name_en": "C"}
            for k in range(count)] + [{"code": f"9{n:02d}-x", "kind": "department"}]}

    district = {"code": "9", "kind": "district", "children": [
        street(1, 1), street(2, 3), street(3, 20), street(4, 16), street(5, 0),
        {"code": "9-fire", "kind": "department"}]}
    collection = geo.generate(district, seed=3)
    codes = [f["properties"]["code"] for f in collection["features"]]
    assert len(codes) == 1 + 3 + 20 + 16
    for f in collection["features"]:
        (ring,) = f["geometry"]["coordinates"]
        assert ring[0] == ring[-1] and geo.signed_area(ring) > 0 and _simple(ring)
    lone = next(f for f in collection["features"] if f["properties"]["code"] == "901000")
    x0, y0, x1, y1 = geo.bounds(lone)
    assert geo.area(lone) == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-9)  # the whole block
    assert geo.generate({"code": "8", "kind": "district", "children": []}) == {
        "type": "FeatureCollection", "features": []}


# ---- the geometry helpers on hand-made shapes ------------------------------------------------


def test_contains():
    assert geo.contains(SQUARE, 0.5, 0.5)
    assert not geo.contains(SQUARE, 1.5, 0.5)
    assert not geo.contains(SQUARE, 0.5, -0.01)
    assert geo.contains(L_SHAPE, 0.5, 1.5) and geo.contains(L_SHAPE, 1.5, 0.5)
    assert not geo.contains(L_SHAPE, 1.5, 1.5)  # the notch
    holed = _feature("holed", [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
                     [[1, 1], [1, 3], [3, 3], [3, 1], [1, 1]])
    assert geo.contains(holed, 0.5, 2) and not geo.contains(holed, 2, 2)
    multi = {"type": "Feature", "properties": {"code": "m"}, "geometry": {
        "type": "MultiPolygon", "coordinates": [SQUARE["geometry"]["coordinates"],
                                                _box("", 5, 5, 6, 6)["geometry"]["coordinates"]]}}
    assert geo.contains(multi, 5.5, 5.5) and geo.contains(multi, 0.5, 0.5) and not geo.contains(multi, 3, 3)


def test_centroid_area_bounds_and_outline():
    assert geo.centroid(SQUARE) == pytest.approx((0.5, 0.5))
    assert geo.centroid(L_SHAPE) == pytest.approx((5 / 6, 5 / 6))
    assert geo.area(L_SHAPE) == pytest.approx(3)
    clockwise = [[0, 0], [0, 2], [2, 1], [2, 0], [0, 0]]
    assert geo.signed_area(clockwise) == pytest.approx(-3)
    assert geo.area(_feature("cw", clockwise)) == pytest.approx(3)
    holed = _feature("holed", [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
                     [[0, 0], [0, 2], [2, 2], [2, 0], [0, 0]])
    assert geo.area(holed) == pytest.approx(12)
    assert geo.centroid(holed) == pytest.approx(((16 * 2 - 4 * 1) / 12, (16 * 2 - 4 * 1) / 12))
    far = _box("far", 104.1, 30.6, 104.1 + 1e-3, 30.6 + 2e-3)  # lon/lat far from 0 keep their precision
    assert geo.area(far) == pytest.approx(2e-6, rel=1e-9)
    assert geo.centroid(far) == pytest.approx((104.1005, 30.601), abs=1e-12)
    assert geo.bounds(L_SHAPE) == (0, 0, 2, 2)
    pair = {"type": "FeatureCollection", "features": [SQUARE, _box("b", -1, 3, 0, 4)]}
    assert geo.bounds(pair) == (-1, 0, 1, 4)
    assert geo.outline(L_SHAPE) == [([0, 2, 2, 1, 1, 0, 0], [0, 0, 1, 1, 2, 2, 0])]


def test_random_point_is_uniform_inside_and_repeatable():
    points = [geo.random_point(L_SHAPE, random.Random(5)) for _ in range(2)]
    assert points[0] == points[1]
    rng = random.Random(11)
    points = [geo.random_point(L_SHAPE, rng) for _ in range(3000)]
    assert all(geo.contains(L_SHAPE, x, y) for x, y in points)
    quarters = [sum(1 for x, y in points if (x >= 1) == right and (y >= 1) == top)
                for right, top in ((False, False), (True, False), (False, True))]
    assert all(abs(q / 3000 - 1 / 3) < 0.04 for q in quarters)  # each unit square gets a third
    assert all(geo.contains(SQUARE, *geo.random_point(SQUARE, rng)) for _ in range(100))
    with pytest.raises(ValueError, match="No point found"):
        geo.random_point(_box("flat", 0, 0, 1, 0), rng, tries=50)


# ---- loading ---------------------------------------------------------------------------------


def test_a_missing_file_is_none(tmp_path):
    assert geo.load_boundaries("nonexistent") is None
    assert geo.load_boundaries(DISTRICT, directory=tmp_path) is None
    with pytest.raises(ValueError, match="Not a district code"):
        geo.load_boundaries("../510104")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"type": "Feature", "properties": {}, "geometry": null}', "not a GeoJSON FeatureCollection"),
    ('{"type": "FeatureCollection"}', "no list of features"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "x"}, '
     '"geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}]}',
     r"feature 0 has no properties\.code"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "510104001001"}, '
     '"geometry": {"type": "Point", "coordinates": [104.1, 30.6]}}]}',
     r"feature 0 \(510104001001\) has geometry 'Point'"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "a"}, '
     '"geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0]]]}}]}', "not rings of 4 or more"),
    ('{"type": "FeatureCollection", "features": ['
     '{"type": "Feature", "properties": {"code": "a"}, "geometry": {"type": "Polygon", '
     '"coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}},'
     '{"type": "Feature", "properties": {"code": "a"}, "geometry": {"type": "Polygon", '
     '"coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}]}', r"feature 1 \(a\): the code appears twice"),
])
def test_a_malformed_file_is_refused_clearly(tmp_path, content, message):
    (tmp_path / "999.geojson").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as caught:
        geo.load_boundaries("999", directory=tmp_path)
    assert "999.geojson" in str(caught.value)


def test_a_multipolygon_file_loads(tmp_path):
    multi = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "a"},
             "geometry": {"type": "MultiPolygon", "coordinates": [SQUARE["geometry"]["coordinates"]]}}]}
    (tmp_path / "999.geojson").write_text(json.dumps(multi), encoding="utf-8")
    assert geo.load_boundaries("999", directory=tmp_path) == multi


def test_geo_needs_only_the_standard_library():
    tree = ast.parse(Path(geo.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported - set(sys.stdlib_module_names) == {"lib"}
    lib_imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                   and n.module and n.module.startswith("lib")}
    assert lib_imports == {"lib.core"}


# ---- labels ----------------------------------------------------------------------------------


def test_a_label_point_lies_inside_its_shape_even_where_the_centroid_does_not():
    assert geo.label_point(SQUARE) == pytest.approx((0.5, 0.5))
    # A U: its centroid falls in the gap between the arms, outside the shape.
    u_shape = _feature("U", [[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3], [0, 0]])
    x, y = geo.centroid(u_shape)
    assert not geo.contains(u_shape, x, y)
    assert geo.contains(u_shape, *geo.label_point(u_shape))


def test_every_demo_community_gets_its_label_inside_it(committed):
    for feature in committed["features"]:
        assert geo.contains(feature, *geo.label_point(feature)), feature["properties"]["code"]
