"""Case photos reach only the readers lib allows, and never through Streamlit's media store,
whose ``/media/…`` URLs answer anyone holding them without a login."""

from __future__ import annotations

import base64
import io

from PIL import Image

from lib.cases.machine import act_on
from lib.ui.cards import inline_photo
from tests.factories import actor, move, new_case, open_page

RED = (200, 30, 30)


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), RED).save(out, format="JPEG")
    return out.getvalue()


def handled_with_photo(engine, category: str = "vice"):
    """A case its community took on and handled with a result photo."""
    case = new_case(engine, category=category, address="红星路9号3栋501")
    move(engine, "community01", case.id, "accept")
    taken = move(engine, "community01", case.id, "take")
    return act_on(actor(engine, "community01"), case.id, "handle", version=taken.version,
                  files=[("result.jpg", photo())], note="已处置", engine=engine)


def image_urls(at) -> list[str]:
    return [url for element in at.get("image") for url in element.value]


def test_a_restricted_case_photo_is_drawn_inline_for_its_handler_and_absent_for_others(sqlite_db):
    case = handled_with_photo(sqlite_db)
    handler = open_page("community01", "pages/case.py", id=str(case.id))
    assert not handler.exception
    urls = image_urls(handler)
    assert len(urls) == 1 and urls[0].startswith("data:image/jpeg;base64,")
    shown = Image.open(io.BytesIO(base64.b64decode(urls[0].split(",", 1)[1])))
    assert shown.width == 320 and shown.getpixel((10, 10))[0] > 150  # the photo, scaled
    # A leader of the street reads the record, never the content: no photo in the payload.
    leader = open_page("street_leader", "pages/case.py", id=str(case.id))
    assert not leader.exception
    assert image_urls(leader) == []
    assert not leader.get("image")


def test_no_case_photo_goes_through_the_media_store(sqlite_db):
    case = handled_with_photo(sqlite_db, category="fire")
    at = open_page("community01", "pages/case.py", id=str(case.id))
    assert not at.exception
    urls = image_urls(at)
    assert urls and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    assert not any("/media/" in u for u in urls)


def test_an_inline_photo_is_a_bounded_thumbnail():
    url = inline_photo(photo(), 160)
    data = base64.b64decode(url.removeprefix("data:image/jpeg;base64,"))
    assert Image.open(io.BytesIO(data)).size == (320, 240) and len(data) < 20_000
