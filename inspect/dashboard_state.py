"""What the operator page's routes share: the runtime, the live feed, the stores, and its pictures.

Pictures are found by inspection id only, in this order: the feed's memory (the newest boards and recent
rejects), the reject sink's files (``RejectImageSink.find``), the feedback folder beside the database, and for
a template the station's template file or folder. Each file name is built from the id the route has checked
(32 hex digits), so no request can name a path. Encoded pictures are cached (a few dozen), so a page that
asks again, or several pages, cost one encoding.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from pathlib import Path

from fastapi import HTTPException

from pcb_inspect.inspect.errors import PcbInspectError
from pcb_inspect.inspect.feed import FeedSink
from pcb_inspect.inspect.feedback import FeedbackImages
from pcb_inspect.inspect.records import Inspection, Verdict

EVENT_INTERVAL_S = 0.1  # at most ~10 events a second to each page, whatever the line's rate
THUMB_SIDE = 320
CACHE_ENTRIES = 64
MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css",
         ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".woff2": "font/woff2"}


class Dashboard:
    """What the routes share: the runtime, the feed, the stores, the caches. On ``app.state.dashboard``."""

    def __init__(self, runtime, feed: FeedSink, db_path: Path | None, rejects, web: Path) -> None:  # noqa: ANN001
        self.runtime, self.feed, self.db_path, self.rejects, self.web = runtime, feed, db_path, rejects, web
        self.images = FeedbackImages(db_path) if db_path is not None else None
        files = web.iterdir() if web.is_dir() else ()
        self.assets = {p.name: p for p in files if p.is_file() and p.suffix in MEDIA}  # fixed at start
        self._lock = threading.Lock()
        self._status: tuple[float, dict] = (0.0, {})
        self._cache: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()

    # -- reading ---------------------------------------------------------------------------------------

    def status(self) -> dict:
        """The runtime's status, computed at most every EVENT_INTERVAL_S whatever the number of pages."""
        now = time.monotonic()
        with self._lock:
            at, status = self._status
            if now - at < EVENT_INTERVAL_S and status:
                return status
        status = self.runtime.status()
        with self._lock:
            self._status = (now, status)
        return status

    def db(self):  # noqa: ANN201
        from pcb_inspect.inspect.sinks.sqlite import ResultsDB

        return ResultsDB(self.db_path) if self.db_path is not None else None

    def inspection(self, iid: str) -> Inspection | None:
        found = self.feed.get(iid)
        if found is None and self.db_path is not None:
            found = self.db().get(iid)
        return found

    def recent(self, limit: int, verdict: str | None) -> list[Inspection]:
        """Newest first: the feed's boards and the database's, merged (the database lags a little)."""
        rejects = verdict == "rejects"
        wanted = ({str(v) for v in Verdict if v is not Verdict.PASS} if rejects
                  else {verdict} if verdict else None)
        found = {i.id: i for i in self.feed.recent(limit * 4 if wanted else limit, rejects_only=rejects)
                 if wanted is None or str(i.verdict) in wanted}
        db = self.db()
        if db is not None:
            for v in sorted(wanted) if wanted else [None]:
                for i in db.recent(limit, v):
                    found.setdefault(i.id, i)
        return sorted(found.values(), key=lambda i: i.time, reverse=True)[:limit]

    def feedback(self, iid: str) -> list[dict]:
        if self.db_path is None:
            return []
        from pcb_inspect.inspect.sinks.sqlite import read_feedback

        return read_feedback(self.db_path, iid)

    def event(self, last: int) -> tuple[int, str]:
        """The next server-sent event for a page that has seen up to ``last`` (-1: none yet)."""
        seq, latest, rejects, boards = self.feed.since(max(last, 0))
        data = {"seq": seq, "boards": boards if last >= 0 else 0,
                "inspection": self.brief(latest, full=True) if latest else None,
                "rejects": [self.brief(r) for r in rejects] if last >= 0 else [],
                "status": self.status(), "shift": self.feed.tally.summary()}
        return seq, f"id: {seq}\nevent: inspection\ndata: {json.dumps(data, default=str)}\n\n"

    def brief(self, i: Inspection, full: bool = False) -> dict:
        if full:
            return {**i.to_dict(), "pictures": self.feed.pictures(i.id).image is not None}
        return {"id": i.id, "board_id": i.board_id, "verdict": str(i.verdict), "time": i.time,
                "defects": len(i.defects), "classes": sorted({d.cls for d in i.defects}),
                "error": i.error[:120]}

    # -- pictures --------------------------------------------------------------------------------------

    def _reject_file(self, iid: str, kind: str) -> Path | None:
        if self.rejects is None:
            return None
        return self.rejects.find(iid).get(kind)

    def _kept_file(self, iid: str, kind: str) -> Path | None:
        if self.images is None:
            return None
        path = self.images.paths(iid)[0 if kind == "raw" else 1]
        return path if path.is_file() else None

    def _template(self, iid: str):  # noqa: ANN202 - ndarray | None
        """An older board's template from the station's template file or folder, where it has one."""
        store = getattr(getattr(self.runtime, "spec", None), "templates", None)
        inspection = self.inspection(iid)
        if store is None or getattr(store, "path", None) is None or inspection is None:
            return None
        from pcb_inspect.inspect.sources.base import Frame

        try:
            return store.resolve(Frame(index=0, timestamp=0.0, source="", board_id=inspection.board_id))
        except PcbInspectError:
            return None

    def available(self, iid: str) -> dict[str, bool]:
        pics = self.feed.pictures(iid)
        raw = pics.image is not None or bool(self._reject_file(iid, "raw") or self._kept_file(iid, "raw"))
        annotated = raw or bool(self._reject_file(iid, "annotated"))
        template = pics.template is not None or bool(self._kept_file(iid, "template"))
        return {"raw": raw, "annotated": annotated, "template": template or self._template(iid) is not None}

    def source_pictures(self, iid: str) -> tuple[object, object]:
        """(tested, template) for keeping with feedback: arrays from memory, or PNG bytes from a folder."""
        pics = self.feed.pictures(iid)
        image, template = pics.image, pics.template
        if image is None:
            path = self._reject_file(iid, "raw") or self._kept_file(iid, "raw")
            image = path.read_bytes() if path else None
        if template is None:
            path = self._kept_file(iid, "template")
            template = path.read_bytes() if path else self._template(iid)
        return image, template

    def picture(self, iid: str, kind: str, size: str, fmt: str = "png") -> tuple[bytes, str] | None:
        key = (iid, kind, size, fmt)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        found = self._picture(iid, kind, fmt)
        if found is None:
            return None
        if size == "thumb":
            found = (_thumb(found[0]), "image/jpeg")
        elif fmt == "jpeg" and found[1] != "image/jpeg":
            found = (_jpeg(_decode(found[0])), "image/jpeg")
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return found

    def _picture(self, iid: str, kind: str, fmt: str = "png") -> tuple[bytes, str] | None:
        import cv2

        pics = self.feed.pictures(iid)
        if kind == "template":
            if pics.template is not None:
                return _encode(pics.template, fmt)
            path = self._kept_file(iid, "template")
            if path:
                return path.read_bytes(), "image/png"
            template = self._template(iid)
            return _encode(template, fmt) if template is not None else None
        if kind == "annotated":
            path = self._reject_file(iid, "annotated")
            if path:
                return path.read_bytes(), "image/jpeg"
        image = pics.image
        if image is None:
            path = self._reject_file(iid, "raw") or self._kept_file(iid, "raw")
            if path is None:
                return None
            if kind == "raw":
                return path.read_bytes(), "image/png"
            image = _decode(path.read_bytes())
        if kind == "raw":
            return _encode(image, fmt)
        inspection = self.inspection(iid)
        if inspection is None:
            return None
        from pcb_inspect.inspect.annotate import draw_inspection

        review = inspection.verdict is Verdict.REVIEW
        shown = inspection.defects + (inspection.below_threshold if review else [])
        picture = draw_inspection(image, shown, inspection.verdict, f"{inspection.board_id} {iid[:8]}")
        ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return (buf.tobytes(), "image/jpeg") if ok else None


