"""The operator page's API through FastAPI's TestClient: reads, pictures by id only, feedback with a token."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from pcb_inspect.inspect.dashboard_api import PAGE_HEADERS
from pcb_inspect.inspect.feedback import feedback_folder
from pcb_inspect.inspect.sinks.sqlite import read_feedback

TOKEN = "line-7-secret-token"  # the station fixture's (conftest.py)
REMOTE = ("10.1.2.3", 50000)


def auth(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8"


def test_page_and_assets_are_served_without_the_token_or_anything_from_elsewhere(station) -> None:
    r = station.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == PAGE_HEADERS["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert assets and all(a.startswith("/ui/") for a in assets), assets  # no CDN, no other host
    texts = [r.text]
    for a in assets:
        got = station.client.get(a)
        assert got.status_code == 200, a
        texts.append(got.text)
    i18n = station.client.get("/ui/i18n.json").json()
    assert set(i18n) == {"en", "zh"} and set(i18n["en"]) == set(i18n["zh"])
    for text in texts:
        assert TOKEN not in text
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), "an external URL in the page"


def test_config_status_and_inspections(station) -> None:
    fail = station.inspect("FAIL", seed=1)
    ok = station.inspect("PASS", seed=2)
    cfg = station.client.get("/api/config").json()
    assert cfg == {"station": "line-7",
                   "classes": ["open", "short", "mousebite", "spur", "copper", "pin-hole"],
                   "token_configured": True, "local": True, "reader": True}
    rows = station.client.get("/api/inspections?limit=5").json()
    assert [r["id"] for r in rows] == [ok.id, fail.id]
    rejects = station.client.get("/api/inspections?verdict=rejects").json()
    assert [r["id"] for r in rejects] == [fail.id]
    one = station.client.get(f"/api/inspections/{fail.id}").json()
    assert one["inspection"] == fail.to_dict()
    assert one["pictures"] == {"raw": True, "annotated": True, "template": True}
    assert one["feedback"] == []
    assert station.client.get(f"/api/inspections/{'0' * 32}").status_code == 404
    assert station.client.get("/api/inspections/NOT-AN-ID").status_code == 422
    shift = station.client.get("/api/shift").json()
    assert shift["counts"]["total"] == 2 and shift["yield_pct"] == 50.0
    assert sum(p["count"] for p in shift["pareto_shift"]) == len(fail.defects)


def test_pictures_from_memory_then_from_the_reject_folder(station, monkeypatch) -> None:
    fail = station.inspect("FAIL", seed=3)
    passed = station.inspect("PASS", seed=4)
    get = lambda iid, q="": station.client.get(f"/api/inspections/{iid}/image{q}")  # noqa: E731
    raw = get(fail.id)
    assert raw.status_code == 200 and raw.content.startswith(PNG)
    image = cv2.imdecode(np.frombuffer(raw.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(image, station.boards[0][1].tested)  # lossless
    assert get(fail.id, "?kind=annotated").content.startswith(JPEG)
    assert get(fail.id, "?kind=template").content.startswith(PNG)
    assert get(fail.id, "?kind=raw&format=jpeg").content.startswith(JPEG)  # the live view's
    thumb = cv2.imdecode(np.frombuffer(get(fail.id, "?kind=annotated&size=thumb").content, np.uint8), 1)
    assert max(thumb.shape[:2]) <= 320
    assert get(passed.id).status_code == 200  # the newest boards' pictures are kept, PASS or not
    unseen = station.inspect("PASS", seed=10)
    for k in range(6):  # newer boards push the PASS boards' pictures out of memory
        station.inspect("PASS", seed=11 + k)
    assert station.feed.pictures(passed.id).image is None
    assert get(unseen.id).status_code == 404  # a PASS board's picture is not on disk anywhere
    assert get(passed.id).status_code == 200  # served before: from the page's small cache of encoded pictures
    station.feed._pictures.clear()  # the feed forgot the reject: the reject sink's files serve it
    station.feed._latest.clear()
    station.app.state.dashboard._cache.clear()
    assert get(fail.id).content == next(iter(station.rejects.find(fail.id).values())).read_bytes()
    assert get(fail.id, "?kind=annotated").content.startswith(JPEG)
    assert get(fail.id, "?format=jpeg").content.startswith(JPEG)
    assert get(fail.id, "?kind=template").content.startswith(PNG)  # the feed keeps older rejects' templates
    station.feed._template_of.clear()
    station.app.state.dashboard._cache.clear()
    assert get(fail.id, "?kind=template").status_code == 404  # no template file or folder on this station


@pytest.mark.parametrize("path", [
    "/api/inspections/..%2F..%2F..%2Fetc%2Fpasswd/image",
    "/api/inspections/../../../../etc/passwd/image",
    "/api/inspections/%2e%2e%2f%2e%2e%2fline.db/image",
    "/api/inspections/{id}%2F..%2F..%2Fline.db/image",
    "/api/inspections/{ID}/image",
    "/api/inspections/{id}0/image",
    "/api/inspections/{id}/image?kind=../../line.db",
    "/api/inspections/{id}/image?kind=raw%00.png",
    "/api/inspections/{id}/image?kind=/etc/passwd",
    "/api/inspections/{id}/image?size=../../x",
    "/api/inspections/{id}/image?format=../../line.db",
    "/ui/..%2Fdashboard.py",
    "/ui/../dashboard.py",
    "/ui/%2e%2e/auth.py",
    "/ui/../../line.db",
    "/ui/",
])
def test_traversal_attempts_never_reach_a_file(station, path: str) -> None:
    fail = station.inspect("FAIL", seed=5)
    (station.tmp / "secret.txt").write_text("TOP SECRET")
    r = station.client.get(path.format(id=fail.id, ID=fail.id.upper()))
    assert r.status_code in (404, 422), (path, r.status_code)
    assert b"TOP SECRET" not in r.content and b"SQLite format" not in r.content and b"import" not in r.content


def _mutating_routes(app) -> set[tuple[str, str]]:  # noqa: ANN001
    """Every route that is not a read, from the app's routes (routers included) and its OpenAPI document."""
    found: set[tuple[str, str]] = set()

    def walk(routes) -> None:  # noqa: ANN001
        for route in routes:
            inner = getattr(route, "original_router", None) or getattr(route, "app", None)
            if hasattr(inner, "routes") and not hasattr(route, "methods"):
                walk(inner.routes)
            for method in getattr(route, "methods", None) or ():
                if method not in ("GET", "HEAD", "OPTIONS"):
                    found.add((method, route.path))

    walk(app.routes)
    for path, ops in app.openapi()["paths"].items():
        found |= {(m.upper(), path) for m in ops if m not in ("get", "head", "options")}
    return {(m, p.replace("{inspection_id}", "0" * 32)) for m, p in found}


