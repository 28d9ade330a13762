"""Bad input at intake, from the security list: markup and control characters kept as data,
limits on length, phone and anonymity, rate limits, hostile photos, duplicates, and search text
that looks like SQL or LIKE wildcards.

Database tests run on SQLite and on PostgreSQL (``db``); photo checks need no database.
"""

from __future__ import annotations

import io
import itertools
import uuid
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func
from sqlmodel import select

from lib.cases.access import reporter_for
from lib.cases.intake import Report, clean_phone, create_case, find_duplicates, submit
from lib.cases.machine import act
from lib.cases.models import AccessLog, Attachment, Case
from lib.cases.photos import LONG_SIDE, check_photo
from lib.cases.queue import Filters, queue_rows
from lib.cases.tracking import track
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, Throttled, ValidationFailed
from lib.core.models import Category, ThrottleHit, utcnow
from lib.core.settings import defaults
from lib.org import auth
from lib.org.units import find_unit
from tests.factories import sms_code

COMMUNITY = "510104001001"
OTHER_COMMUNITY = "510104001002"
MAX_BYTES = int(defaults()["photo.max_bytes"])
MAX_PIXELS = int(defaults()["photo.max_pixels"])
PER_PHONE = int(defaults()["intake.per_phone_per_hour"])
PER_ADDRESS = int(defaults()["intake.per_address_per_hour"])

_phones = itertools.count(13600000000)
_addresses = itertools.count(1)




# ---------------------------------------------------------------- helpers


def ids(db, category: str = "fire", community: str = COMMUNITY) -> tuple[int, int]:
    with read_session(db) as s:
        return (s.exec(select(Category.id).where(Category.key == category)).one(),
                find_unit(s, community).id)


def report(db, *, category: str = "fire", community: str = COMMUNITY, phone: str | None = None,
           client_address: str | None = None, **fields) -> Case:
    """A public report; a fresh phone and client address unless given."""
    category_id, community_id = ids(db, category, community)
    fields.setdefault("description", "楼道里堆满纸箱，堵住了消防通道")
    fields.setdefault("address", "红星路5号")
    if phone is None and not fields.get("anonymous"):
        phone = str(next(_phones))
    return submit(db, actor=None, submit_key=uuid.uuid4().hex,
                  client_address=client_address or f"203.0.113.{next(_addresses) % 250}",
                  report=Report(category_id=category_id, community_id=community_id,
                                reporter_phone=phone, **fields)).case


def stored(db) -> tuple[int, int]:
    """(cases, intake attempts) in the database."""
    with read_session(db) as s:
        return (s.exec(select(func.count()).select_from(Case)).one(),
                s.exec(select(func.count()).select_from(ThrottleHit).where(  # one per report
                    ThrottleHit.kind == "intake", ThrottleHit.key.startswith("addr:"))).one())


def refused(db, key: str, **kwargs) -> None:
    """The report is refused with ``key`` and nothing at all is stored."""
    before = stored(db)
    with pytest.raises(ValidationFailed) as err:
        report(db, **kwargs)
    assert err.value.key == key
    assert stored(db) == before


def image_bytes(size=(64, 48), mode: str = "RGB", fmt: str = "JPEG", **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "white" if mode != "1" else 1).save(out, format=fmt, **save)
    return out.getvalue()