def _frombuffer(data: bytes):  # noqa: ANN202
    import numpy as np

    return np.frombuffer(data, np.uint8)


def _png(image) -> bytes:  # noqa: ANN001
    import cv2

    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise HTTPException(500, "cannot encode the picture")
    return buf.tobytes()


def _jpeg(image, quality: int = 85) -> bytes:  # noqa: ANN001
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise HTTPException(500, "cannot encode the picture")
    return buf.tobytes()


def _encode(image, fmt: str) -> tuple[bytes, str]:  # noqa: ANN001
    """PNG (lossless: review, export) or JPEG (the live view: a noisy 640x640 board is 8 ms and 270 kB as PNG,
    0.5 ms and 70 kB as JPEG)."""
    return (_jpeg(image), "image/jpeg") if fmt == "jpeg" else (_png(image), "image/png")


def _decode(data: bytes):  # noqa: ANN202
    import cv2

    image = cv2.imdecode(_frombuffer(data), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise HTTPException(500, "cannot decode the stored picture")
    return image


def _thumb(data: bytes) -> bytes:
    import cv2

    image = cv2.imdecode(_frombuffer(data), cv2.IMREAD_COLOR)
    if image is None:
        raise HTTPException(500, "cannot decode the stored picture")
    scale = THUMB_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes()


def png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def picture_size(image: object) -> tuple[int, int] | None:
    if isinstance(image, bytes):
        return png_size(image)
    shape = getattr(image, "shape", None)
    return (int(shape[1]), int(shape[0])) if shape is not None else None