def test_every_mutating_route_is_refused_without_the_token(station) -> None:
    routes = _mutating_routes(station.app)
    assert ("POST", f"/api/inspections/{'0' * 32}/feedback") in routes and ("POST", "/api/session") in routes
    for method, path in routes:
        wrong = ({}, auth("wrong-token-123"), {"Authorization": TOKEN}, {"Authorization": "Basic eDp5"})
        for headers in wrong:
            r = station.client.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert TOKEN not in r.text


def test_mutating_routes_are_refused_when_no_token_is_configured(station_factory) -> None:
    s = station_factory(token=None)
    fail = s.inspect("FAIL", seed=6)
    r = s.client.post(f"/api/inspections/{fail.id}/feedback", headers=auth(),
                      json={"operator": "li", "judgements": []})
    assert r.status_code == 403 and "without a token" in r.json()["detail"]
    assert s.client.get("/api/config").json()["token_configured"] is False


def test_guessing_the_token_is_throttled(station) -> None:
    for _ in range(20):
        assert station.client.post("/api/session", headers=auth("guess-guess-guess")).status_code == 401
    r = station.client.post("/api/session", headers=auth())  # even the right one, until the minute is over
    assert r.status_code == 429 and r.headers["retry-after"] == "60"


def test_a_client_elsewhere_reads_only_after_signing_in(station_factory) -> None:
    s = station_factory(client=REMOTE, http="0.0.0.0:8080")
    fail = s.inspect("FAIL", seed=7)
    assert s.client.get("/").status_code == 200  # the page itself (to sign in from) is open
    assert s.client.get("/api/config").json()["reader"] is False
    for path in ("/api/inspections", f"/api/inspections/{fail.id}", f"/api/inspections/{fail.id}/image",
                 "/api/shift", "/api/events"):
        assert s.client.get(path).status_code == 401, path
    assert s.client.get("/api/inspections", headers=auth()).status_code == 200  # the token works too
    r = s.client.post("/api/session", headers=auth())
    assert r.status_code == 204
    cookie = r.cookies.get("pcb_inspect_session")
    assert cookie and TOKEN not in cookie and "httponly" in r.headers["set-cookie"].lower()
    assert s.client.get("/api/inspections").status_code == 200  # the session cookie from now on
    assert s.client.get(f"/api/inspections/{fail.id}/image").status_code == 200
    assert s.client.get("/api/config").json()["reader"] is True
    assert TestClient(s.app, client=REMOTE).get("/api/inspections").status_code == 401  # another browser