def photo_error(data: bytes) -> str:
    with pytest.raises(ValidationFailed) as err:
        check_photo(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, name="upload.png")
    return err.value.key


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A 12000×12000 bilevel PNG: about 17 KiB on disk, 144 million pixels when decoded."""
    return image_bytes((12000, 12000), mode="1", fmt="PNG", optimize=True)


def gps_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (30.0, 39.0, 0.0), 3: "E", 4: (104.0, 4.0, 0.0)}
    return image_bytes((320, 240), exif=exif)


# ---------------------------------------------------------------- text


def test_markup_scripts_and_bidi_controls_are_stored_verbatim(db):
    description = ("[点此领奖](javascript:alert(1)) ![x](http://evil.example/x.png) "
                   "<script>alert('xss')</script><img src=x onerror=alert(1)> "
                   "门牌\u202e号01路星红 **粗体** `code` | 表格 | '; DROP TABLE case; --")
    address = "<b>红星路</b>\u202e5号 [地图](http://evil.example)"
    name = "<i>王</i>\u202e"
    case = report(db, description=description, address=address, reporter_name=name)
    with read_session(db) as s:
        row = s.get(Case, case.id)
        assert (row.description, row.address, row.reporter_name) == (description, address, name)


def test_over_long_text_and_bad_phones_are_refused_and_nothing_is_stored(db):
    refused(db, "error.text_too_long", description="长" * 2001)
    refused(db, "error.text_too_long", address="址" * 201)
    refused(db, "error.text_too_long", reporter_name="名" * 61)
    refused(db, "error.fields_required", description=" \n\t ")
    refused(db, "error.phone_invalid", phone="1380000111")
    refused(db, "error.phone_invalid", phone="<script>13800001111</script>")
    refused(db, "error.fields_required", phone="  ")
    # At the limits exactly, the report goes in.
    case = report(db, description="长" * 2000, address="址" * 200, reporter_name="名" * 60)
    assert (len(case.description), len(case.address)) == (2000, 200)
    assert stored(db) == (1, 1)




@pytest.mark.parametrize("phone", [
    "1380000111", "138000011112", "23800001111", "1380000111a", "+1 415 555 0100",
    "13800001111; DROP TABLE case", "１３８００００１１１１", "0",
    "13８００００１１１１",
    "13٨٠٠٠٠١١١١",
])
def test_an_invalid_phone_number_is_refused(phone):
    with pytest.raises(ValidationFailed) as err:
        clean_phone(phone, required=True)
    assert err.value.key == "error.phone_invalid"


@pytest.mark.parametrize("phone,cleaned", [
    ("13800001111", "13800001111"), ("+86 138 0000 1111", "13800001111"),
    ("(028) 8765 4321", "02887654321"), ("028-87654321", "028-87654321"),
])
def test_ordinary_phone_spellings_are_accepted(phone, cleaned):
    assert clean_phone(phone, required=True) == cleaned


def test_tracking_with_digits_of_another_script_is_simply_not_found(sqlite_db):
    case = report(sqlite_db, phone="13800001111")
    proof = sms_code(sqlite_db, case.code)
    assert track(sqlite_db, case.code, proof).code == case.code
    arabic = proof.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    with pytest.raises(NotFound):
        track(sqlite_db, case.code, arabic)  # the right code in Arabic-Indic digits


def test_anonymous_is_refused_for_fire_and_accepted_for_vice(db):
    refused(db, "error.anonymous_not_allowed", category="fire", anonymous=True,
            phone="13800001111", reporter_name="王五")
    case = report(db, category="vice", anonymous=True, phone="13800001111", reporter_name="王五")
    also = report(db, category="vice", anonymous=True)  # no phone needed when anonymous
    with read_session(db) as s:
        for case_id in (case.id, also.id):
            row = s.get(Case, case_id)
            assert (row.anonymous, row.reporter_name, row.reporter_phone) == (True, None, None)


def test_restricted_report_hides_the_reporter_and_logs_each_full_view(db):
    case = report(db, category="vice", phone="13800005678", reporter_name="王小明")
    ordinary = report(db, category="fire", phone="13900001234", reporter_name="李四")
    with write_session(db) as s:
        row = s.get(Case, case.id)
        for username in ("community01", "street01", "district01", "community_leader"):
            seen = reporter_for(s, auth.actor_by_username(s, username), row)
            assert (seen.name, seen.phone, seen.full, seen.hidden) == ("***", "***", False, True)
        assert s.exec(select(func.count()).select_from(AccessLog)).one() == 0
        privacy = auth.actor_by_username(s, "district_privacy")
        seen = reporter_for(s, privacy, row)
        assert (seen.name, seen.phone, seen.full) == ("王小明", "13800005678", True)
        # An ordinary case: masked outside the handling units, in full for its community.
        other = s.get(Case, ordinary.id)
        masked = reporter_for(s, auth.actor_by_username(s, "street01"), other)
        assert (masked.name, masked.phone, masked.full) == ("李*", "139****1234", False)
        assert reporter_for(s, auth.actor_by_username(s, "community01"), other).phone == "13900001234"
    with read_session(db) as s:
        logs = s.exec(select(AccessLog)).all()
        assert [(log.case_id, log.user_id, log.what) for log in logs] == [
            (case.id, privacy.id, "reporter")]


# ---------------------------------------------------------------- rate limits


def test_a_phone_may_report_five_times_an_hour(db):
    phone = "13811112222"
    for n in range(PER_PHONE):
        report(db, phone=phone, client_address=f"198.51.100.{n}")
    before = stored(db)
    with pytest.raises(Throttled) as err:
        report(db, phone=phone, client_address="198.51.100.99")
    assert err.value.key == "error.intake_throttled_phone"
    assert stored(db) == before == (PER_PHONE, PER_PHONE)
    report(db, phone="13811113333", client_address="198.51.100.99")  # another phone is fine
    # An hour later the phone may report again.
    category_id, community_id = ids(db)
    with write_session(db) as s:
        create_case(s, Report(category_id=category_id, subcategory_id=None, description="一小时后再报",
                              address="红星路5号", community_id=community_id, reporter_phone=phone),
                    actor=None, client_address="198.51.100.98", now=utcnow() + timedelta(minutes=61))
    assert stored(db) == (PER_PHONE + 2, PER_PHONE + 2)


def test_a_client_address_may_report_twenty_times_an_hour(db):
    for _ in range(PER_ADDRESS):
        report(db, client_address="192.0.2.50")
    before = stored(db)
    with pytest.raises(Throttled) as err:
        report(db, client_address="192.0.2.50")
    assert err.value.key == "error.intake_throttled_address"
    with pytest.raises(Throttled):
        report(db, client_address="192.0.2.50", category="vice", anonymous=True)
    assert stored(db) == before == (PER_ADDRESS, PER_ADDRESS)
    report(db, client_address="192.0.2.51")
    assert stored(db) == (PER_ADDRESS + 1, PER_ADDRESS + 1)


# ---------------------------------------------------------------- photos


def test_a_photo_over_the_size_cap_is_refused():
    assert photo_error(b"\xff\xd8\xff\xe0" + b"\0" * MAX_BYTES) == "error.photo_too_large"


@pytest.mark.parametrize("data", [
    b"",
    b"just some text, not a picture",
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
    b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
], ids=["empty", "text", "pdf", "svg"])
def test_a_file_that_is_not_an_image_is_refused(data):
    assert photo_error(data) == "error.photo_not_image"


def test_an_executable_dressed_as_a_png_is_refused():
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\0" * 48 + b"This program cannot be run"
    png = image_bytes(fmt="PNG")
    assert photo_error(exe + png) == "error.photo_not_image"              # MZ header, PNG after it
    assert photo_error(png[:8] + exe) == "error.photo_not_image"          # PNG magic, MZ body
    assert photo_error(image_bytes()[:300]) == "error.photo_not_image"    # a truncated JPEG


def test_a_decompression_bomb_is_refused_before_decoding(bomb):
    assert len(bomb) < 100_000  # small on disk: the size cap alone would let it through
    assert photo_error(bomb) == "error.photo_too_many_pixels"
    # Over the configured cap but under Pillow's own bomb limit: lib's header check refuses it.
    grey = image_bytes((6000, MAX_PIXELS // 6000 + 1), mode="L", fmt="PNG", compress_level=9)
    assert photo_error(grey) == "error.photo_too_many_pixels"


def test_a_jpeg_with_gps_exif_is_reencoded_without_it():
    original = gps_jpeg()
    with Image.open(io.BytesIO(original)) as image:
        assert image.getexif().get_ifd(0x8825)[2] == (30.0, 39.0, 0.0)
    photo = check_photo(original, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    assert photo.mime == "image/jpeg" and b"Exif" not in photo.data
    with Image.open(io.BytesIO(photo.data)) as image:
        assert image.format == "JPEG" and image.size == (320, 240)
        assert dict(image.getexif()) == {} and "exif" not in image.info


def test_a_big_photo_is_scaled_down_and_a_transparent_png_flattened():
    photo = check_photo(image_bytes((3000, 1000), mode="RGBA", fmt="PNG"), max_bytes=MAX_BYTES,
                        max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(photo.data)) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert max(image.size) == LONG_SIDE


def test_a_report_stores_only_the_reencoded_photo(sqlite_db):
    photo = check_photo(gps_jpeg(), max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    case = report(sqlite_db, photos=[photo])
    with read_session(sqlite_db) as s:
        rows = s.exec(select(Attachment).where(Attachment.case_id == case.id)).all()
    assert [(a.kind, a.mime, a.sha256, a.size) for a in rows] == [
        ("report", "image/jpeg", photo.sha256, len(photo.data))]
    assert rows[0].data == photo.data and b"Exif" not in rows[0].data


# ---------------------------------------------------------------- duplicates and search


def test_duplicates_are_found_for_the_same_category_and_community_only(db):
    near = report(db, latitude=30.6570, longitude=104.0660)
    pointless = report(db)
    report(db, community=OTHER_COMMUNITY)
    report(db, category="gas")
    rejected = report(db)
    with write_session(db) as s:
        act(s, auth.actor_by_username(s, "community01"), rejected.id, "reject", version=1,
            note="重复报告")
    category_id, community_id = ids(db)
    _, other_id = ids(db, community=OTHER_COMMUNITY)
    with read_session(db) as s:
        staff = auth.actor_by_username(s, "street01")  # both communities are in its street
        found = find_duplicates(s, staff, category_id=category_id, community_id=community_id)
        assert {d.code for d in found} == {near.code, pointless.code}
        close = find_duplicates(s, staff, category_id=category_id, community_id=community_id,
                                latitude=30.6574, longitude=104.0660)
        assert [d.code for d in close] == [near.code, pointless.code]
        assert 30 < close[0].distance_m < 60 and close[1].distance_m is None
        far = find_duplicates(s, staff, category_id=category_id, community_id=community_id,
                              latitude=30.6770, longitude=104.0660)
        assert [d.code for d in far] == [pointless.code]
        assert len(find_duplicates(s, staff, category_id=category_id, community_id=other_id)) == 1


def test_queue_search_matches_wildcards_and_sql_literally(db):
    texts = {
        "percent": "消防通道完成率100%以上",
        "percent_decoy": "消防通道完成率100元以上",
        "underscore": "门牌a_b号的楼道堆物",
        "underscore_decoy": "门牌axb号的楼道堆物",
        "sql": "他说' OR 1=1--然后走了",
        "plain": "普通的描述",
        "backslash": "路径C:\\temp\\x的问题",
    }
    codes = {name: report(db, description=text).code for name, text in texts.items()}
    with read_session(db) as s:
        staff = auth.actor_by_username(s, "community01")

        def search(text: str) -> set[str]:
            rows, total = queue_rows(s, staff, "triage", Filters(text=text))
            assert total == len(rows)
            return {r.code for r in rows}

        assert len(search("")) == len(texts)
        assert search("100%") == {codes["percent"]}
        assert search("%") == {codes["percent"]}
        assert search("a_b") == {codes["underscore"]}
        assert search("_") == {codes["underscore"]}
        assert search("' OR 1=1--") == {codes["sql"]}
        assert search("' OR '1'='1") == set()
        assert search("%%") == set()
        assert search("\\temp") == {codes["backslash"]}
        assert search(codes["plain"]) == {codes["plain"]}