def test_feedback_is_stored_with_who_when_and_the_pictures(station) -> None:
    fail = station.inspect("FAIL", seed=8)
    n = len(fail.defects)
    assert n >= 3
    body = {"operator": "Wang Li", "note": "flux residue",
            "judgements": [{"ref": 0, "judgement": "false_call"},
                           {"ref": 1, "judgement": "other_class",
                            "cls": "short" if fail.defects[1].cls != "short" else "open"}]
                          + [{"ref": k, "judgement": "confirmed"} for k in range(2, n)],
            "added": [{"cls": "spur", "box": [10, 12, 30, 40]}]}
    r = station.client.post(f"/api/inspections/{fail.id}/feedback", headers=auth(), json=body)
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["images"] is True and saved["operator"] == "Wang Li" and saved["width"] == 256
    stored = read_feedback(station.db, fail.id)
    assert len(stored) == 1 and stored[0]["id"] == saved["id"]
    kinds = [i["judgement"] for i in stored[0]["items"]]
    assert kinds == ["false_call", "other_class"] + ["confirmed"] * (n - 2) + ["added"]
    assert stored[0]["items"][0]["box"] == list(fail.defects[0].box)
    tested = feedback_folder(station.db) / f"{fail.id}_test.png"
    template = feedback_folder(station.db) / f"{fail.id}_temp.png"
    assert np.array_equal(cv2.imread(str(tested), cv2.IMREAD_UNCHANGED), station.boards[0][1].tested)
    assert np.array_equal(cv2.imread(str(template), cv2.IMREAD_UNCHANGED), station.boards[0][1].template)
    assert not [p for p in tested.parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    detail = station.client.get(f"/api/inspections/{fail.id}").json()
    assert detail["feedback"][0]["note"] == "flux residue"


@pytest.mark.parametrize("body, needle", [
    ({"operator": "li", "judgements": []}, "not judged"),
    ({"operator": "li", "judgements": [{"ref": 99, "judgement": "confirmed"}]}, "is not one of"),
    ({"operator": "li", "judgements": "ALL", "added": []}, ""),
    ({"operator": "li", "all": "confirmed", "added": [{"cls": "scratch", "box": [1, 1, 5, 5]}]}, "scratch"),
    ({"operator": "li", "all": "confirmed", "added": [{"cls": "spur", "box": [10, 10, 900, 20]}]}, "past"),
    ({"operator": "li", "all": "confirmed", "added": [{"cls": "spur", "box": [10, 10, 5, 20]}]}, "empty"),
    ({"operator": "", "all": "confirmed"}, ""),
    ({"operator": "li\x07", "all": "confirmed"}, "printable"),
])
def test_feedback_that_does_not_fit_the_board_is_refused(station, body: dict, needle: str) -> None:
    fail = station.inspect("FAIL", seed=9)
    if body.pop("all", None):
        body["judgements"] = [{"ref": k, "judgement": "confirmed"} for k in range(len(fail.defects))]
    r = station.client.post(f"/api/inspections/{fail.id}/feedback", headers=auth(), json=body)
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert read_feedback(station.db, fail.id) == []


def test_feedback_on_an_unknown_board_is_404(station) -> None:
    r = station.client.post(f"/api/inspections/{'1' * 32}/feedback", headers=auth(),
                            json={"operator": "li", "judgements": []})
    assert r.status_code == 404


def test_openapi_documents_the_page_api(station) -> None:
    doc = station.client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/events", "/api/shift", "/api/inspections", "/api/inspections/{inspection_id}",
                 "/api/inspections/{inspection_id}/image", "/api/inspections/{inspection_id}/feedback",
                 "/api/session", "/api/config"):
        assert path in paths, path
    post = paths["/api/inspections/{inspection_id}/feedback"]["post"]
    assert post["security"] == [{"HTTPBearer": []}]
    assert "text/event-stream" in paths["/api/events"]["get"]["responses"]["200"]["content"]
